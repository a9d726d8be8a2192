"""Intrinsic-dimension estimators, one file each; :mod:`lowdim.estimators.registry` lists them."""

from lowdim.estimators.base import IDEstimator
from lowdim.estimators.corrint import CorrelationDimension
from lowdim.estimators.ctwonn import CalibratedTwoNN
from lowdim.estimators.gride import GRIDE
from lowdim.estimators.mle import MLE
from lowdim.estimators.pca import PCA
from lowdim.estimators.registry import REGISTRY, available, get_estimator
from lowdim.estimators.twonn import TwoNN

__all__ = ["GRIDE", "MLE", "PCA", "REGISTRY", "CalibratedTwoNN", "CorrelationDimension", "IDEstimator", "TwoNN", "available", "get_estimator"]
