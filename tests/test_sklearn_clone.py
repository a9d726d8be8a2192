"""scikit-learn interoperability of every registered estimator: clone, get_params(deep), set_params."""

import numpy as np
import pytest
from sklearn.base import clone

from lowdim import LowdimError
from lowdim.estimators.registry import REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_clone_keeps_parameters_and_is_unfitted(name):
    est = REGISTRY[name]()
    params = est.get_params(deep=True)
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    assert twin.get_params(deep=False) == params
    if "random_state" in params:
        assert twin.set_params(random_state=7).get_params()["random_state"] == 7
        assert est.get_params()["random_state"] == params["random_state"]
    with pytest.raises(LowdimError, match="no parameter 'nope'"):
        twin.set_params(nope=1)


def test_clone_of_fitted_estimator_fits_the_same():
    X = np.random.default_rng(0).normal(size=(500, 3)) @ np.random.default_rng(1).normal(size=(3, 9))
    est = REGISTRY["twonn"]().fit(X)
    twin = clone(est)
    assert not hasattr(twin, "dimension_") or twin.__dict__.get("dimension_") is None
    assert twin.fit(X).dimension_ == pytest.approx(est.dimension_)
