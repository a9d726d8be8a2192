"""Out-of-family ID benchmark: data unlike the calibration shapes and the 24 benchmark manifolds.

``method="auto"`` and the calibrated TwoNN are judged here, never on the shapes they were
calibrated on (uniform balls and spheres) nor only on the 24 manifolds: ambient Gaussian noise at
several levels on linear and curved manifolds, non-uniform densities (Gaussian, Student-t,
a mixture of clusters of different widths), unions of manifolds of different dimension, and
strong curvature at the neighbour scale. Real data sets, where only consistency can be judged,
are loaded by ``benchmarks/id_out_of_family.py``.

Every case is a function of ``(n, rng)``; signals have unit variance per intrinsic coordinate
unless stated, and noise is isotropic in the ambient space (σ per coordinate).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lowdim.validation import check_choice, check_int

__all__ = ["OUT_OF_FAMILY", "make_out_of_family", "out_of_family_suite"]


def _rotate(Z: np.ndarray, D: int, rng: np.random.Generator) -> np.ndarray:
    """Embed the rows of Z isometrically in R^D by a random orthonormal basis."""
    Q, _ = np.linalg.qr(rng.normal(size=(D, Z.shape[1])))
    return Z @ Q.T


def _noisy(X: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return X + sigma * rng.normal(size=X.shape) if sigma else X


def _gauss(d: int, D: int, sigma: float = 0.0) -> Callable:
    return lambda n, rng: _noisy(_rotate(rng.normal(size=(n, d)), D, rng), sigma, rng)


def _sphere(d: int, D: int, sigma: float) -> Callable:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        V = rng.normal(size=(n, d + 1))
        return _noisy(_rotate(V / np.linalg.norm(V, axis=1, keepdims=True), D, rng), sigma, rng)
    return gen


def _swiss(D: int, sigma: float) -> Callable:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
        h = 21 * rng.uniform(size=n)
        return _noisy(_rotate(np.column_stack([t * np.cos(t), h, t * np.sin(t)]), D, rng), sigma, rng)
    return gen


def _student(d: int, D: int, nu: float) -> Callable:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        Z = rng.normal(size=(n, d)) / np.sqrt(rng.chisquare(nu, size=(n, 1)) / nu)
        return _rotate(Z, D, rng)
    return gen


def _mixture(d: int, D: int, k: int) -> Callable:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        centres = 4.0 * rng.normal(size=(k, d))
        widths = np.geomspace(0.3, 1.5, k)
        lab = rng.integers(0, k, size=n)
        return _rotate(centres[lab] + widths[lab, None] * rng.normal(size=(n, d)), D, rng)
    return gen


def _union(d1: int, d2: int, D: int) -> Callable:
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        a = _rotate(rng.normal(size=(n // 2, d1)), D, rng)
        b = _rotate(rng.normal(size=(n - n // 2, d2)), D, rng) + 20.0 * rng.normal(size=D) / np.sqrt(D)
        return np.vstack([a, b])
    return gen


def _egg_crate(D: int) -> Callable:
    """A 2-D sheet corrugated at a wavelength of about six neighbour spacings (at n = 4000)."""
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = rng.uniform(size=(2, n))
        k = 2 * np.pi / 0.1
        return _rotate(np.column_stack([u, v, 0.05 * np.sin(k * u) * np.sin(k * v)]), D, rng)
    return gen


def _coil(D: int) -> Callable:
    """A closed 1-D curve winding 40 times around a circle (radius 0.1 windings)."""
    def gen(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * np.pi * rng.uniform(size=n)
        return _rotate(np.column_stack([np.cos(t), np.sin(t), 0.1 * np.cos(40 * t), 0.1 * np.sin(40 * t)]), D, rng)
    return gen


#: name -> (true intrinsic dimension or None for a union, generator(n, rng), description)
OUT_OF_FAMILY: dict[str, tuple[int | None, Callable, str]] = {
    "gauss10_D100_noise0.05": (10, _gauss(10, 100, 0.05), "10-D Gaussian in R^100, noise σ = 0.05"),
    "gauss10_D100_noise0.1": (10, _gauss(10, 100, 0.1), "10-D Gaussian in R^100, noise σ = 0.1 (the issue's case)"),
    "gauss10_D100_noise0.2": (10, _gauss(10, 100, 0.2), "10-D Gaussian in R^100, noise σ = 0.2"),
    "gauss4_D50_noise0.1": (4, _gauss(4, 50, 0.1), "4-D Gaussian in R^50, noise σ = 0.1"),
    "sphere5_D50_noise0.03": (5, _sphere(5, 50, 0.03), "unit 5-sphere in R^50, noise σ = 0.03"),
    "sphere5_D50_noise0.06": (5, _sphere(5, 50, 0.06), "unit 5-sphere in R^50, noise σ = 0.06"),
    "swissroll_D20_noise0.1": (2, _swiss(20, 0.1), "swiss roll in R^20, noise σ = 0.1"),
    "gauss5_D20": (5, _gauss(5, 20), "5-D Gaussian in R^20 (clean, non-uniform)"),
    "gauss10_D100": (10, _gauss(10, 100), "10-D Gaussian in R^100 (clean)"),
    "gauss20_D40": (20, _gauss(20, 40), "20-D Gaussian in R^40 (clean, high ID)"),
    "student3_6d_D20": (6, _student(6, 20, 3.0), "6-D Student-t (ν = 3, heavy tails) in R^20"),
    "mixture6_8d_D30": (8, _mixture(8, 30, 6), "6 Gaussian clusters of widths 0.3–1.5 in 8-D, in R^30"),
    "union_2d_8d_D30": (None, _union(2, 8, 30), "a 2-D and an 8-D Gaussian, half the points each, apart"),
    "eggcrate2_D10": (2, _egg_crate(10), "2-D sheet corrugated at the neighbour scale, in R^10"),
    "coil1_D10": (1, _coil(10), "1-D curve winding 40 times round a circle, in R^10"),
}


def make_out_of_family(name: str, n_samples: int = 4000, *, random_state: int | None = 0,
                       ) -> tuple[np.ndarray, int | None]:
    """Sample one out-of-family case: ``(X, true dimension or None)``.

    Examples
    --------
    >>> X, d = make_out_of_family("gauss10_D100_noise0.1", 500)
    >>> X.shape, d
    ((500, 100), 10)
    """
    check_choice("out-of-family case", name, OUT_OF_FAMILY)
    n = check_int("n_samples", n_samples, low=4)
    d, gen, _ = OUT_OF_FAMILY[name]
    return np.ascontiguousarray(gen(n, np.random.default_rng(random_state)), dtype=np.float64), d


def out_of_family_suite(n_samples: int = 4000, *, random_state: int | None = 0,
                        ) -> dict[str, tuple[np.ndarray, int | None]]:
    """Every case, ``name -> (X, true dimension or None)``; case ``i`` uses seed ``random_state + i``."""
    base = 0 if random_state is None else int(random_state)
    return {name: make_out_of_family(name, n_samples, random_state=None if random_state is None else base + i)
            for i, name in enumerate(OUT_OF_FAMILY)}
