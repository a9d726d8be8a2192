"""Calibrated TwoNN: TwoNN with its finite-sample, high-dimension bias removed by calibration."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.estimators.graph import search_settings, subset_neighbors
from lowdim.estimators.twonn import local_twonn, twonn_from_mu
from lowdim.neighbors import Neighbors, kneighbors
from lowdim.validation import as_points, check_choice, check_int

__all__ = ["CALIBRATION_FILE", "CalibratedTwoNN", "Calibration", "load_calibration", "twonn_statistic"]

#: The shipped calibration table, written by ``benchmarks/make_calibration.py``.
CALIBRATION_FILE = Path(__file__).parent / "data" / "ctwonn_calibration.npz"
#: Fraction of the largest ratios TwoNN censors, in the calibration and at fit time alike.
DISCARD_FRACTION = 0.1
REFERENCES = ("ball", "sphere", "ball+sphere")
#: Repetitions per cell of tables written before the table recorded them (the script's old rule).
LEGACY_POINTS_PER_CELL = 40_000


def twonn_statistic(distances: np.ndarray) -> float:
    """The plain TwoNN estimate (censored MLE, 10 % discarded) from first/second neighbour distances."""
    return twonn_from_mu(distances[:, 1] / distances[:, 0], discard_fraction=DISCARD_FRACTION)[0]


@dataclass(frozen=True)
class Calibration:
    """Mean plain-TwoNN value ``mean[shape, i, j]`` on uniform samples of ``shapes[shape]`` (the
    unit d-ball, the unit d-sphere) of size ``n_grid[i]`` and dimension ``d_grid[j]``, with the
    standard deviation ``std`` of one repetition, the repetitions ``reps`` of each cell and the
    table's ``version`` (the script's seed and a hash of the values)."""

    shapes: tuple[str, ...]
    n_grid: np.ndarray
    d_grid: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    reps: np.ndarray
    version: str

    def _interp_n(self, table: np.ndarray, n: int) -> np.ndarray:
        logn = np.log(np.clip(n, self.n_grid[0], self.n_grid[-1]))
        logs = np.log(self.n_grid)
        j = int(np.clip(np.searchsorted(logs, logn) - 1, 0, len(logs) - 2))
        w = (logn - logs[j]) / (logs[j + 1] - logs[j])
        return (1 - w) * table[j] + w * table[j + 1]

    def curve_error(self, shape: str, n: int) -> np.ndarray:
        """Standard error of the calibration curve (std / sqrt(reps)) against ``d_grid`` at size ``n``."""
        i = self.shapes.index(shape)
        return self._interp_n(self.std[i] / np.sqrt(self.reps[i]), n)

    def curve(self, shape: str, n: int) -> np.ndarray:
        """TwoNN value against ``d_grid`` at sample size ``n`` (linear in log N; clamped to the grid),
        made strictly increasing so that it can be inverted."""
        y = self._interp_n(self.mean[self.shapes.index(shape)], n)
        return np.maximum.accumulate(y) + 1e-9 * np.arange(y.size)

    def invert(self, value: float | np.ndarray, shape: str, n: int) -> np.ndarray:
        """The dimension whose calibration samples give TwoNN value ``value`` at size ``n``.

        Monotone increasing in ``value``; below the grid (d < 1) and above it (d > max) the map is
        continued proportionally through the end point.
        """
        y = self.curve(shape, n)
        x = self.d_grid.astype(float)
        v = np.asarray(value, dtype=float)
        out = np.interp(v, y, x)
        out = np.where(v < y[0], v * x[0] / y[0], out)
        return np.where(v > y[-1], v * x[-1] / y[-1], out)


@functools.lru_cache(maxsize=4)
def load_calibration(path: str | None = None) -> Calibration:
    """Read the calibration table (default: the one shipped with lowdim)."""
    p = Path(path) if path is not None else CALIBRATION_FILE
    if not p.exists():
        raise LowdimError(f"calibration table {p} is missing; regenerate it with "
                          "`python benchmarks/make_calibration.py` or reinstall lowdim")
    with np.load(p) as z:
        n_grid, mean = z["n_grid"].astype(float), z["mean"].astype(float)
        if "reps" in z:
            reps = z["reps"].astype(float)
        else:  # tables written before reps were stored: the generating script's rule
            reps = np.broadcast_to(np.maximum(2, LEGACY_POINTS_PER_CELL // n_grid)[None, :, None], mean.shape)
        seed = int(z["seed"]) if "seed" in z else -1
        digest = hashlib.sha256(np.ascontiguousarray(mean).tobytes()).hexdigest()[:12]
        version = str(z["version"]) if "version" in z else f"seed{seed}-{digest}"
        return Calibration(tuple(str(s) for s in z["shapes"]), n_grid, z["d_grid"].astype(float), mean,
                           z["std"].astype(float), np.asarray(reps, float), version)


class CalibratedTwoNN(IDEstimator):
    """TwoNN corrected for its finite-sample bias at high intrinsic dimension.

    Plain TwoNN (Facco et al. 2017) is unbiased only when the density is constant over the
    second-neighbour scale; at high dimension and finite N that scale is a large part of the data
    and TwoNN underestimates (a 70-D cube surface at N = 2500 gives ≈ 40). Following the idea of
    calibrating against reference samples of known dimension (MiND / DANCo, Rozza et al. 2012,
    Ceruti et al. 2014; Campadelli et al. 2015), this estimator computes plain TwoNN, then finds
    the dimension d whose uniform reference samples of the same size N give the same TwoNN value:
    ``d = f_N^{-1}(d_TwoNN)``. The curves ``f_N(d)`` were measured once on uniform samples of the
    unit d-ball and of the unit d-sphere (seeded; N from 20 to 20,000, d from 1 to 160; generated by
    ``benchmarks/make_calibration.py``) and ship as package data. **It was calibrated only on these
    generic shapes, never on the benchmark manifolds.** The estimate is continuous (not rounded).

    The default reference is the sphere curve, chosen out of family
    (``benchmarks/id_out_of_family.py``: on its clean cases the sphere reading has a mean error of
    2.1 % against 5.6 % for the ball and 4.0 % for raw TwoNN; on the 24 benchmark manifolds, which
    played no part in the choice, 6.8 % against 6.3 %).
    The confidence interval is TwoNN's χ² interval, widened in quadrature by the calibration
    curve's own sampling error at that cell (``z · std / sqrt(reps)``), then read through both the
    ball and the sphere curves (their envelope), so it carries the calibration-model uncertainty
    as well as both sampling errors. The result records the plain TwoNN value and interval
    (``raw``) and the table's version, the N it was read at and its cell error (``calibration``). The curves are interpolated linearly in log N; for
    N > 20,000 the estimate uses up to ``max_subsets`` disjoint random subsets of 20,000 points
    (pooled ratios, calibrated at 20,000), and for N < 20 the N = 20 curve (the result notes it).
    Low dimensions are essentially unchanged (the correction is below 2 % for d ≤ 5 at N ≥ 1000).

    Limits: the calibration removes the bias that uniform, flat-ish data would have. Strong
    curvature at the neighbour scale (plain TwoNN already over-estimates) is amplified, and a
    strongly non-uniform density is under-estimated: on the benchmark suite the worst cases are
    M8_Nonlinear (12-D, ≈ 15–16) and Mbeta (10-D, ≈ 7).

    Parameters
    ----------
    reference : {"ball", "sphere", "ball+sphere"}, default="sphere"
        Calibration curve the point estimate is read from (``"ball+sphere"``: the mean of both).
    max_subsets : int, default=8
        Largest number of 20,000-point subsets used when N > 20,000.
    decimation : bool or None, default=None
        Compute the scale curve: the calibrated estimate on random subsets of N/2, N/4, … points
        (it costs about a third more search). None: when N ≤ 20,000.
    n_neighbors : int, default=20
        Neighbourhood size of the local (per-point) estimate.
    local : bool, default=False
        Also compute per-point local ID: plain TwoNN over each point's ``n_neighbors``
        neighbourhood, exactly as ``TwoNN(local=True)`` (not calibrated: a neighbourhood is too
        small a sample for the global calibration to apply). The global estimate is unchanged.
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
    random_state : int, default=0
        Seed of the subsets drawn when N > 20,000.

    Attributes
    ----------
    dimension_ : float
    ci_ : tuple of float
    raw_dimension_ : float
        The plain TwoNN value before calibration.
    dimension_by_reference_ : dict
        The estimate read off each calibration curve (``{"ball": …, "sphere": …}``).
    calibration_n_ : int
        Sample size whose calibration curve was used.

    References
    ----------
    E. Facco, M. d'Errico, A. Rodriguez and A. Laio, "Estimating the intrinsic dimension of
    datasets by a minimal neighborhood information", Scientific Reports 7:12140 (2017).
    A. Rozza, G. Lombardi, C. Ceruti, E. Casiraghi and P. Campadelli, "Novel high intrinsic
    dimensionality estimators", Machine Learning 89:37–65 (2012).
    C. Ceruti, S. Bassis, A. Rozza, G. Lombardi, E. Casiraghi and P. Campadelli, "DANCo: an
    intrinsic dimensionality estimator exploiting angle and norm concentration", Pattern
    Recognition 47:2569–2581 (2014).

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import CalibratedTwoNN
    >>> X = np.random.default_rng(0).standard_normal((2000, 30))   # a 30-D Gaussian
    >>> est = CalibratedTwoNN().fit(X)
    >>> round(est.raw_dimension_), 26 <= est.dimension_ <= 34
    (22, True)
    """

    name = "ctwonn"
    supports_local = True

    def __init__(self, *, reference: str = "sphere", max_subsets: int = 8, decimation: bool | None = None,
                 n_neighbors: int = 20, local: bool = False, confidence: float = 0.95, duplicates: str = "drop",
                 random_state: int | None = 0) -> None:
        self.reference = reference
        self.max_subsets = max_subsets
        self.decimation = decimation
        self.n_neighbors = n_neighbors
        self.local = local
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def n_neighbors_needed(self) -> int:
        return max(2, self.n_neighbors) if self.local else 2

    def _check_params(self) -> None:
        check_choice("reference", self.reference, REFERENCES)
        if self.decimation not in (None, True, False):
            raise LowdimError(f"decimation must be True, False or None, got {self.decimation!r}")
        check_int("max_subsets", self.max_subsets, low=1)
        check_int("n_neighbors", self.n_neighbors, low=2)

    def _local_neighbors(self, nb: Neighbors) -> np.ndarray:
        return local_twonn(nb, self.n_neighbors)

    def _fit_array(self, X: Any) -> bool:
        """Above the calibrated N, search only the random subsets: the full graph is never built."""
        cal = load_calibration()
        n_cal = int(cal.n_grid[-1])
        if self.local or not hasattr(X, "shape") or int(X.shape[0]) <= n_cal:
            return False
        A, n_dup = self._drop_duplicates(as_points(X, min_samples=3))
        settings: dict[str, Any] = {"device": "cuda"} if type(X).__module__.startswith("torch") and \
            str(getattr(X, "device", "")).startswith("cuda") else {}
        if A.shape[0] <= n_cal:  # duplicates brought it into the calibrated range: the usual path
            nb = kneighbors(A, 2, duplicates=self.duplicates, random_state=self.random_state, **settings)
            self.n_samples_, self.n_duplicates_dropped_ = nb.n_points, n_dup + nb.n_duplicates_dropped
            self.neighbors_backend_, self.n_features_ = nb.backend, int(A.shape[1])
            self._fit_neighbors(nb)
            return True
        mu, backend, n_near = self._subset_ratios(A, n_cal, settings, duplicates=self.duplicates)
        self.n_samples_, self.n_duplicates_dropped_ = int(A.shape[0]), n_dup + n_near
        self.neighbors_backend_, self.n_features_ = backend, int(A.shape[1])
        self.notes_.append(f"N = {A.shape[0]} > {n_cal}: TwoNN ratios pooled over {mu.size // n_cal} random "
                           f"subsets of {n_cal} points (only those subsets were searched)")
        self._finish(mu, n_cal, cal)
        return True

    def _finish(self, mu: np.ndarray, n: int, cal: Calibration) -> None:
        raw, (rlo, rhi), se, self.dimension_by_reference_, self.dimension_, self.ci_ = self._calibrated(mu, n, cal)
        self.raw_dimension_ = raw
        self.calibration_n_ = int(np.clip(n, cal.n_grid[0], cal.n_grid[-1]))
        self.raw_ = {"twonn": raw, "twonn_ci": [rlo, rhi], "by_reference": dict(self.dimension_by_reference_),
                     "n_ratios": int(mu.size)}
        self.calibration_ = {"table": cal.version, "file": CALIBRATION_FILE.name, "n_read": self.calibration_n_,
                             "reference": self.reference, "cell_error": se / raw if raw > 0 else float("nan"),
                             "cell_error_units": "relative standard error of the curve at the raw value"}
        self.interval_method_ = ("chi2 interval of the plain TwoNN likelihood, combined in quadrature with the "
                                 "calibration curve's standard error, read through the ball and sphere curves "
                                 "(envelope)")

    def _fit_neighbors(self, nb: Neighbors) -> None:
        if nb.n_queries < 3:
            raise LowdimError(f"ctwonn needs at least 3 points, got {nb.n_queries}")
        cal = load_calibration()
        n_cal = int(cal.n_grid[-1])
        if nb.n_points > n_cal:
            mu = self._subset_ratios(nb.points, n_cal, search_settings(nb))[0]
            n = n_cal
            self.notes_.append(f"N = {nb.n_points} > {n_cal}: TwoNN ratios pooled over "
                               f"{mu.size // n_cal} random subsets of {n_cal} points")
        else:
            mu = nb.distances[:, 1] / nb.distances[:, 0]
            n = nb.n_points
            if n < cal.n_grid[0]:
                self.notes_.append(f"N = {n} is below the calibrated range; used the N = {int(cal.n_grid[0])} curve")
        self._finish(mu, n, cal)
        decimate = self.decimation if self.decimation is not None else nb.n_points <= n_cal
        if decimate and 40 <= nb.n_points <= n_cal:
            self.scale_curve_ = self._decimation_curve(nb, mu, cal)

    def _calibrated(self, mu: np.ndarray, n: int, cal: Calibration) -> tuple[
            float, tuple[float, float], float, dict[str, float], float, tuple[float, float]]:
        """Plain TwoNN and its interval, the curve's standard error there, the reading of each
        curve, the estimate and its interval (envelope of both curves, calibration error folded in)."""
        raw, (lo, hi) = twonn_from_mu(mu, discard_fraction=DISCARD_FRACTION, confidence=self.confidence)
        z = float(ndtri(0.5 + self.confidence / 2))
        est, se = {}, 0.0
        for s in ("ball", "sphere"):
            d0 = float(cal.invert(raw, s, n))
            se_s = float(np.interp(d0, cal.d_grid, cal.curve_error(s, n)))
            se = max(se, se_s)
            flo = raw - np.hypot(raw - lo, z * se_s)
            fhi = raw + np.hypot(hi - raw, z * se_s)
            est[s] = cal.invert(np.array([raw, flo, fhi]), s, n)
        used = ("ball", "sphere") if self.reference == "ball+sphere" else (self.reference,)
        ci = (float(min(v[1] for v in est.values())), float(max(v[2] for v in est.values())))
        return (float(raw), (float(lo), float(hi)), se, {s: float(v[0]) for s, v in est.items()},
                float(np.mean([est[s][0] for s in used])), ci)

    def _decimation_curve(self, nb: Neighbors, mu_full: np.ndarray, cal: Calibration) -> object:
        """Calibrated estimate on random subsets of N, N/2, N/4, … points (each read off its own
        N's curve): flat when the calibration fits the data, drifting when it does not."""
        rng = np.random.default_rng(self.random_state)
        settings = search_settings(nb)  # the graph's backend, device and threads
        sizes, scales, dims, los, his = [], [], [], [], []
        n = nb.n_points
        while n >= 20:
            if n == nb.n_points:
                mu, r2 = mu_full, nb.distances[:, 1]
            else:
                d = subset_neighbors(nb.points, rng.choice(nb.n_points, size=n, replace=False), 2, settings).distances
                mu, r2 = d[:, 1] / d[:, 0], d[:, 1]
            dim, (lo, hi) = self._calibrated(mu, n, cal)[4:]
            sizes.append(n)
            scales.append(float(np.median(r2)))
            dims.append(dim)
            los.append(lo)
            his.append(hi)
            n //= 2
        self.decimation_sizes_ = np.array(sizes)
        return self._curve(scales, dims, los, his, "median 2nd-neighbour distance (decimation)")

    def _subset_ratios(self, points: np.ndarray, size: int, settings: dict[str, Any], *,
                       duplicates: str = "keep") -> tuple[np.ndarray, str, int]:
        """Pooled ratios of up to ``max_subsets`` disjoint random subsets of ``size`` points, each
        searched with ``settings``; also the backend that ran and the near duplicates dropped."""
        rng = np.random.default_rng(self.random_state)
        n = points.shape[0]
        perm = rng.permutation(n)
        mus, backend, n_near = [], "", 0
        for i in range(min(self.max_subsets, n // size)):
            sub = np.sort(perm[i * size:(i + 1) * size])
            nb = kneighbors(points[sub], 2, duplicates=duplicates, random_state=self.random_state, **settings)
            d = nb.distances
            mus.append(d[:, 1] / d[:, 0])
            backend, n_near = nb.backend, n_near + nb.n_duplicates_dropped
        return np.concatenate(mus), backend, n_near
