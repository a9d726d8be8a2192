"""Certified bfloat16 candidates: the answer equals the float32/float64 exact search, and queries the
rounding bound cannot prove fall back to it."""

import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

import lowdim
import lowdim.knn_bf16 as kb
import lowdim.neighbors as nbmod


def _data(kind, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.normal(size=(n, 48)).astype(np.float32)
    if kind == "offset-plane":  # rank-6 plane far from the origin, tiny noise
        return (rng.normal(size=(n, 6)) @ rng.normal(size=(6, 96)) + 50 + 1e-3 * rng.normal(size=(n, 96))).astype(np.float32)
    # two tight clusters far apart: bfloat16 cannot resolve distances inside a cluster, float32 can
    c = rng.normal(size=(2, 40)) * 100
    return (c[rng.integers(0, 2, n)] + 0.5 * rng.normal(size=(n, 40))).astype(np.float64)


def _brute(X, Q, k):
    d2 = (Q ** 2).sum(1)[:, None] - 2 * Q @ X.T + (X ** 2).sum(1)[None, :]
    i = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(((X[i] - Q[:, None, :]) ** 2).sum(-1)), i


@pytest.mark.parametrize("kind", ["gauss", "offset-plane"])
def test_certified_answers_equal_exact_search(kind):
    X = _data(kind)
    d, i, ok = kb.bf16_knn(X, X, 11)
    d0, i0 = _brute(X.astype(np.float64), X.astype(np.float64), 11)
    assert ok.mean() > 0.95
    assert np.array_equal(i[ok], i0[ok])
    np.testing.assert_allclose(d[ok], d0[ok], rtol=1e-12, atol=1e-12)
    Q = X[:100] + 0.01  # separate queries
    d, i, ok = kb.bf16_knn(X, Q, 5)
    d0, i0 = _brute(X.astype(np.float64), Q.astype(np.float64), 5)
    assert np.array_equal(i[ok], i0[ok]) and ok.any()


def test_unprovable_queries_are_flagged_and_searched_again(monkeypatch):
    X = _data("clusters")
    _, _, ok = kb.bf16_knn(X, X, 6)
    assert ok.mean() < 0.5  # spreads of 0.5 at norms of 600: below bfloat16 resolution
    monkeypatch.setattr(kb, "bf16_fast", lambda: True)
    monkeypatch.setattr(nbmod, "BF16_MIN_WORK", 0)
    nb = lowdim.kneighbors(X, 5)
    assert nb.backend == "exact-bf16" and nb.exact
    d0, i0 = _brute(X, X, 6)
    assert np.array_equal(nb.indices, i0[:, 1:])
    np.testing.assert_allclose(nb.distances, d0[:, 1:], rtol=1e-12)


def test_kneighbors_uses_bf16_only_when_fast(monkeypatch):
    X = _data("gauss", n=500)
    monkeypatch.setattr(nbmod, "BF16_MIN_WORK", 0)
    monkeypatch.setattr(kb, "bf16_fast", lambda: False)
    assert lowdim.kneighbors(X, 5).backend == "exact-numpy"
    monkeypatch.setattr(kb, "bf16_fast", lambda: True)
    fast = lowdim.kneighbors(X, 5)
    assert fast.backend == "exact-bf16"
    monkeypatch.setattr(kb, "bf16_fast", lambda: False)
    assert np.array_equal(fast.indices, lowdim.kneighbors(X, 5).indices)


def test_bf16_fast_respects_the_environment(monkeypatch):
    for value, want in (("0", False), ("1", True)):
        monkeypatch.setenv("LOWDIM_BF16", value)
        kb.bf16_fast.cache_clear()
        assert kb.bf16_fast() is want
    kb.bf16_fast.cache_clear()


def test_near_duplicates_only_affected_queries_are_searched_again():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(800, 12)).astype(np.float32)
    dup = X[:30] * (1 + np.float32(2e-7))  # float32 near-copies of 30 rows
    Y = np.concatenate([X, dup])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = lowdim.kneighbors(Y, 7)
    assert nb.n_duplicates_dropped == 30 and len(nb.points) == 800
    ref = lowdim.kneighbors(X, 7)
    assert np.array_equal(nb.indices, ref.indices)
    np.testing.assert_allclose(nb.distances, ref.distances, rtol=1e-12)


@pytest.mark.parametrize("D", [64, 1000])
def test_rounding_bound_holds_on_every_score(D):
    """The GEMM's actual error never exceeds the bound the certificate relies on (incl. K-blocking)."""
    import torch

    rng = np.random.default_rng(D)
    X = (rng.normal(size=(600, D)) * rng.uniform(0.1, 10, size=D) + 3).astype(np.float32)
    centre = X.mean(axis=0, dtype=np.float64)
    Rb, r_sq, r_err, r_tn, r_tail = kb._prepare(X, centre, "norm", torch)
    Qb, q_sq, q_err, q_tn, _ = kb._prepare(X[:200], centre, "one", torch)
    S = (Qb @ Rb.T).to(torch.float64).numpy()
    Xc = X.astype(np.float64) - centre
    exact = Xc[:200] @ Xc.T - 0.5 * r_sq[None, :]
    E = kb.score_error_bound(q_tn, q_err, float(r_err.max()), float(r_tn.max()), float(r_tail.max()),
                             float(0.5 * r_sq.max()) * (1 + 2.0 ** -7), D)
    u = 2.0 ** -9
    allowed = 2 * u / (1 - u) * np.abs(S) + E[:, None]
    assert np.all(np.abs(exact - S) <= allowed)
    assert np.abs(exact - S).max() > 0  # the check is not vacuous: bf16 does round
