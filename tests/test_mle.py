import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.datasets import make_manifold
from lowdim.estimators import GRIDE, MLE, PCA, CorrelationDimension, TwoNN
from lowdim.estimators.mle import resampled_means


def _direct_mle(dist, k, kfac):
    """Levina–Bickel per point, written as in the paper (a loop; reference for the vectorised code)."""
    out = []
    for row in dist:
        T = row[:k]
        out.append(kfac / np.sum(np.log(T[k - 1] / T[: k - 1])))
    return np.array(out)


@pytest.mark.parametrize(("name", "d", "D"), [("sphere", 3, 10), ("gaussian_plane", 5, 30),
                                              ("swiss_roll", 2, 3), ("helix", 1, 3)])
def test_known_manifolds(name, d, D):
    X, true = make_manifold(name, 2000, dimension=d, ambient=D, random_state=1)
    est = MLE().fit(X)
    assert est.dimension_ == pytest.approx(true, rel=0.08)
    assert est.ci_[0] < est.dimension_ < est.ci_[1]


def test_matches_definition_and_mackay_ghahramani_pooling():
    X, _ = make_manifold("sphere", 600, dimension=2, random_state=0)
    nb = lowdim.kneighbors(X, 20)
    k = 20
    per_point = _direct_mle(nb.distances, k, k - 1)
    est = MLE(n_neighbors=k).fit(nb)
    # MacKay–Ghahramani: the inverse of the mean of inverses
    assert est.dimension_ == pytest.approx(1 / np.mean(1 / per_point), rel=1e-12)
    assert est.dimension_ != pytest.approx(np.mean(per_point), rel=1e-3)  # not the plain average
    unb = MLE(n_neighbors=k, unbiased=True).fit(nb)
    assert unb.dimension_ == pytest.approx(est.dimension_ * (k - 2) / (k - 1), rel=1e-12)
    # local: per-point (k − 2) / S by default, (k − 1) / S with unbiased=False
    loc = MLE(n_neighbors=k, local=True).fit(nb).local_dimensions_
    np.testing.assert_allclose(loc, _direct_mle(nb.distances, k, k - 2), rtol=1e-12)
    loc1 = MLE(n_neighbors=k, local=True, unbiased=False).fit(nb).local_dimensions_
    np.testing.assert_allclose(loc1, per_point, rtol=1e-12)


def test_k_range_average_and_scale_curve():
    X, _ = make_manifold("gaussian_plane", 1500, dimension=4, ambient=12, random_state=2)
    est = MLE(k_range=(10, 20)).fit(X)
    c = est.scale_curve_
    assert list(c.scale) == list(range(2, 21))
    assert est.dimension_ == pytest.approx(np.mean(c.dimension[8:]), rel=1e-12)  # k = 10 … 20
    assert (c.ci_low <= c.dimension).all() and (c.dimension <= c.ci_high).all()
    assert np.all(np.abs(c.dimension - 4) < 0.6)
    assert MLE(n_neighbors=20).fit(X).dimension_ == pytest.approx(c.dimension[-1], rel=1e-12)


def test_bootstrap_ci_seeded():
    X, _ = make_manifold("sphere", 1000, dimension=3, random_state=0)
    a, b, c = (MLE(random_state=s).fit(X).ci_ for s in (0, 0, 1))
    assert a == b and a != c
    means = resampled_means(np.arange(1000.0), 400, 0)
    assert means.shape == (400, 1)
    assert np.std(means) == pytest.approx(np.std(np.arange(1000.0)) / np.sqrt(1000), rel=0.15)


def test_local_never_overwrites_global_and_local_id():
    X, _ = make_manifold("cube", 2000, dimension=2, random_state=0)
    g = MLE().fit(X).dimension_
    est = MLE(local=True, n_neighbors=15).fit(X)
    assert est.dimension_ == pytest.approx(MLE(n_neighbors=15).fit(X).dimension_, rel=1e-12)
    assert est.local_dimensions_.shape == (2000,)
    assert np.median(est.local_dimensions_) == pytest.approx(2, rel=0.1)
    loc = lowdim.local_id(X, method="mle", n_neighbors=20)
    assert loc.shape == (2000,) and np.median(loc) == pytest.approx(2, rel=0.1)
    assert MLE().fit(X).dimension_ == g


def test_local_two_regions_of_different_dimension():
    rng = np.random.default_rng(0)
    A = np.hstack([rng.uniform(size=(1500, 1)), np.zeros((1500, 4))])
    B = rng.uniform(size=(1500, 5)) + 10
    loc = lowdim.local_id(np.vstack([A, B]), method="mle", n_neighbors=20)
    assert np.median(loc[:1500]) == pytest.approx(1, abs=0.2)
    assert np.median(loc[1500:]) == pytest.approx(5, rel=0.2)


def test_neighbors_reuse_across_estimators():
    X, _ = make_manifold("sphere", 1200, dimension=3, ambient=6, random_state=4)
    nb = lowdim.kneighbors(X, 30)
    for est in (MLE(), MLE(k_range=(5, 25)), GRIDE(), TwoNN(), PCA(), CorrelationDimension()):
        a = est.fit(X).dimension_
        b = est.fit(nb).dimension_
        assert a == pytest.approx(b, rel=1e-9), type(est).__name__
    with pytest.raises(LowdimError, match="needs 40 neighbours.*holds 30"):
        MLE(n_neighbors=40).fit(nb)


def test_one_feature_and_duplicates():
    X = np.random.default_rng(0).normal(size=(500, 1))
    assert MLE().fit(X).dimension_ <= 1.1
    Xd = np.vstack([X, X[:20]])
    with pytest.raises(LowdimError, match="zero distance.*duplicates='drop'"):
        MLE(duplicates="keep").fit(Xd)
    with pytest.warns(UserWarning, match="dropped 20"):
        assert MLE().fit(Xd).n_duplicates_dropped_ == 20


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(LowdimError, match=r"n_neighbors=1 is out of range; allowed: >= 2"):
        MLE(n_neighbors=1).fit(X)
    with pytest.raises(LowdimError, match=r"n_neighbors=2 is out of range; allowed: >= 3"):
        MLE(n_neighbors=2, local=True).fit(X)
    with pytest.raises(LowdimError, match=r"k_range\[1\]=3 is out of range; allowed: >= 5"):
        MLE(k_range=(5, 3)).fit(X)
    with pytest.raises(LowdimError, match=r"k_range must be a pair"):
        MLE(k_range=5).fit(X)
    with pytest.raises(LowdimError, match=r"n_bootstrap=2 is out of range"):
        MLE(n_bootstrap=2).fit(X)
    with pytest.raises(LowdimError, match=r"unbiased must be"):
        MLE(unbiased="yes").fit(X)
    with pytest.raises(LowdimError, match=r"at least 21"):
        MLE().fit(X[:15])
