"""Mixture of low-rank Gaussians (MoLRG): a union of subspaces with a known dimension per component.

Each of the K components is a standard Gaussian on its own random ``d_k``-dimensional subspace of
``R^D``: ``x = U_k a + noise * e`` with ``U_k`` an orthonormal ``D x d_k`` basis,
``a ~ N(0, I_{d_k})`` and ``e ~ N(0, I_D)``. This is the data model of Wang et al. (2024), who show
that a diffusion model with a matching low-rank denoiser learns it by subspace clustering, with a
sample complexity linear in the ``d_k``. Each point's local intrinsic dimension is its component's
``d_k``; a global ID of the union is ill-defined (it depends on the scale and the mixing weights).

References
----------
P. Wang, H. Zhang, Z. Zhang, S. Chen, Y. Ma and Q. Qu, "Diffusion models learn low-dimensional
distributions via subspace clustering", arXiv:2409.02426 (2024).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.validation import check_int

__all__ = ["distance_to_subspaces", "molrg"]


def _dims(subspace_dims: Any, ambient_dim: int) -> tuple[int, ...]:
    if isinstance(subspace_dims, (int, np.integer, str, bytes)) or not isinstance(subspace_dims, Sequence | np.ndarray):
        raise LowdimError(f"subspace_dims must be a sequence of positive integers (one per component), "
                          f"got {subspace_dims!r}; e.g. subspace_dims=(2, 4, 8)")
    if len(subspace_dims) == 0:
        raise LowdimError("subspace_dims is empty; give one dimension per component, e.g. (2, 4, 8)")
    return tuple(check_int(f"subspace_dims[{i}]", d, low=1, high=ambient_dim,
                           fix=f"each subspace must fit in ambient_dim={ambient_dim}")
                 for i, d in enumerate(subspace_dims))


def _weights(weights: Any, k: int) -> np.ndarray:
    if weights is None:
        return np.full(k, 1.0 / k)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise LowdimError(f"weights must be {k} non-negative finite numbers (one per component) with a "
                          f"positive sum, got {weights!r}")
    return w / w.sum()


def molrg(n: int, *, ambient_dim: int, subspace_dims: Sequence[int], noise: float = 0.0,
          weights: Sequence[float] | None = None, orthogonal: bool = True,
          random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Sample a mixture of low-rank Gaussians (Wang et al. 2024).

    Parameters
    ----------
    n : int
        Number of points.
    ambient_dim : int
        Ambient dimension ``D``.
    subspace_dims : sequence of int
        Dimension ``d_k`` of each component's subspace (``1 <= d_k <= D``).
    noise : float, default=0.0
        Standard deviation of isotropic Gaussian noise added in all ``D`` coordinates.
    weights : sequence of float, optional
        Mixing weights (normalised to sum to 1); default equal. Each point's component is drawn
        independently from them.
    orthogonal : bool, default=True
        Mutually orthogonal subspaces (the paper's setting and its reference code's; needs
        ``sum(subspace_dims) <= D``). ``False`` draws each basis independently (subspaces then
        overlap only at the origin when ``d_k + d_l <= D``).
    random_state : int, optional
        Seed; the same seed gives the same bases and points.

    Returns
    -------
    X : ndarray of shape (n, D)
    labels : ndarray of shape (n,)
        Component of each point (int64); its local intrinsic dimension is
        ``subspace_dims[labels[i]]``.
    bases : list of ndarray
        ``bases[k]`` is the orthonormal ``D x d_k`` basis of component ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> X, labels, bases = molrg(600, ambient_dim=48, subspace_dims=(2, 4, 8), random_state=0)
    >>> X.shape, [U.shape for U in bases]
    ((600, 48), [(48, 2), (48, 4), (48, 8)])
    >>> [int(np.linalg.matrix_rank(X[labels == k])) for k in range(3)]
    [2, 4, 8]
    """
    n = check_int("n", n, low=1)
    D = check_int("ambient_dim", ambient_dim, low=1)
    dims = _dims(subspace_dims, D)
    w = _weights(weights, len(dims))
    try:
        if isinstance(noise, bool):
            raise TypeError
        sigma = float(noise)
    except (TypeError, ValueError):
        raise LowdimError(f"noise must be a non-negative number, got {noise!r}") from None
    if not np.isfinite(sigma) or sigma < 0:
        raise LowdimError(f"noise={noise!r} must be a finite standard deviation >= 0")
    if orthogonal and sum(dims) > D:
        raise LowdimError(f"orthogonal subspaces need sum(subspace_dims)={sum(dims)} <= ambient_dim={D}; "
                          "raise ambient_dim, lower the dimensions, or pass orthogonal=False")
    rng = np.random.default_rng(random_state)
    if orthogonal:  # disjoint columns of one random orthonormal matrix
        Q = np.linalg.qr(rng.standard_normal((D, sum(dims))))[0]
        edges = np.cumsum((0, *dims))
        bases = [np.ascontiguousarray(Q[:, a:b]) for a, b in itertools.pairwise(edges)]
    else:
        bases = [np.linalg.qr(rng.standard_normal((D, d)))[0] for d in dims]
    labels = rng.choice(len(dims), size=n, p=w).astype(np.int64)
    X = np.zeros((n, D))
    for k, U in enumerate(bases):
        rows = np.flatnonzero(labels == k)
        X[rows] = rng.standard_normal((rows.size, U.shape[1])) @ U.T
    if sigma > 0:
        X += sigma * rng.standard_normal(X.shape)
    return X, labels, bases


def distance_to_subspaces(X: Any, bases: Sequence[np.ndarray]) -> np.ndarray:
    """Euclidean distance of each point to each subspace ``span(bases[k])``.

    Parameters
    ----------
    X : array-like of shape (n, D)
    bases : sequence of ndarray of shape (D, d_k), orthonormal columns

    Returns
    -------
    ndarray of shape (n, K)
        ``||(I - U_k U_k^T) x||``; the distance to the union is the row minimum.

    Examples
    --------
    >>> X, labels, bases = molrg(100, ambient_dim=10, subspace_dims=(2, 3), random_state=1)
    >>> dist = distance_to_subspaces(X, bases)
    >>> bool((dist[np.arange(100), labels] < 1e-12).all())
    True
    """
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2 or any(np.ndim(U) != 2 or np.shape(U)[0] != A.shape[1] for U in bases):
        raise LowdimError(f"X must be (n, D) and each basis (D, d_k); got X of shape {A.shape} and bases of "
                          f"shapes {[np.shape(U) for U in bases]}")
    out = np.empty((A.shape[0], len(bases)))
    for k, U in enumerate(bases):
        U = np.asarray(U, dtype=np.float64)
        out[:, k] = np.linalg.norm(A - (A @ U) @ U.T, axis=1)  # explicit residual: no cancellation
    return out
