import json
import warnings

import numpy as np
import pytest

import lowdim
from lowdim.datasets.manifolds import make_manifold
from lowdim.errors import LowdimError
from lowdim.estimators import CalibratedTwoNN
from lowdim.estimators.ctwonn import load_calibration


def _rotated(X, D, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((D, X.shape[1])))
    return X @ Q.T


def test_gaussian_20d_in_40d():
    X = _rotated(np.random.default_rng(1).standard_normal((2500, 20)), 40)
    est = CalibratedTwoNN().fit(X)
    assert est.raw_dimension_ < 18.5  # plain TwoNN is biased low here ...
    assert abs(est.dimension_ - 20) < 2.0  # ... the calibrated estimate is not
    lo, hi = est.ci_
    assert lo < est.dimension_ < hi and hi - lo < 6


def test_sphere_10d_and_swiss_roll():
    X, _ = make_manifold("sphere", 2000, dimension=10, random_state=2)
    assert abs(CalibratedTwoNN().fit(X).dimension_ - 10) < 1.0
    X, _ = make_manifold("swiss_roll", 2000, random_state=3)
    assert abs(CalibratedTwoNN().fit(X).dimension_ - 2) < 0.2


def test_rank_one_data_is_one_dimensional():
    rng = np.random.default_rng(4)
    X = np.outer(rng.uniform(-1, 1, 1000), rng.standard_normal(30))
    assert abs(CalibratedTwoNN().fit(X).dimension_ - 1) < 0.15


def test_high_dimension_cube_is_not_underestimated():
    X = np.random.default_rng(5).uniform(size=(2500, 50))
    est = CalibratedTwoNN().fit(X)
    assert est.raw_dimension_ < 35
    assert 42 < est.dimension_ < 58


def test_calibration_inversion_is_monotone_and_round_trips():
    cal = load_calibration()
    v = np.linspace(0.2, 120, 600)
    for shape in cal.shapes:
        for n in (10, 20, 333, 2500, 20000, 10**6):
            d = cal.invert(v, shape, n)
            assert np.all(np.diff(d) > 0), (shape, n)
        for n in cal.n_grid:  # at grid sizes the curve maps d -> TwoNN value -> d
            y = cal.curve(shape, n)
            np.testing.assert_allclose(cal.invert(y, shape, n), cal.d_grid, rtol=1e-6, atol=1e-6)
    # the bias grows with d and shrinks with N
    ball = cal.mean[cal.shapes.index("ball")]
    assert np.all(ball[:, -1] / cal.d_grid[-1] < ball[:, 4] / cal.d_grid[4])
    assert ball[-1, -1] > ball[0, -1]


def test_neighbors_reuse_gives_the_same_answer():
    X, _ = make_manifold("ball", 1500, dimension=8, random_state=6)
    nb = lowdim.kneighbors(X, 5)
    assert CalibratedTwoNN().fit(nb).dimension_ == CalibratedTwoNN().fit(X).dimension_


def test_large_n_uses_pooled_subsets():
    X = np.random.default_rng(7).uniform(size=(20_500, 3))
    est = CalibratedTwoNN().fit(X)
    assert abs(est.dimension_ - 3) < 0.15 and est.calibration_n_ == 20_000
    assert any("subsets" in n for n in est.notes_)


def test_small_n_notes_the_extrapolation():
    X = np.random.default_rng(8).standard_normal((12, 2))
    est = CalibratedTwoNN().fit(X)
    assert np.isfinite(est.dimension_) and any("below the calibrated range" in n for n in est.notes_)


@pytest.mark.parametrize(("params", "match"), [
    ({"reference": "cube"}, "reference"),
    ({"max_subsets": 0}, "max_subsets"),
    ({"max_subsets": 2.5}, "max_subsets"),
    ({"confidence": 1.5}, "confidence"),
    ({"decimation": "yes"}, "decimation"),
])
def test_bad_parameters(params, match):
    X = np.random.default_rng(9).standard_normal((100, 3))
    with pytest.raises(LowdimError, match=match):
        CalibratedTwoNN(**params).fit(X)


def test_too_few_points_and_missing_table(tmp_path):
    with pytest.raises(LowdimError, match="n_neighbors=2"):
        CalibratedTwoNN().fit(np.zeros((2, 3)) + np.arange(2)[:, None])
    with pytest.raises(LowdimError, match="make_calibration"):
        load_calibration(str(tmp_path / "nothing.npz"))


def test_result_carries_raw_twonn_and_calibration_provenance():
    X = _rotated(np.random.default_rng(10).standard_normal((1500, 6)), 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = lowdim.estimate(X, method="ctwonn")
    cal = load_calibration()
    assert r.method == "ctwonn" and r.raw["twonn"] == pytest.approx(lowdim.estimate(X, method="twonn").dimension)
    assert r.raw["twonn_ci"][0] < r.raw["twonn"] < r.raw["twonn_ci"][1]
    assert r.calibration["table"] == cal.version and r.calibration["n_read"] == 1500
    assert 0 < r.calibration["cell_error"] < 0.02
    assert "calibration curve's standard error" in r.interval_method
    assert abs(r.dimension - 6) < 0.6 and r.ci[0] < r.dimension < r.ci[1]
    json.loads(r.to_json())


def test_calibration_error_is_folded_into_the_interval():
    X = np.random.default_rng(3).uniform(size=(1000, 30))
    est = CalibratedTwoNN().fit(X)
    cal = load_calibration()
    assert est.result().raw["n_ratios"] == 1000
    d2 = lowdim.kneighbors(X, 2).distances
    from dataclasses import replace

    exact = replace(cal, std=np.zeros_like(cal.std))  # a table without sampling error
    lo, hi = est.ci_
    raw, _, se, _, d, (lo0, hi0) = est._calibrated(d2[:, 1] / d2[:, 0], 1000, exact)
    assert se == 0 and d == pytest.approx(est.dimension_)
    assert lo < lo0 and hi > hi0  # the table's own error widens the interval on both sides


def test_local_ids_leave_the_global_estimate_alone():
    X, _ = make_manifold("swiss_roll", 1500, random_state=11)
    est = CalibratedTwoNN(local=True, n_neighbors=15).fit(X)
    assert est.local_dimensions_.shape == (1500,)
    assert abs(np.median(est.local_dimensions_) - 2) < 0.3
    assert est.dimension_ == CalibratedTwoNN().fit(X).dimension_


def test_reference_curves_and_interval_envelope():
    X = np.random.default_rng(12).uniform(size=(2000, 25))
    fits = {r: CalibratedTwoNN(reference=r).fit(X) for r in ("ball", "sphere", "ball+sphere")}
    by = fits["ball"].dimension_by_reference_
    assert fits["ball"].dimension_ == by["ball"] and fits["sphere"].dimension_ == by["sphere"]
    assert fits["ball+sphere"].dimension_ == pytest.approx((by["ball"] + by["sphere"]) / 2)
    lo, hi = fits["ball"].ci_
    assert all(f.ci_ == (lo, hi) for f in fits.values())
    assert lo < min(by.values()) <= max(by.values()) < hi


def test_decimation_curve_is_flat_on_a_calibration_shape():
    X, _ = make_manifold("ball", 2500, dimension=12, random_state=13)
    est = CalibratedTwoNN().fit(X)
    c = est.scale_curve_
    assert list(est.decimation_sizes_[:3]) == [2500, 1250, 625]
    assert c.dimension[0] == est.dimension_
    big = est.decimation_sizes_ >= 150
    assert np.all(np.abs(c.dimension[big] - 12) < 1.5), c.dimension
    assert np.all(c.ci_low <= c.dimension) and np.all(c.dimension <= c.ci_high)
    assert CalibratedTwoNN(decimation=False).fit(X).scale_curve_ is None
