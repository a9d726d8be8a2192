import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.datasets import make_manifold
from lowdim.estimators import GRIDE
from lowdim.estimators.gride import gride_from_log_mu


def _poisson_log_mu(d, n1, n2, N, seed):
    """Exact ratios of a homogeneous Poisson process in d dimensions: r_n^d are Gamma arrival times."""
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(size=(N, n2)), axis=1)
    return np.log(arrivals[:, n2 - 1] / arrivals[:, n1 - 1]) / d


@pytest.mark.parametrize(("d", "n1", "n2"), [(2.0, 1, 2), (7.0, 1, 2), (5.0, 4, 8), (12.0, 8, 16), (3.0, 2, 7)])
def test_exact_likelihood_recovers_d(d, n1, n2):
    est, err = gride_from_log_mu(_poisson_log_mu(d, n1, n2, 20000, 0), n1, n2)
    assert est == pytest.approx(d, rel=0.03)
    assert err < 0.03 * d


def test_fisher_error_is_calibrated():
    ests, errs = [], []
    for seed in range(40):
        e, s = gride_from_log_mu(_poisson_log_mu(6.0, 4, 8, 1000, seed), 4, 8)
        ests.append(e)
        errs.append(s)
    assert np.std(ests) == pytest.approx(np.mean(errs), rel=0.3)
    z = np.abs(np.array(ests) - 6.0) / np.array(errs)
    assert np.mean(z < 1.96) >= 0.85


def test_n1_one_is_the_unbiased_twonn_mle():
    L = _poisson_log_mu(3.0, 1, 2, 500, 1)
    assert gride_from_log_mu(L, 1, 2)[0] == pytest.approx((L.size - 1) / L.sum(), rel=1e-12)


@pytest.mark.parametrize(("name", "d", "D"), [("sphere", 3, 10), ("gaussian_plane", 6, 30),
                                              ("swiss_roll", 2, 3), ("helix", 1, 3)])
def test_known_manifolds(name, d, D):
    X, true = make_manifold(name, 2000, dimension=d, ambient=D, random_state=1)
    est = GRIDE().fit(X)
    assert est.dimension_ == pytest.approx(true, rel=0.1)
    assert est.ci_[0] < est.dimension_ < est.ci_[1]
    assert est.ci_[1] - est.ci_[0] == pytest.approx(2 * 1.959964 * est.std_error_, rel=1e-6)


def test_scale_curve_and_noise_robustness():
    X, _ = make_manifold("gaussian_plane", 3000, dimension=2, ambient=20, noise=0.01, random_state=0)
    est = GRIDE(range_max=64).fit(X)
    c = est.scale_curve_
    assert list(est.scale_ranks_) == [1, 2, 4, 8, 16, 32]
    assert np.all(np.diff(c.scale) > 0)
    assert c.dimension[0] == est.dimension_
    # small-scale noise inflates the n1 = 1 estimate; larger n1 sees the 2-D plane
    assert est.dimension_ > 3
    assert c.dimension[-1] == pytest.approx(2, rel=0.1)
    assert GRIDE(n1=32).fit(X).dimension_ == pytest.approx(c.dimension[-1], rel=1e-9)
    # the plateau rule leaves the noise-dominated small scales and reads the plane
    auto = GRIDE(n1="auto").fit(X)
    assert auto.selected_n1_ > 1 and auto.dimension_ == pytest.approx(2, rel=0.1)
    res = auto.result()
    assert res.scale["n1"] == auto.selected_n1_ and res.scale["n2"] == 2 * auto.selected_n1_
    i = list(auto.scale_ranks_).index(auto.selected_n1_)
    assert res.scale["distance"] == pytest.approx(res.scale_curve.scale[i])
    assert res.dimension == res.scale_curve.dimension[i] and "Fisher" in res.interval_method


def test_plateau_rule_keeps_n1_1_on_clean_data():
    from lowdim.estimators.gride import select_scale

    X, _ = make_manifold("cube", 3000, dimension=4, random_state=0)
    assert GRIDE(n1="auto").fit(X).selected_n1_ == 1
    # the rule itself: falls of 10 % (significant) then 1 % stop at the second scale
    assert select_scale(np.array([10.0, 9.0, 8.9, 8.0]), np.full(4, 0.05)) == 1
    assert select_scale(np.array([10.0, 9.0, 8.0]), np.full(3, 1.0)) == 0  # not significant
    with pytest.raises(LowdimError, match="n1 must be a positive int or 'auto'"):
        GRIDE(n1="best").fit(X)


def test_curve_capped_by_neighbors_and_small_n():
    X, _ = make_manifold("sphere", 800, dimension=2, random_state=0)
    nb = lowdim.kneighbors(X, 30)
    est = GRIDE().fit(nb)
    assert list(est.scale_ranks_) == [1, 2, 4, 8]
    assert est.dimension_ == pytest.approx(GRIDE().fit(X).dimension_, rel=1e-12)
    # an array input searches only the n2 neighbours GRIDE needs (issue 10: not 64)
    assert list(GRIDE().fit(X).scale_ranks_) == [1]
    assert list(GRIDE(range_max=4).fit(nb).scale_ranks_) == [1, 2]
    small = GRIDE(range_max=64).fit(X[:40])  # fewer points than range_max: the curve stops at n - 1
    assert list(small.scale_ranks_) == [1, 2, 4, 8, 16]
    with pytest.raises(LowdimError, match="needs 40 neighbours"):
        GRIDE(n1=20).fit(nb)


def test_one_feature_and_duplicates():
    X = np.random.default_rng(0).normal(size=(500, 1))
    assert GRIDE().fit(X).dimension_ <= 1.15
    with pytest.raises(LowdimError, match="duplicates='drop'"):
        GRIDE(duplicates="keep").fit(np.vstack([X, X[:5]]))


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(200, 3))
    with pytest.raises(LowdimError, match=r"n1=0 is out of range; allowed: >= 1"):
        GRIDE(n1=0).fit(X)
    with pytest.raises(LowdimError, match=r"n2=3 is out of range; allowed: >= 4; GRIDE needs n2 > n1"):
        GRIDE(n1=3, n2=3).fit(X)
    with pytest.raises(LowdimError, match=r"range_max=1 is out of range; allowed: >= 2"):
        GRIDE(range_max=1).fit(X)
    with pytest.raises(LowdimError, match=r"n1 must be an integer"):
        GRIDE(n1=1.5).fit(X)


def test_tied_distances_give_finite_interval():
    # integer lattice data (sklearn digits) have ratios of exactly 1; the error must stay finite
    import warnings

    from sklearn.datasets import load_digits

    import lowdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = lowdim.estimate(load_digits().data, method="gride")
    assert np.isfinite(r.ci).all() and r.ci[0] < r.dimension < r.ci[1]
