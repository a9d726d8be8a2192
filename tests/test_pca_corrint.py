import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.datasets import make_manifold
from lowdim.estimators import PCA, CorrelationDimension
from lowdim.estimators.pca import participation_ratio, variance_threshold_dimension


def _rank_k(n, k, D, seed=0, isotropic=False):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, k)) * (1.0 if isotropic else np.linspace(1.0, 0.3, k))
    if isotropic:  # exactly equal variances: centre and whiten the coefficients
        A -= A.mean(axis=0)
        A = A @ np.linalg.inv(np.linalg.cholesky(A.T @ A / (n - 1))).T
    basis, _ = np.linalg.qr(rng.normal(size=(D, k)))
    return A @ basis.T + 5.0  # an offset: PCA centres


# ------------------------------------------------------------------------------------------ PCA


@pytest.mark.parametrize(("k", "D"), [(1, 5), (3, 40), (7, 20)])
def test_rank_k_gives_k_exactly(k, D):
    X = _rank_k(1500, k, D)
    assert PCA(variance=0.999).fit(X).dimension_ == k
    iso = _rank_k(1500, k, D, isotropic=True)
    assert PCA().fit(iso).dimension_ == k  # equal variances: 0.9 needs all k
    assert PCA(estimator="participation_ratio").fit(iso).dimension_ == pytest.approx(k, rel=1e-9)


def test_gram_path_when_fewer_rows_than_features():
    X = _rank_k(60, 4, 300, seed=1)
    est = PCA(variance=0.999).fit(X)
    assert est.dimension_ == 4
    ref = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    np.testing.assert_allclose(est.eigenvalues_[:10], ref[:10], rtol=1e-8, atol=1e-10)
    assert est.eigenvalues_.shape == (300,)


def test_float32_large_and_bootstrap_subsample():
    X = _rank_k(20000, 5, 64, seed=2, isotropic=True).astype(np.float32)
    X += 1e-3 * np.random.default_rng(0).normal(size=X.shape).astype(np.float32)
    est = PCA().fit(X)
    assert est.dimension_ == 5
    pr = PCA(estimator="participation_ratio").fit(X)
    assert pr.dimension_ == pytest.approx(5, rel=0.01)
    # the participation ratio sits at its maximum (equal variances): resamples all fall below it,
    # so the interval is not widened to contain it; the bias is reported instead
    assert abs(pr.ci_[0] - 5) < 0.01 and 0 <= pr.ci_[1] - pr.ci_[0] < 0.1
    assert "bootstrap" in pr.interval_method_ and pr.raw_["bootstrap_bias"] < 0


def test_fractional_threshold_and_helpers():
    lam = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert variance_threshold_dimension(lam, 0.9) == 5
    assert variance_threshold_dimension(lam, 0.9, fractional=True) == pytest.approx(4.5)
    assert participation_ratio(np.array([3.0, 1.0])) == pytest.approx(16 / 10)
    X = _rank_k(2000, 5, 10, isotropic=True)
    assert PCA(fractional=True).fit(X).dimension_ == pytest.approx(4.5, abs=1e-6)


def test_linear_span_not_manifold_and_curve():
    X, _ = make_manifold("helix", 2000, random_state=0)  # a curve (ID 1) spanning 3 dimensions
    est = PCA().fit(X)
    assert est.dimension_ == 3
    assert est.cumulative_variance_[-1] == pytest.approx(1.0)
    c = est.scale_curve_
    assert c.scale[0] == 0.5 and c.scale[-1] == 0.99
    assert np.all(np.diff(c.dimension) >= 0)
    assert np.all(c.ci_low <= c.dimension) and np.all(c.dimension <= c.ci_high)


def test_pca_one_feature_duplicates_and_errors():
    X1 = np.random.default_rng(0).normal(size=(300, 1))
    assert PCA().fit(X1).dimension_ == 1
    assert PCA(estimator="participation_ratio").fit(X1).dimension_ == pytest.approx(1)
    X = _rank_k(300, 3, 6)
    with pytest.raises(LowdimError, match="3 duplicate rows"):
        PCA(duplicates="error").fit(np.vstack([X, X[:3]]))
    assert PCA().fit(np.vstack([X, X[:3]])).n_duplicates_dropped_ == 3
    with pytest.raises(LowdimError, match=r"variance=1.0 is out of range; allowed: \(0.0, 1.0\)"):
        PCA(variance=1.0).fit(X)
    with pytest.raises(LowdimError, match="unknown estimator 'pr'; choose one of: participation_ratio, threshold"):
        PCA(estimator="pr").fit(X)
    # PCA has no per-point variant: the API adds local TwoNN on the shared graph and says so
    r = lowdim.estimate(X, method="pca", local=True)
    assert r.dimension == PCA().fit(X).dimension_ and r.local.shape == (len(X),)
    assert any("TwoNN" in n for n in r.notes)
    with pytest.raises(LowdimError, match="has no parameter 'n_neighbors'"):
        lowdim.estimate(X, method="pca", n_neighbors=5)


# ----------------------------------------------------------------------------- correlation dim


@pytest.mark.parametrize(("name", "d", "D"), [("sphere", 3, 10), ("cube", 2, 2), ("swiss_roll", 2, 3),
                                              ("helix", 1, 3)])
def test_corrint_known_manifolds(name, d, D):
    X, true = make_manifold(name, 2500, dimension=d, ambient=D, random_state=1)
    est = CorrelationDimension().fit(X)
    assert est.dimension_ == pytest.approx(true, rel=0.1)
    assert est.ci_[0] <= est.dimension_ <= est.ci_[1]
    r1, r2 = est.scaling_range_
    assert 0 < r1 < r2


def test_corrint_scale_curve_local_slopes():
    X, _ = make_manifold("sphere", 2000, dimension=2, random_state=0)
    c = CorrelationDimension().fit(X).scale_curve_
    assert len(c.scale) == 11 and np.all(np.diff(c.scale) > 0)
    mid = (c.scale > np.quantile(c.scale, 0.3)) & (c.scale < np.quantile(c.scale, 0.8))
    assert np.all(np.abs(c.dimension[mid] - 2) < 0.3)


def test_corrint_subsample_is_seeded():
    X, _ = make_manifold("gaussian_plane", 6000, dimension=3, ambient=8, random_state=0)
    a = CorrelationDimension(max_samples=1500, random_state=1).fit(X)
    b = CorrelationDimension(max_samples=1500, random_state=1).fit(X)
    c = CorrelationDimension(max_samples=1500, random_state=2).fit(X)
    assert a.dimension_ == b.dimension_ and a.dimension_ != c.dimension_
    assert a.dimension_ == pytest.approx(3, rel=0.12)
    assert a.n_samples_ == 6000


def test_corrint_one_feature_duplicates_and_errors():
    X1 = np.random.default_rng(0).uniform(size=(800, 1))
    assert CorrelationDimension().fit(X1).dimension_ == pytest.approx(1, abs=0.1)
    X = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.raises(LowdimError, match="duplicate rows"):
        CorrelationDimension(duplicates="error").fit(np.vstack([X, X[:4]]))
    with pytest.raises(LowdimError, match=r"k2=10 is out of range; allowed: >= 11; the scaling range needs k1 < k2"):
        CorrelationDimension(k1=10, k2=10).fit(X)
    with pytest.raises(LowdimError, match=r"max_samples=15 is out of range; allowed: >= 21"):
        CorrelationDimension(max_samples=15).fit(X)
    with pytest.raises(LowdimError, match=r"at least 21"):
        CorrelationDimension().fit(X[:12])
    with pytest.raises(LowdimError, match="tied distances"):
        CorrelationDimension(k1=1, k2=2).fit(np.array([[i, j] for i in range(20) for j in range(20)], float))


def test_registry_names_and_estimate():
    X = _rank_k(800, 3, 10, isotropic=True)
    assert lowdim.estimate(X, method="pca").dimension == 3
    assert lowdim.estimate(X, method="pca", estimator="participation_ratio").dimension == pytest.approx(3)
    r = lowdim.estimate(X, method="corrint")
    assert r.method == "corrint" and r.scale_curve is not None
