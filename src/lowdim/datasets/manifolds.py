"""Point clouds of known intrinsic dimension, generated from a seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lowdim.validation import check_choice, check_int

__all__ = ["MANIFOLDS", "make_manifold"]


def _sphere(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    X = rng.normal(size=(n, d + 1))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return _embed(X, D)


def _ball(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    X = rng.normal(size=(n, d))
    X *= (rng.uniform(size=(n, 1)) ** (1 / d)) / np.linalg.norm(X, axis=1, keepdims=True)
    return _embed(X, D)


def _cube(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    return _embed(rng.uniform(size=(n, d)), D)


def _gaussian_plane(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    basis, _ = np.linalg.qr(rng.normal(size=(D, d)))
    return rng.normal(size=(n, d)) @ basis.T


def _swiss_roll(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    h = 21 * rng.uniform(size=n)
    return _embed(np.column_stack([t * np.cos(t), h, t * np.sin(t)]), D)


def _helix(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    t = 2 * np.pi * rng.uniform(size=n)
    return _embed(np.column_stack([np.cos(5 * t), np.sin(5 * t), t]), D)


def _embed(X: np.ndarray, D: int) -> np.ndarray:
    if D <= X.shape[1]:
        return X
    return np.hstack([X, np.zeros((X.shape[0], D - X.shape[1]))])


# name -> (generator, default intrinsic dimension or None when fixed, fixed dimension)
MANIFOLDS: dict[str, tuple[Callable, int | None]] = {
    "sphere": (_sphere, None),
    "ball": (_ball, None),
    "cube": (_cube, None),
    "gaussian_plane": (_gaussian_plane, None),
    "swiss_roll": (_swiss_roll, 2),
    "helix": (_helix, 1),
}


def make_manifold(name: str, n_samples: int = 2000, *, dimension: int = 2, ambient: int | None = None,
                  noise: float = 0.0, random_state: int | None = 0) -> tuple[np.ndarray, int]:
    """Sample a manifold of known intrinsic dimension.

    Parameters
    ----------
    name : {"sphere", "ball", "cube", "gaussian_plane", "swiss_roll", "helix"}
    n_samples : int
    dimension : int
        Intrinsic dimension (ignored by the fixed-dimension ``swiss_roll`` (2) and ``helix`` (1)).
    ambient : int, optional
        Ambient dimension (zero-padded, or a random basis for ``gaussian_plane``); default the smallest.
    noise : float
        Standard deviation of isotropic Gaussian noise added in the ambient space.
    random_state : int

    Returns
    -------
    X : ndarray of shape (n_samples, ambient)
    true_dimension : int

    Examples
    --------
    >>> X, d = make_manifold("sphere", 500, dimension=3)
    >>> X.shape, d
    ((500, 4), 3)
    """
    check_choice("manifold", name, MANIFOLDS)
    n = check_int("n_samples", n_samples, low=1)
    gen, fixed = MANIFOLDS[name]
    d = fixed if fixed is not None else check_int("dimension", dimension, low=1)
    base = {"sphere": d + 1, "swiss_roll": 3, "helix": 3}.get(name, d)
    D = ambient if ambient is not None else base
    check_int("ambient", D, low=base)
    rng = np.random.default_rng(random_state)
    X = gen(n, d, D, rng)
    if noise:
        X = X + noise * rng.normal(size=X.shape)
    return X, d
