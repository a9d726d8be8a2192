"""Data sets: manifolds of known intrinsic dimension and offline loaders."""

from lowdim.datasets.manifolds import MANIFOLDS, make_manifold

__all__ = ["MANIFOLDS", "make_manifold"]
