"""Every exact k-NN path against float64 brute force on adversarial data: zero wrong rows.

A row is right when its k distances equal brute force's to 1e-9 relative (ties may permute
indices). Paths: the float32 GEMM, certified bfloat16 (forced; emulated where the CPU lacks bf16),
PCA-pruned, torch on the CPU, query subsets and disjoint queries; Dask shards on two datasets.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest

import lowdim
import lowdim.knn_bf16 as kb
import lowdim.neighbors as nbmod
from lowdim.knn_exact import exact_knn
from lowdim.knn_pruned import pruned_knn


def _unit_clusters(noise: float, n_clusters: int = 50, size: int = 40, D: int = 384) -> np.ndarray:
    r = np.random.default_rng(0)
    C = r.normal(size=(n_clusters, D))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    X = np.repeat(C, size, 0) + noise * r.normal(size=(n_clusters * size, D)) / np.sqrt(D)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@cache
def dataset(name: str) -> np.ndarray:
    r = np.random.default_rng(1)
    if name.startswith("clusters"):  # templated texts: 50 clusters of 40 near-identical unit vectors
        return _unit_clusters(float(name.split("-", 1)[1]))
    if name.startswith("clumps"):  # 150 clumps of 13 points in 64-d
        C = r.normal(size=(150, 64))
        return (np.repeat(C, 13, 0) + float(name.split("-", 1)[1]) * r.normal(size=(1950, 64))).astype(np.float32)
    if name == "offset":  # far from the origin: neighbours ~15 float32 steps apart, no duplicates
        return (1e4 + r.uniform(size=(6000, 3)) ** 3).astype(np.float32)
    if name == "grid":  # integer grid: exact ties at every distance
        return np.stack(np.meshgrid(*[np.arange(7)] * 4), -1).reshape(-1, 4).astype(np.float64)
    if name == "scales":  # columns from 1e-3 to 1e3
        return r.normal(size=(2000, 12)) * np.logspace(-3, 3, 12)
    if name == "float16":
        return r.normal(size=(2000, 16)).astype(np.float16)
    if name == "lowrank-clusters":  # low-rank (pruning applies) with near-duplicate clumps
        B = r.normal(size=(6, 96))
        Z = np.repeat(r.normal(size=(400, 6)), 12, 0) + 1e-4 * r.normal(size=(4800, 6))
        return (Z @ B + 1e-5 * r.normal(size=(4800, 96))).astype(np.float32)
    raise KeyError(name)


DATA = ["clusters-1e-3", "clusters-3e-3", "clumps-1e-3", "clumps-3e-4", "offset", "grid", "scales",
        "float16", "lowrank-clusters"]


def brute(X: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    """Float64 k smallest distances: expansion to pick k + 64 candidates, then direct differences."""
    X = X.astype(np.float64)
    Q = Q.astype(np.float64)
    sq = (X * X).sum(1)
    out = np.empty((len(Q), k))
    w = min(len(X), k + 64)
    for s in range(0, len(Q), 512):
        q = Q[s:s + 512]
        d2 = (q * q).sum(1)[:, None] + sq[None] - 2 * q @ X.T
        c = np.argpartition(d2, w - 1, axis=1)[:, :w]
        e = np.sqrt(((X[c] - q[:, None, :]) ** 2).sum(-1))
        out[s:s + 512] = np.sort(e, axis=1)[:, :k]
    return out


def wrong_rows(d: np.ndarray, ref: np.ndarray) -> int:
    return int((np.abs(d - ref) > 1e-9 * ref + 1e-300).any(axis=1).sum())


def _points(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lowdim.kneighbors(dataset(name), 1).points  # deduplicated as every path sees it


@pytest.fixture
def force(monkeypatch):
    def set_path(path):
        monkeypatch.setattr(kb, "bf16_fast", lambda: path == "bf16")
        monkeypatch.setattr(nbmod, "BF16_MIN_WORK", 0 if path == "bf16" else float("inf"))
    return set_path


#: the bf16 path (emulated where the CPU lacks bf16, so slow here) and torch on the CPU run the
#: float32 datasets that defeat a fixed margin; the float32 GEMM runs everything
CASES = ([("float32", name, k) for name in DATA for k in (1, 10)]
         + [(path, name, 10) for path in ("bf16", "torch")
            for name in ("clusters-1e-3", "clumps-3e-4", "offset", "lowrank-clusters")])


@pytest.mark.parametrize(("path", "name", "k"), CASES)
def test_self_graph_equals_brute_force(name, k, path, force):
    if path in ("bf16", "torch"):
        pytest.importorskip("torch")
    force(path)
    P = _points(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = lowdim.kneighbors(P, k, duplicates="keep", backend="torch" if path == "torch" else "exact")
    assert nb.exact
    ref = brute(P, P, k + 1)[:, 1:]
    assert wrong_rows(nb.distances, ref) == 0, nb.info


@pytest.mark.parametrize("name", ["lowrank-clusters", "clusters-1e-3", "offset"])
def test_pruned_path_equals_brute_force(name):
    P = _points(name).astype(np.float32)
    first = pruned_knn(P, P, 7)
    if first is None:  # spectrum too flat: the path declines (checked on the low-rank data)
        assert name != "lowrank-clusters"
        first = (np.zeros((len(P), 7)), np.zeros((len(P), 7), np.int64), np.zeros(len(P), bool))
    d, _, stages = exact_knn(P, P, 7, first=first)
    assert wrong_rows(d, brute(P, P, 7)) == 0, stages
    if name == "lowrank-clusters":
        assert stages["first"] > 0


@pytest.mark.parametrize("k", [1, 32, 64])
def test_large_k_queries_subset_and_disjoint(k):
    P = _points("clusters-1e-3")
    nb = lowdim.kneighbors(P, k, queries=300, random_state=0, duplicates="keep")
    ref = brute(P, P[nb.query_indices], k + 1)[:, 1:]
    assert wrong_rows(nb.distances, ref) == 0
    Q = _unit_clusters(1e-3)[::7] + np.float32(1e-4)  # near but not in the reference set
    v, _, _ = nbmod.knn_search(P, Q, k)
    assert wrong_rows(v, brute(P, Q, k)) == 0


def test_inner_product_equals_brute_force():
    P = _points("clusters-1e-3")
    Q = P[::5] * np.float32(1.0001)
    v, i, _ = nbmod.knn_search(P, Q, 10, metric="ip")
    ref = np.sort((Q.astype(np.float64) @ P.astype(np.float64).T), axis=1)[:, ::-1][:, :10]
    assert int((np.abs(v - ref) > 1e-12).any(axis=1).sum()) == 0


def test_dask_shards_equal_brute_force():
    pytest.importorskip("distributed")
    from lowdim.scale import connect, dask_kneighbors

    with connect(workers=2) as client:
        for name in ("clusters-1e-3",):
            P = _points(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nb = dask_kneighbors(P, 6, client=client, shard_rows=700)
            assert wrong_rows(nb.distances, brute(P, P, 7)[:, 1:]) == 0


def test_offset_data_has_no_near_duplicates_and_twonn_is_translation_invariant():
    X = dataset("offset")
    exact_copies = len(X) - len(nbmod.find_duplicates(X)[0])  # U³ near 0 collides on float32's grid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = lowdim.kneighbors(X, 2)
    assert nb.n_duplicates_dropped == exact_copies  # and not one "near duplicate"
    a = lowdim.estimate(nb, method="twonn").dimension
    b = lowdim.estimate(X.astype(np.float64) - 1e4, method="twonn").dimension
    assert abs(a - b) < 0.05 * b


def test_last_bit_copies_are_near_duplicates_at_any_offset_and_scale():
    r = np.random.default_rng(2)
    for shift, scale in ((0.0, 1.0), (1e3, 1.0), (0.0, 1e-6)):
        X = (shift + scale * r.normal(size=(600, 24))).astype(np.float32)
        centred = X.astype(np.float64) - X.astype(np.float64).mean(0)
        copies = (X[:25].astype(np.float64) + 2 * np.spacing(np.abs(centred[:25]).astype(np.float32))).astype(np.float32)
        with pytest.warns(UserWarning, match="dropped 25"):
            nb = lowdim.kneighbors(np.vstack([X, copies]), 3)
        assert nb.n_points == 600


@pytest.mark.parametrize("path", ["float32", "torch"])
def test_values_too_large_for_float32_are_answered_in_float64(path):
    if path == "torch":
        pytest.importorskip("torch")
    r = np.random.default_rng(4)
    for X in (r.normal(size=(600, 16)) * 1e25, (r.normal(size=(600, 16)) * 1e30).astype(np.float32),
              np.vstack([r.normal(size=(600, 16)), 1e15 * r.normal(size=(5, 16))])):
        nb = lowdim.kneighbors(X, 5, duplicates="keep", backend="torch" if path == "torch" else "exact")
        assert wrong_rows(nb.distances, brute(X, X, 6)[:, 1:]) == 0
    # one far outlier does not push every ordinary query past the float32 stage
    assert lowdim.kneighbors(X, 5, duplicates="keep").info["stages"]["float32"] >= 590
