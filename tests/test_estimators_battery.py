"""The shared battery: every registered estimator joins it the moment it is registered."""

import json
import warnings

import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.estimators import REGISTRY, get_estimator

METHODS = sorted(REGISTRY)


def _plane(n=1500, d=3, D=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, D))


@pytest.mark.parametrize("method", METHODS)
def test_rank_one_gives_one(method):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1000, 1)) @ rng.normal(size=(1, 6))
    r = lowdim.estimate(X, method=method)
    assert r.dimension == pytest.approx(1, abs=0.35), r


@pytest.mark.parametrize("method", METHODS)
def test_linear_three_plane(method):
    r = lowdim.estimate(_plane(), method=method)
    assert r.dimension == pytest.approx(3, rel=0.25), r
    assert r.ci[0] <= r.dimension <= r.ci[1]
    assert r.interval_method  # every interval says how it was computed
    if method == "auto":  # auto names the estimator it used, and why
        assert r.method in REGISTRY and r.method != "auto" and r.choice["requested"] == "auto"
    else:
        assert r.method == method
    json.loads(r.to_json())


@pytest.mark.parametrize("method", METHODS)
def test_one_feature_is_valid(method):
    X = np.random.default_rng(0).normal(size=(500, 1))
    assert lowdim.estimate(X, method=method).dimension <= 1.3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", ["nan", "constant", "1d", "strings"])
def test_bad_input(method, bad):
    X = _plane(200)
    if bad == "nan":
        X[3, 2] = np.nan
    elif bad == "constant":
        X = np.ones((200, 4))
    elif bad == "1d":
        X = X[:, 0]
    else:
        X = X.astype(str)
    with pytest.raises(LowdimError):
        lowdim.estimate(X, method=method)


@pytest.mark.parametrize("method", METHODS)
def test_neighbors_reuse_gives_same_answer(method):
    X = _plane(800)
    nb = lowdim.kneighbors(X, 64)
    a = lowdim.estimate(X, method=method)
    b = lowdim.estimate(nb, method=method)
    assert a.dimension == pytest.approx(b.dimension, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_duplicates_dropped_not_nan(method):
    X = _plane(1000)
    Xd = np.vstack([X, X[:100]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = lowdim.estimate(Xd, method=method)
    assert np.isfinite(r.dimension) and r.dimension == pytest.approx(3, rel=0.3)


@pytest.mark.parametrize("method", METHODS)
def test_sklearn_shape(method):
    cls = get_estimator(method)
    est = cls()
    params = est.get_params()
    assert "random_state" in params or "confidence" in params
    assert repr(est).startswith(cls.__name__)
    with pytest.raises(LowdimError, match="not fitted"):
        est.result()
    with pytest.raises(LowdimError, match="no parameter"):
        est.set_params(nonsense=1)


def test_unknown_method_lists_registry():
    with pytest.raises(LowdimError, match="unknown method 'foo'.*twonn"):
        lowdim.estimate(_plane(100), method="foo")


def test_auto_names_its_choice():
    r = lowdim.estimate(_plane(600))
    assert r.method in REGISTRY and r.method != "auto"
    assert r.choice["chosen"] == r.method and r.choice["reason"] and r.choice["rule"]
    assert any("auto" in n for n in r.notes)


def test_integer_input_warns_and_works():
    X = np.random.default_rng(0).integers(0, 1000, size=(800, 3))
    with pytest.warns(UserWarning, match="integer"):
        r = lowdim.estimate(X, method="twonn")
    assert r.dimension == pytest.approx(3, rel=0.2)
