"""The explicit table of ID estimators: name -> class. A new estimator is registered here."""

from __future__ import annotations

from lowdim.errors import LowdimError
from lowdim.estimators.auto import AutoID
from lowdim.estimators.base import IDEstimator
from lowdim.estimators.corrint import CorrelationDimension
from lowdim.estimators.ctwonn import CalibratedTwoNN
from lowdim.estimators.gride import GRIDE
from lowdim.estimators.mle import MLE
from lowdim.estimators.pca import PCA
from lowdim.estimators.twonn import TwoNN

__all__ = ["AUTO", "REGISTRY", "available", "get_estimator"]

#: method="auto" is a rule (:class:`~lowdim.estimators.auto.AutoID`), not a constant: its results
#: are named after the estimator it used (``IDResult.method``) and say why (``IDResult.choice``).
AUTO = "auto"

REGISTRY: dict[str, type[IDEstimator]] = {
    "auto": AutoID,
    "ctwonn": CalibratedTwoNN,
    "twonn": TwoNN,
    "mle": MLE,
    "gride": GRIDE,
    "pca": PCA,
    "corrint": CorrelationDimension,
}


def available() -> list[str]:
    """Registered method names, ``"auto"`` first."""
    return ["auto", *sorted(k for k in REGISTRY if k != "auto")]


def get_estimator(method: str) -> type[IDEstimator]:
    """Look up an estimator class by name; the error lists the registry."""
    key = str(method).lower()
    if key not in REGISTRY:
        raise LowdimError(f"unknown method {method!r}; choose one of: {', '.join(available())}")
    return REGISTRY[key]
