"""method="auto" (a rule, not a constant), interval rules, notes, and one shared graph (issue 10.4)."""

import json
import warnings

import numpy as np
import pytest

import lowdim
from lowdim.datasets.out_of_family import make_out_of_family
from lowdim.estimators import GRIDE, CalibratedTwoNN, TwoNN
from lowdim.estimators.auto import CALIBRATION_MIN_CORRECTION, AutoID, noise_floor
from lowdim.estimators.graph import search_settings
from lowdim.estimators.intervals import bca_from_samples, bootstrap_mean_statistic


def _plane(n, d, D, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ np.linalg.qr(rng.normal(size=(D, d)))[0].T


def test_noise_target_gride_at_the_selected_scale():
    # the case: 10-D unit-variance Gaussian in R^100 with ambient noise sigma = 0.1
    X, d = make_out_of_family("gauss10_D100_noise0.1", 2000, random_state=1)
    r = lowdim.estimate(X)
    twonn = lowdim.estimate(X, method="twonn").dimension
    assert abs(twonn - d) / d > 0.4  # raw TwoNN is far off ...
    assert abs(r.dimension - d) / d <= 0.2  # ... the default is within 20 %
    assert r.method == "gride" and r.choice["chosen"] == "gride" and "noise floor" in r.choice["reason"]
    assert r.scale["n1"] > 1 and r.scale["n2"] == 2 * r.scale["n1"] and r.scale["distance"] > 0
    assert r.raw["candidates"]["twonn"]["dimension"] == pytest.approx(twonn)
    assert r.raw["noise_floor"]["noisy"] and r.scale_curve is not None
    assert any("twonn" in n and "gride" in n and "disagree" in n for n in r.notes)
    d_json = json.loads(r.to_json())
    assert d_json["choice"]["requested"] == "auto" and d_json["scale"]["n1"] == r.scale["n1"]


def test_clean_low_and_high_dimension_branches():
    low = lowdim.estimate(_plane(1500, 4, 30))
    assert low.method == "twonn" and "only" in low.choice["reason"]
    assert low.dimension == low.raw["candidates"]["twonn"]["dimension"] and low.calibration is None
    X = np.random.default_rng(2).uniform(size=(1500, 40))  # the 40-cube: TwoNN far below 40
    high = lowdim.estimate(X)
    assert high.method == "ctwonn" and high.calibration["n_read"] == 1500
    assert high.raw["twonn"] < high.dimension and abs(high.dimension - 40) < abs(high.raw["twonn"] - 40)
    assert high.raw["calibration_correction"] > CALIBRATION_MIN_CORRECTION


def test_noise_floor_test():
    assert not noise_floor(_plane(2000, 5, 40))["noisy"]  # clean linear embedding: zero floor
    assert not noise_floor(np.random.default_rng(0).uniform(size=(2000, 20)))["noisy"]  # fills the space
    noisy = _plane(2000, 5, 40) + 0.05 * np.random.default_rng(1).normal(size=(2000, 40))
    f = noise_floor(noisy)
    assert f["noisy"] and f["floor_variance"] == pytest.approx(0.05**2, rel=0.2)
    assert not noise_floor(np.random.default_rng(0).normal(size=(10, 20)))["noisy"]  # D >= n: untestable


def test_note_when_the_estimate_exceeds_the_number_of_features():
    X = np.random.default_rng(0).uniform(size=(40, 2))
    r = lowdim.estimate(X, method="twonn")
    assert r.dimension > 2 and any("exceeds the number of features (2)" in n for n in r.notes)
    ok = lowdim.estimate(_plane(500, 2, 5), method="twonn")
    assert not any("exceeds" in n for n in ok.notes)


def test_bca_matches_scipy_and_is_not_widened():
    from scipy.stats import bootstrap

    v = np.random.default_rng(0).exponential(size=300)
    ours = bootstrap_mean_statistic(v, lambda m: 1 / m[:, 0], n_boot=4000, confidence=0.95, random_state=1)
    ref = bootstrap((v,), lambda x, axis=-1: 1 / np.mean(x, axis=axis), method="BCa", n_resamples=4000,
                    random_state=2).confidence_interval
    width = ref.high - ref.low
    assert ours.method == "bootstrap BCa"
    assert abs(ours.low[0] - ref.low) < 0.05 * width and abs(ours.high[0] - ref.high) < 0.05 * width
    # BCa undefined (every resample above the estimate): percentile limits, the estimate outside
    lo, hi, ok = bca_from_samples(np.array([0.0]), np.linspace(1, 2, 101)[:, None], np.ones((5, 1)), 0.9)
    assert not ok[0] and lo[0] == pytest.approx(1.05) and hi[0] == pytest.approx(1.95)


def test_intervals_are_never_widened(monkeypatch):
    from lowdim.estimators import PCA, CorrelationDimension
    from lowdim.estimators.intervals import BootstrapInterval

    def biased(values, stat, *, n_boot, confidence, random_state, theta_hat=None):
        th = np.atleast_1d(np.asarray(theta_hat, float))
        return BootstrapInterval(th + 1.0, th + 2.0, "bootstrap BCa", np.full(th.shape, 1.5), n_boot)

    monkeypatch.setattr("lowdim.estimators.intervals.bootstrap_mean_statistic", biased)
    X = _plane(600, 3, 8)
    for est in (PCA(), CorrelationDimension(), lowdim.estimators.MLE()):
        est.fit(X)
        assert est.ci_[0] == pytest.approx(est.dimension_ + 1.0)  # kept as computed: misses the estimate
        c = est.scale_curve_
        assert np.allclose(c.ci_low, c.dimension + 1.0)


class _Recorder:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, X, n_neighbors=10, **kw):
        self.calls.append((int(np.asarray(X).shape[0]), int(n_neighbors), kw))
        return self.fn(X, n_neighbors, **kw)


def test_gride_searches_only_what_it_needs(monkeypatch):
    rec = _Recorder(lowdim.kneighbors)
    monkeypatch.setattr("lowdim.estimators.base.kneighbors", rec)
    X = _plane(600, 3, 8)
    GRIDE().fit(X)
    GRIDE(n1=4).fit(X)
    assert [c[1] for c in rec.calls] == [2, 8]


def test_extra_searches_use_the_graph_settings_and_given_graphs_are_not_searched_again(monkeypatch):
    X = _plane(1200, 3, 8)
    nb = lowdim.kneighbors(X, 64, backend="exact", n_jobs=1)

    def forbidden(*a, **k):
        raise AssertionError("searched the full point set again behind the user's back")

    monkeypatch.setattr("lowdim.estimators.base.kneighbors", forbidden)
    monkeypatch.setattr("lowdim.estimators.ctwonn.kneighbors", forbidden)
    rec = _Recorder(lowdim.kneighbors)
    monkeypatch.setattr("lowdim.estimators.graph.kneighbors", rec)
    AutoID().fit(nb)  # GRIDE curve, TwoNN, ctwonn, MLE: all from the graph, no search at all
    assert rec.calls == []
    t = TwoNN(decimation=True).fit(nb)
    assert [c[0] for c in rec.calls] == list(t.decimation_sizes_[1:])  # only the decimated subsets
    want = search_settings(nb)
    assert all(c[2]["backend"] == want["backend"] == "exact" and c[2]["n_jobs"] == want["n_jobs"]
               and c[2]["device"] == want["device"] for c in rec.calls)
    from dataclasses import replace

    assert search_settings(replace(nb, backend="exact-torch-cuda"))[("backend")] == "torch"
    assert search_settings(replace(nb, backend="exact-torch-cuda"))["device"] == "cuda"
    assert search_settings(replace(nb, backend="faiss-hnsw"))["backend"] == "faiss"


def test_ctwonn_above_the_calibrated_n_never_builds_the_full_graph(monkeypatch):
    X = np.random.default_rng(0).normal(size=(20_500, 3))

    def forbidden(*a, **k):
        raise AssertionError("built the full graph")

    monkeypatch.setattr("lowdim.estimators.base.kneighbors", forbidden)
    rec = _Recorder(lowdim.kneighbors)
    monkeypatch.setattr("lowdim.estimators.ctwonn.kneighbors", rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = CalibratedTwoNN(max_subsets=1).fit(X).result()
    assert [c[0] for c in rec.calls] == [20_000] and r.n_samples == 20_500
    assert abs(r.dimension - 3) < 0.2 and r.calibration["n_read"] == 20_000
