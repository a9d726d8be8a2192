"""Distributed exact k-NN / ID on a 2-worker LocalCluster equals the single-process engine exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("distributed")
import itertools

import dask.array as da

import lowdim
from lowdim.errors import LowdimError
from lowdim.estimators.registry import REGISTRY
from lowdim.scale import connect, dask_kneighbors, open_sharded


@pytest.fixture(scope="module")
def client():
    with connect(workers=2, timeout=60) as c:
        yield c


def _data(n=5000, d=4, D=40, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) @ rng.normal(size=(d, D)) + 0.01 * rng.normal(size=(n, D))).astype(dtype)
    X[100] = X[7]  # exact duplicates, across shards too
    X[n - 10] = X[3]
    X[n // 2] = X[n // 2 - 100]
    X[n // 2, 0] = np.nextafter(X[n // 2, 0], np.inf)  # a float near duplicate
    return X


def _same_graph(a, b):
    assert np.array_equal(a.distances, b.distances)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.kept, b.kept)
    assert np.array_equal(a.representative, b.representative)
    assert np.array_equal(a.query_indices, b.query_indices)
    assert a.n_duplicates_dropped == b.n_duplicates_dropped


@pytest.mark.parametrize("queries", [None, 700])
@pytest.mark.parametrize("max_bytes", [2**28, 0], ids=["broadcast", "all-pairs"])
def test_dask_kneighbors_equals_kneighbors_exactly(client, queries, max_bytes):
    X = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = lowdim.kneighbors(X, 6, queries=queries, random_state=3)
        b = dask_kneighbors(X, 6, client=client, queries=queries, random_state=3, shard_rows=1100,
                            max_broadcast_bytes=max_bytes)
    # 2 exact + 1 near duplicate (found only when one of the pair is queried)
    assert a.n_duplicates_dropped == (3 if queries is None else 2)
    _same_graph(a, b)
    assert b.info["shards"] == 5 and b.info["workers"] == 2
    assert b.exact and b.backend == "dask-exact-numpy"
    assert np.array_equal(np.asarray(b.points), a.points)


def test_estimate_with_client_equals_single_process(client):
    X = _data(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = lowdim.estimate(X, method="twonn")
        r2 = lowdim.estimate(X, method="twonn", client=client, shard_rows=1000)
    assert r2.dimension == r1.dimension and r2.ci == r1.ci
    assert r2.n_samples == r1.n_samples and r2.n_duplicates_dropped == r1.n_duplicates_dropped
    assert np.array_equal(r1.scale_curve.dimension, r2.scale_curve.dimension)
    assert any("5 shards on 2 Dask workers" in n for n in r2.notes)
    assert 3.5 < r2.dimension < 4.5


@pytest.mark.parametrize("method", [m for m in ("mle", "gride") if m in REGISTRY])
def test_every_knn_estimator_gives_the_single_process_answer(client, method):
    X = _data(n=2500, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = lowdim.estimate(X, method=method)
        r2 = lowdim.estimate(X, method=method, client=client, shard_rows=600)
    assert (r2.dimension, r2.ci, r2.method) == (r1.dimension, r1.ci, r1.method)


def test_estimator_without_neighbours_is_refused(client):
    names = [m for m, c in REGISTRY.items() if not c.uses_neighbors]
    if not names:
        pytest.skip("every registered estimator uses neighbours")
    with pytest.raises(LowdimError, match=f"method '{names[0]}' needs every point in one process"):
        lowdim.estimate(_data(n=500), method=names[0], client=client)


def test_local_id_with_client_equals_single_process(client):
    X = _data(n=3000, seed=2, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = lowdim.local_id(X, n_neighbors=10)
        b = lowdim.local_id(X, n_neighbors=10, client=client, shard_rows=700)
    assert a.shape == (3000,) and np.array_equal(a, b)


def test_npy_shard_folder_zarr_and_dask_array_equal_in_memory(client, tmp_path):
    X = _data(n=4000, seed=3)
    ref = lowdim.kneighbors(X, 4)
    folder = tmp_path / "shards"
    folder.mkdir()
    cuts = [0, 900, 2000, 2001, 4000]  # uneven, one single-row shard; natural name order
    for i, (s, e) in enumerate(itertools.pairwise(cuts)):
        np.save(folder / f"part_{i * 5}.npy", X[s:e])
    np.save(folder / "part_99.npy", np.empty((0, 40), np.float32))  # empty shards are skipped
    import zarr

    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(1500, 40), dtype="f4")
    z[:] = X
    sources = {"folder": folder, "zarr": tmp_path / "x.zarr", "dask": da.from_array(X, chunks=(1300, 20))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, src in sources.items():
            nb = dask_kneighbors(src, 4, client=client)
            _same_graph(ref, nb)
            assert nb.info["shards"] == {"folder": 4, "zarr": 3, "dask": 4}[name], name
        r = lowdim.estimate(folder, method="twonn", client=client)
        assert r.dimension == lowdim.estimate(X, method="twonn").dimension


def test_shards_with_different_dimensions_name_the_shard(tmp_path):
    np.save(tmp_path / "a_0.npy", np.zeros((10, 8)))
    np.save(tmp_path / "a_1.npy", np.zeros((10, 8)))
    np.save(tmp_path / "a_2.npy", np.zeros((10, 7)))
    with pytest.raises(LowdimError, match=r"shard 'a_2\.npy' has 7 columns.*'a_0\.npy' has 8"):
        open_sharded(tmp_path)


def test_empty_shard_folder(tmp_path):
    with pytest.raises(LowdimError, match=r"holds no \.npy shards \(it is empty\)"):
        open_sharded(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LowdimError, match=r"holds no \.npy shards \(it holds notes\.txt\)"):
        open_sharded(tmp_path)


def test_bad_shards(tmp_path, client):
    np.save(tmp_path / "s0.npy", np.zeros((10, 3, 2)))
    with pytest.raises(LowdimError, match=r"shard 's0\.npy'.*shape \(10, 3, 2\).*2-D"):
        open_sharded(tmp_path)
    (tmp_path / "s0.npy").unlink()
    rng = np.random.default_rng(0)
    np.save(tmp_path / "s0.npy", rng.normal(size=(50, 3)))
    bad = rng.normal(size=(50, 3))
    bad[7, 2] = np.nan
    np.save(tmp_path / "s1.npy", bad)
    with pytest.raises(LowdimError, match=r"shard 's1\.npy'.*non-finite.*global row 57\), column 2"):
        dask_kneighbors(tmp_path, 3, client=client)
    with pytest.raises(LowdimError, match="does not exist"):
        open_sharded(tmp_path / "nope")


def test_duplicates_error_and_too_few_points(client):
    X = _data(n=1000)
    with pytest.raises(LowdimError, match="has 2 duplicate rows"):
        dask_kneighbors(X, 3, client=client, duplicates="error", shard_rows=300)
    with pytest.raises(LowdimError, match="at least 6"):
        dask_kneighbors(X[:4], 5, client=client)
    with pytest.raises(LowdimError, match="constant"):
        dask_kneighbors(np.ones((20, 3)), 2, client=client, shard_rows=7)


def test_sharded_input_without_a_client_says_how(tmp_path):
    np.save(tmp_path / "s0.npy", np.zeros((10, 3)))
    with pytest.raises(LowdimError, match=r"needs a Dask client.*connect\(\)"):
        lowdim.estimate(tmp_path)


def test_duplicates_from_row_hashes_match_find_duplicates():
    from lowdim.neighbors import find_duplicates
    from lowdim.scale.dask_knn import _duplicates_from_hashes, _row_hashes

    rng = np.random.default_rng(1)
    for _ in range(30):  # tiny key space: equal first hash with a different second hash happens
        H = rng.integers(0, 4, size=(int(rng.integers(1, 200)), 2)).astype(np.uint64)
        for a, b in zip(find_duplicates(H), _duplicates_from_hashes(H)):
            assert np.array_equal(a, b)
    X = rng.normal(size=(500, 7)).astype(np.float32)  # odd row size: 28 bytes, padded to 32
    X[10] = X[3]
    X[11], X[12] = 0.0, -0.0  # -0.0 differs from 0.0 in its bytes, as in find_duplicates
    h = _row_hashes(X)
    assert (h[10] == h[3]).all() and not (h[11] == h[12]).all()
    for a, b in zip(find_duplicates(X), _duplicates_from_hashes(h)):
        assert np.array_equal(a, b)
