"""The 24 benchmark manifolds of known intrinsic dimension (Hein & Audibert; Campadelli et al.).

The suite first assembled by Hein & Audibert (2005) and extended by Rozza, Lombardi, Campadelli
et al. (Mbeta, Mn1, Mn2, Mp1–Mp3) is the usual yardstick of ID estimators; scikit-dimension ships it
as ``skdim.datasets.BenchmarkManifolds`` with the same names, true IDs and ambient dimensions as
here. The generators below are written from the published definitions.

References
----------
M. Hein and J.-Y. Audibert, "Intrinsic dimensionality estimation of submanifolds in R^d",
ICML 2005.
P. Campadelli, E. Casiraghi, C. Ceruti and A. Rozza, "Intrinsic dimension estimation: relevant
techniques and a benchmark framework", Mathematical Problems in Engineering 2015:759567 (2015).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lowdim.validation import check_choice, check_int

__all__ = ["BENCHMARK_MANIFOLDS", "LOCAL_ID_BENCHMARKS", "benchmark_suite", "make_benchmark", "make_local_benchmark"]

Gen = Callable[[int, int, int, np.random.Generator], np.ndarray]


def _pad(cols: list[np.ndarray] | np.ndarray, D: int) -> np.ndarray:
    X = np.column_stack(cols) if isinstance(cols, list) else cols
    if X.shape[1] < D:
        X = np.hstack([X, np.zeros((X.shape[0], D - X.shape[1]))])
    return X


def _sphere(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the unit d-sphere in R^{d+1}."""
    V = rng.standard_normal((n, d + 1))
    return _pad(V / np.linalg.norm(V, axis=1, keepdims=True), D)


def _affine_3to5(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform 3-cube [0, 4]^3 mapped affinely into R^5 (Hein & Audibert's matrix and offset)."""
    A = np.array([[1.2, -0.5, 0.0], [0.5, 0.9, 0.0], [-0.5, -0.2, 1.0], [0.4, -0.9, -0.1], [1.1, -0.3, 0.0]])
    offset = np.array([3.0, -1.0, 0.0, 0.0, 8.0])
    return (4.0 * rng.random((n, 3))) @ A.T + offset


def _nonlinear_4to6(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A 4-D square mapped by quadratics into R^6 (concentrated; easily mistaken for 3-D)."""
    a, b, c, e = rng.random((4, n))
    return np.column_stack([
        b**2 * np.cos(2 * np.pi * a),
        c**2 * np.sin(2 * np.pi * a),
        b + c + (b - e) ** 2,
        b - 2 * c + (a - e) ** 2,
        -b - 2 * c + (c - e) ** 2,
        a**2 - b**2 + c**2 - e**2,
    ])


def _nonlinear(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Hein's curved manifold: ``(p_{i+1} cos 2πp_i, p_{i+1} sin 2πp_i)_i`` (cyclic), repeated D/2d times."""
    p = rng.random((n, d))
    nxt = np.roll(p, -1, axis=1)  # p_{i+1}, with p_d followed by p_1
    block = np.empty((n, 2 * d))
    block[:, 0::2] = nxt * np.cos(2 * np.pi * p)
    block[:, 1::2] = nxt * np.sin(2 * np.pi * p)
    return np.tile(block, (1, D // (2 * d)))


def _helix_1d(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A closed curve winding 8 times around a torus."""
    t = 2 * np.pi * rng.random(n)
    r = 2 + np.cos(8 * t)
    return _pad([r * np.cos(t), r * np.sin(t), np.sin(8 * t)], D)


def _helix_2d(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A helicoid-like surface ``(r cos p, r sin p, p / 2)``, r, p uniform in [0, 10π]."""
    r = 10 * np.pi * rng.random(n)
    p = 10 * np.pi * rng.random(n)
    return _pad([r * np.cos(p), r * np.sin(p), 0.5 * p], D)


def _swiss_roll(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    return _pad([t * np.cos(t), h, t * np.sin(t)], D)


def _affine(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """The uniform cube [-2.5, 2.5]^d in the first d coordinates of R^D."""
    return _pad(5 * rng.random((n, d)) - 2.5, D)


def _cube_surface(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the boundary of the unit (d+1)-cube: a d-dimensional manifold with edges."""
    X = rng.random((n, d + 1))
    face = rng.integers(0, 2 * (d + 1), size=n)  # all 2(d+1) faces have the same area
    X[np.arange(n), face // 2] = face % 2
    return _pad(X, D)


def _moebius(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A Möbius band of half-width 0.5, twisted ten half turns (angle 5φ)."""
    phi = 2 * np.pi * rng.random(n)
    s = 0.5 * (2 * rng.random(n) - 1)
    r = 1 + s * np.cos(5 * phi)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), s * np.sin(5 * phi)])


def _gaussian(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    return _pad(rng.standard_normal((n, d)), D)


def _s_curve(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    t = 3 * np.pi * (rng.random(n) - 0.5)
    h = 2 * rng.random(n)
    return _pad([np.sin(t), h, np.sign(t) * (np.cos(t) - 1)], D)


def _spiral(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """A long helix ``(100 cos t, 100 sin t, t)``, t uniform in [0, 10π], padded to R^13."""
    t = 10 * np.pi * rng.random(n)
    return _pad([100 * np.cos(t), 100 * np.sin(t), t], D)


def _campadelli_beta(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Coordinates ~ Beta(10, 0.5) (strongly non-uniform), each mapped to two curves, twice."""
    x = rng.beta(10.0, 0.5, size=(n, d))
    f = x * np.sin(np.cos(2 * np.pi * x))
    g = x * np.cos(np.sin(2 * np.pi * x))
    return np.hstack([f, g, f, g])


def _campadelli_n(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform d-cube embedded by ``tan(x_i cos x_{d-i})`` and ``arctan(x_{d-i} sin x_i)``, twice."""
    x = rng.random((n, d))
    rev = x[:, ::-1]
    f = np.tan(x * np.cos(rev))
    g = np.arctan(rev * np.sin(x))
    return np.hstack([f, g, f, g])


def _paraboloid(n: int, d: int, D: int, rng: np.random.Generator) -> np.ndarray:
    """Multivariate Burr (α = 1) sample on a d-paraboloid, embedded as ``[x, sin x, x²]`` in R^{3(d+1)}."""
    E = rng.exponential(1.0, size=(n, d + 1))
    x = 1.0 / (1.0 + E[:, 1:] / E[:, :1])
    x = np.column_stack([x, (x**2).sum(axis=1)])
    return np.hstack([x, np.sin(x), x**2])


#: name -> (true intrinsic dimension, ambient dimension, generator, description)
BENCHMARK_MANIFOLDS: dict[str, tuple[int, int, Gen, str]] = {
    "M1_Sphere": (10, 11, _sphere, "10-sphere in R^11"),
    "M2_Affine_3to5": (3, 5, _affine_3to5, "affine 3-space in R^5"),
    "M3_Nonlinear_4to6": (4, 6, _nonlinear_4to6, "concentrated 4-D figure, mistakable for 3-D"),
    "M4_Nonlinear": (4, 8, _nonlinear, "curved 4-D manifold"),
    "M5a_Helix1d": (1, 3, _helix_1d, "1-D helix"),
    "M5b_Helix2d": (2, 3, _helix_2d, "2-D helicoid"),
    "M6_Nonlinear": (6, 36, _nonlinear, "curved 6-D manifold"),
    "M7_Roll": (2, 3, _swiss_roll, "swiss roll"),
    "M8_Nonlinear": (12, 72, _nonlinear, "highly curved 12-D manifold"),
    "M9_Affine": (20, 20, _affine, "uniform 20-cube"),
    "M10a_Cubic": (10, 11, _cube_surface, "surface of the 11-cube"),
    "M10b_Cubic": (17, 18, _cube_surface, "surface of the 18-cube"),
    "M10c_Cubic": (24, 25, _cube_surface, "surface of the 25-cube"),
    "M10d_Cubic": (70, 71, _cube_surface, "surface of the 71-cube"),
    "M11_Moebius": (2, 3, _moebius, "Möebius band, 10 half twists"),
    "M12_Norm": (20, 20, _gaussian, "isotropic 20-D Gaussian"),
    "M13a_Scurve": (2, 3, _s_curve, "S-curve"),
    "M13b_Spiral": (1, 13, _spiral, "1-D spiral in R^13"),
    "Mbeta": (10, 40, _campadelli_beta, "10-D, smooth strongly non-uniform density"),
    "Mn1_Nonlinear": (18, 72, _campadelli_n, "18-D, nonlinearly embedded"),
    "Mn2_Nonlinear": (24, 96, _campadelli_n, "24-D, nonlinearly embedded"),
    "Mp1_Paraboloid": (3, 12, _paraboloid, "3-D paraboloid, Burr density"),
    "Mp2_Paraboloid": (6, 21, _paraboloid, "6-D paraboloid, Burr density"),
    "Mp3_Paraboloid": (9, 30, _paraboloid, "9-D paraboloid, Burr density"),
}


def make_benchmark(name: str, n_samples: int = 2500, *, random_state: int | None = 0,
                   ) -> tuple[np.ndarray, int]:
    """Sample one benchmark manifold.

    Parameters
    ----------
    name : str
        A key of :data:`BENCHMARK_MANIFOLDS` (``"M1_Sphere"`` … ``"Mp3_Paraboloid"``).
    n_samples : int, default=2500
    random_state : int, optional
        Seed; the same seed gives the same points.

    Returns
    -------
    X : ndarray of shape (n_samples, ambient dimension)
    true_dimension : int

    Examples
    --------
    >>> X, d = make_benchmark("M10d_Cubic", 500)
    >>> X.shape, d
    ((500, 71), 70)
    """
    check_choice("benchmark manifold", name, BENCHMARK_MANIFOLDS)
    n = check_int("n_samples", n_samples, low=1)
    d, D, gen, _ = BENCHMARK_MANIFOLDS[name]
    X = gen(n, d, D, np.random.default_rng(random_state))
    return np.ascontiguousarray(X, dtype=np.float64), d


def benchmark_suite(n_samples: int = 2500, *, random_state: int | None = 0,
                    ) -> dict[str, tuple[np.ndarray, int]]:
    """All 24 manifolds, ``name -> (X, true_dimension)``; manifold ``i`` uses seed ``random_state + i``.

    Examples
    --------
    >>> suite = benchmark_suite(200)
    >>> len(suite), suite["M12_Norm"][0].shape
    (24, (200, 20))
    """
    base = 0 if random_state is None else int(random_state)
    seeds = {name: (None if random_state is None else base + i) for i, name in enumerate(BENCHMARK_MANIFOLDS)}
    return {name: make_benchmark(name, n_samples, random_state=seeds[name]) for name in BENCHMARK_MANIFOLDS}


#: name -> (dimension of each component, ambient dimension, description): unions of subspaces whose
#: ID is known point by point, not globally (a global ID of a union is ill-defined), for local ID.
LOCAL_ID_BENCHMARKS: dict[str, tuple[tuple[int, ...], int, str]] = {
    "MoLRG_2-4-8_R48": ((2, 4, 8), 48, "mixture of low-rank Gaussians (Wang et al. 2024), orthogonal subspaces"),
}


def make_local_benchmark(name: str, n_samples: int = 2500, *, random_state: int | None = 0,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Sample a union of subspaces of :data:`LOCAL_ID_BENCHMARKS`: points and each point's true local ID.

    Examples
    --------
    >>> X, d = make_local_benchmark("MoLRG_2-4-8_R48", 300)
    >>> X.shape, sorted(set(d.tolist()))
    ((300, 48), [2, 4, 8])
    """
    from lowdim.datasets.molrg import molrg

    check_choice("local-ID benchmark", name, LOCAL_ID_BENCHMARKS)
    dims, D, _ = LOCAL_ID_BENCHMARKS[name]
    X, labels, _ = molrg(n_samples, ambient_dim=D, subspace_dims=dims, random_state=random_state)
    return X, np.asarray(dims)[labels]
