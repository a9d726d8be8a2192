"""Data sets: manifolds of known intrinsic dimension and offline loaders."""

from lowdim.datasets.manifolds import MANIFOLDS, make_manifold
from lowdim.datasets.molrg import molrg

__all__ = ["MANIFOLDS", "make_manifold", "molrg"]
