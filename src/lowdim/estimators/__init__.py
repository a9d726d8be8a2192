"""Intrinsic-dimension estimators, one file each; :mod:`lowdim.estimators.registry` lists them."""

from lowdim.estimators.base import IDEstimator
from lowdim.estimators.registry import REGISTRY, available, get_estimator
from lowdim.estimators.twonn import TwoNN

__all__ = ["REGISTRY", "IDEstimator", "TwoNN", "available", "get_estimator"]
