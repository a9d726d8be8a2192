import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.datasets import make_manifold
from lowdim.estimators import TwoNN
from lowdim.estimators.twonn import twonn_from_mu


def test_pareto_mu_recovers_d_and_ci_covers():
    rng = np.random.default_rng(0)
    hits = 0
    for seed in range(40):
        mu = (1 - np.random.default_rng(seed).uniform(size=1000)) ** (-1 / 7.0)  # exact Pareto(d=7)
        d, (lo, hi) = twonn_from_mu(mu, discard_fraction=0.0)
        hits += lo <= 7 <= hi
    assert 34 <= hits <= 40  # 95 % coverage, with slack for 40 trials
    mu = (1 - rng.uniform(size=200_000)) ** (-1 / 7.0)
    for frac in (0.0, 0.1, 0.3):  # censoring keeps the MLE unbiased
        assert twonn_from_mu(mu, discard_fraction=frac)[0] == pytest.approx(7, rel=0.02)
    assert twonn_from_mu(mu, algorithm="linear")[0] == pytest.approx(7, rel=0.03)


@pytest.mark.parametrize(("name", "d", "D"), [("gaussian_plane", 4, 30), ("sphere", 3, 10), ("swiss_roll", 2, 3), ("helix", 1, 3)])
def test_known_manifolds(name, d, D):
    X, true = make_manifold(name, 3000, dimension=d, ambient=D, random_state=1)
    r = TwoNN().fit(X)
    assert r.dimension_ == pytest.approx(true, rel=0.1)
    assert r.ci_[0] < r.dimension_ < r.ci_[1]


def test_decimation_curve(rng):
    X, _ = make_manifold("gaussian_plane", 4000, dimension=3, ambient=8)
    est = TwoNN(decimation=True).fit(X)
    c = est.scale_curve_
    assert len(c.dimension) >= 6 and (np.abs(c.dimension[:4] - 3) < 0.6).all()
    assert list(est.decimation_sizes_[:3]) == [4000, 2000, 1000]
    assert TwoNN(decimation=False).fit(X).scale_curve_ is None


def test_local_never_overwrites_global(rng):
    X, _ = make_manifold("cube", 2000, dimension=2)
    g = TwoNN().fit(X).dimension_
    est = TwoNN(local=True, n_neighbors=15).fit(X)
    assert est.dimension_ == g
    assert est.local_dimensions_.shape == (2000,)
    assert np.median(est.local_dimensions_) == pytest.approx(2, rel=0.15)


def test_local_maps_duplicates_back(rng):
    X = rng.uniform(size=(500, 2))
    Xd = np.vstack([X, X[:10]])
    with pytest.warns(UserWarning):
        loc = lowdim.local_id(Xd, n_neighbors=10)
    assert loc.shape == (510,)
    np.testing.assert_array_equal(loc[500:], loc[:10])


def test_local_id_two_clusters_of_different_dimension():
    rng = np.random.default_rng(0)
    A = np.hstack([rng.uniform(size=(1500, 1)), np.zeros((1500, 4))])
    B = np.hstack([rng.uniform(size=(1500, 5))]) + 10
    loc = lowdim.local_id(np.vstack([A, B]), n_neighbors=20)
    assert np.median(loc[:1500]) == pytest.approx(1, abs=0.25)
    assert np.median(loc[1500:]) == pytest.approx(5, rel=0.2)


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(LowdimError, match=r"discard_fraction=0.95.*\[0.0, 0.9\]"):
        TwoNN(discard_fraction=0.95).fit(X)
    with pytest.raises(LowdimError, match="unknown algorithm 'ols'"):
        TwoNN(algorithm="ols").fit(X)
    with pytest.raises(LowdimError, match="confidence"):
        TwoNN(confidence=1.5).fit(X)


def test_result_json_roundtrip():
    import json

    X, _ = make_manifold("sphere", 800, dimension=2)
    r = lowdim.estimate(X, method="twonn", local=True)
    d = json.loads(r.to_json())
    assert d["method"] == "twonn" and d["n_samples"] == 800
    assert d["local"]["n"] == 800 and len(d["ci"]) == 2
    assert d["scale_curve"]["label"].startswith("median")
    assert len(json.loads(r.to_json(include_local=True))["local"]) == 800
