import warnings

import numpy as np
import pytest
from scipy.spatial import cKDTree

import lowdim
from lowdim import LowdimError
from lowdim.neighbors import find_duplicates, knn_search


def test_exact_matches_kdtree(rng):
    X = rng.normal(size=(1500, 6))
    nb = lowdim.kneighbors(X, 12, block_size=100)
    d, i = cKDTree(X).query(X, 13)
    np.testing.assert_allclose(nb.distances, d[:, 1:], rtol=1e-12)
    assert (nb.indices == i[:, 1:]).all()
    assert nb.backend == "exact-numpy" and nb.exact


def test_float64_recheck_beats_float32_cancellation():
    # far from the origin float32 GEMM distances lose all precision; the re-check restores them
    rng = np.random.default_rng(1)
    X = 1e4 + rng.uniform(size=(800, 3))
    nb = lowdim.kneighbors(X, 3)
    d, i = cKDTree(X).query(X, 4)
    np.testing.assert_allclose(nb.distances, d[:, 1:], rtol=1e-9)


def test_threads_and_blocks_do_not_change_answer(rng):
    X = rng.normal(size=(900, 10)).astype(np.float32)
    a = lowdim.kneighbors(X, 5, n_jobs=1, block_size=64)
    b = lowdim.kneighbors(X, 5, n_jobs=2, block_size=17)
    assert (a.indices == b.indices).all()
    np.testing.assert_array_equal(a.distances, b.distances)


def test_inner_product_search(rng):
    R = rng.normal(size=(400, 8))
    Q = rng.normal(size=(30, 8))
    v, i, backend = knn_search(R, Q, 5, metric="ip")
    brute = Q @ R.T
    top = np.argsort(-brute, axis=1)[:, :5]
    assert (i == top).all()
    np.testing.assert_allclose(v, np.take_along_axis(brute, top, 1))


def test_query_subset(rng):
    X = rng.normal(size=(1000, 4))
    nb = lowdim.kneighbors(X, 4, queries=100, random_state=3)
    full = lowdim.kneighbors(X, 4)
    assert nb.n_queries == 100 and not nb.is_full
    np.testing.assert_array_equal(nb.indices, full.indices[nb.query_indices])
    with pytest.raises(LowdimError, match="every point"):
        lowdim.local_id(nb)


def test_exact_duplicates_dropped_with_count(rng):
    X = rng.normal(size=(500, 3))
    Xd = np.vstack([X, X[:50]])
    with pytest.warns(UserWarning, match="dropped 50 duplicate"):
        nb = lowdim.kneighbors(Xd, 3)
    assert nb.n_points == 500 and nb.n_duplicates_dropped == 50
    assert (nb.distances > 0).all()
    np.testing.assert_array_equal(nb.points[nb.representative], Xd)
    with pytest.raises(LowdimError, match="50 duplicate rows"):
        lowdim.kneighbors(Xd, 3, duplicates="error")


def test_float32_near_duplicates_detected(rng):
    X = rng.normal(size=(500, 16)).astype(np.float32)
    near = (X[:40] * np.float32(1 + 3e-7)).astype(np.float32)  # roundoff-level copies
    Xd = np.vstack([X, near])
    assert len(find_duplicates(Xd)[0]) == 540  # not exact duplicates
    with pytest.warns(UserWarning, match="dropped 40"):
        nb = lowdim.kneighbors(Xd, 3)
    assert nb.n_points == 500
    np.testing.assert_allclose(nb.points[nb.representative], Xd, rtol=1e-6)
    with pytest.raises(LowdimError, match="near-duplicate"):
        lowdim.kneighbors(Xd, 3, duplicates="error")


def test_duplicates_no_longer_break_twonn(rng):
    X = rng.uniform(size=(2000, 3))
    Xd = np.vstack([X, X[:200]])  # 10 % duplicates: skdim MLE returns 0, DANCo NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = lowdim.estimate(Xd, method="twonn")
    assert 2.6 < r.dimension < 3.4 and r.n_duplicates_dropped == 200


def test_too_few_points_names_n_and_k():
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(LowdimError, match=r"5 samples.*6|n_neighbors=10"):
        lowdim.kneighbors(X, 10)
    Xd = np.vstack([X, X, X])
    with warnings.catch_warnings(), pytest.raises(LowdimError, match="5 distinct points.*n_neighbors=6"):
        warnings.simplefilter("ignore")
        lowdim.kneighbors(Xd, 6)


def test_bad_parameters():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(LowdimError, match="backend"):
        lowdim.kneighbors(X, 3, backend="annoy")
    with pytest.raises(LowdimError, match="n_neighbors=0"):
        lowdim.kneighbors(X, 0)
    with pytest.raises(LowdimError, match="duplicates"):
        lowdim.kneighbors(X, 3, duplicates="ignore")


def test_require_fewer_neighbours(rng):
    nb = lowdim.kneighbors(rng.normal(size=(100, 3)), 5)
    assert nb.require(2, "x").k == 2
    with pytest.raises(LowdimError, match="needs 9 neighbours.*holds 5"):
        nb.require(9, "x")


def test_faiss_backend_is_reported(rng):
    pytest.importorskip("faiss")
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    nb = lowdim.kneighbors(X, 5, backend="faiss")
    exact = lowdim.kneighbors(X, 5)
    assert nb.backend == "faiss-hnsw" and not nb.exact
    assert (nb.indices == exact.indices).mean() > 0.95
    r = lowdim.estimate(nb, method="twonn")
    assert any("approximate" in n for n in r.notes)


def test_torch_backend_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(600, 5))
    a = lowdim.kneighbors(X, 4)
    b = lowdim.kneighbors(torch.as_tensor(X), 4, backend="torch")
    assert b.backend == "exact-torch-cpu"
    assert (a.indices == b.indices).all()
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-12)


@pytest.mark.parametrize(("n", "noise", "tree"), [(5000, 1e-3, False), (6000, 1e-2, True)])
def test_pca_bounded_pruning_is_exact(n, noise, tree, monkeypatch):
    # low-rank + noise data take the pruned path (bound space by GEMM, or k-d tree for large n):
    # every row it calls proven equals float64 brute force
    import lowdim.knn_pruned as kp
    from lowdim.knn_pruned import pruned_knn

    monkeypatch.setattr(kp, "TREE_MIN_POINTS", 1000 if tree else 10**9)
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(n, 6)) @ rng.normal(size=(6, 64)) + noise * rng.normal(size=(n, 64))).astype(np.float32)
    q = np.sort(rng.choice(n, 300, replace=False))
    d, i = cKDTree(X.astype(np.float64)).query(X[q].astype(np.float64), 5)
    full = pruned_knn(X, X, 5)
    assert full is not None and full[2].mean() > 0.9
    ok = full[2][q]
    np.testing.assert_allclose(full[0][q][ok], d[ok], rtol=1e-12)
    sub = pruned_knn(X, X[q], 5)
    np.testing.assert_array_equal(sub[1][sub[2]], i[sub[2]])


def test_pruning_declines_flat_spectrum(rng):
    from lowdim.knn_pruned import pruned_knn

    X = rng.normal(size=(5000, 40))
    assert pruned_knn(X, X, 3) is None


def test_faiss_graph_reports_its_recall_and_warns_when_poor(rng, monkeypatch):
    pytest.importorskip("faiss")
    import lowdim.neighbors as nbmod

    X = rng.normal(size=(3000, 8)).astype(np.float32)
    nb = lowdim.kneighbors(X, 5, backend="faiss")
    assert 0.95 < nb.info["recall_estimate"] <= 1.0
    # a graph that is half wrong: the estimate sees it, and the caller is warned
    real = nbmod._faiss_search

    def half_wrong(R, Q, k, metric):
        v, i = real(R, Q, k, metric)
        wrong = (i[:, k // 2 + 1:] + 17) % len(R)
        rows = np.arange(len(Q))[:, None]  # the queries are all the points, in order
        i[:, k // 2 + 1:] = np.where(wrong == rows, (wrong + 1) % len(R), wrong)
        return v, i

    monkeypatch.setattr(nbmod, "_faiss_search", half_wrong)
    with pytest.warns(UserWarning, match="approximate k-NN"):
        bad = lowdim.kneighbors(X, 6, backend="faiss")
    assert bad.info["recall_estimate"] < 0.7
