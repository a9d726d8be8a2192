"""Correlation dimension (Grassberger & Procaccia 1983)."""

from __future__ import annotations

import numpy as np

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.validation import check_int

__all__ = ["CorrelationDimension"]

#: Radii of the least-squares fit inside the scaling range, and of the scale curve.
N_FIT_RADII = 6
N_CURVE_RADII = 12


class CorrelationDimension(IDEstimator):
    """Grassberger–Procaccia correlation dimension: the slope of ``log C(r)`` against ``log r``.

    ``C(r)``, the fraction of point pairs closer than ``r``, grows like ``r^d`` at small ``r`` on
    a ``d``-dimensional manifold. The scaling range runs from the median distance to the
    ``k1``-th neighbour to the median distance to the ``k2``-th (skdim's ``CorrInt`` uses the same
    two radii); the estimate is the least-squares slope of ``log C`` over six log-spaced radii in
    that range (with two radii it is skdim's two-point slope).

    Where the pairs come from: ``C(r)`` needs *every* pair within ``r``. A k-nearest-neighbour
    graph holds them only for points whose k-th neighbour lies beyond ``r`` — points in dense
    regions would be censored, biasing ``C`` low exactly where the scaling range ends — so this
    estimator does not use the shared k-NN graph. It computes all pairwise distances of a seeded
    random subsample of at most ``max_samples`` points (one float64 GEMM, ``max_samples²``
    distances, e.g. 72 MB at 3,000), where the counts are exact. Subsampling moves the scaling
    range to larger radii by ``(n / max_samples)^{1/d}``; raise ``max_samples`` when the
    small-scale limit matters.

    The interval is a BCa bootstrap over the subsample's points (:mod:`lowdim.estimators.intervals`). The pair count is a degree-2
    U-statistic: resampling points changes it, to first order (Hoeffding decomposition), by
    twice the change in the mean per-point count, which is what the resamples use.

    Grassberger, P. & Procaccia, I., "Measuring the strangeness of strange attractors",
    Physica D 9:189–208 (1983).

    Parameters
    ----------
    k1, k2 : int, default=10, 20
        Neighbour ranks whose median distances bound the scaling range, ``1 ≤ k1 < k2``.
    max_samples : int, default=3000
        Points whose pairwise distances are used (a seeded random subsample when there are more).
    n_bootstrap : int, default=200
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
        Exact duplicate rows add pairs at distance 0 to every ``C(r)``; they are dropped (or
        refused) first.
    random_state : int, default=0
        Seed of the subsample and of the bootstrap.

    Attributes
    ----------
    dimension_, ci_ : float, (float, float)
    scaling_range_ : (float, float)
        The radii ``(r1, r2)`` of the fit.
    scale_curve_ : ScaleCurve
        Local slope ``Δlog C / Δlog r`` between consecutive radii, from the median 1st- to the
        median ``8·k2``-th-neighbour distance, against ``r``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import CorrelationDimension
    >>> X = np.random.default_rng(0).uniform(size=(2000, 2))
    >>> round(CorrelationDimension().fit(X).dimension_)
    2
    """

    name = "corrint"
    uses_neighbors = False

    def __init__(self, *, k1: int = 10, k2: int = 20, max_samples: int = 3000, n_bootstrap: int = 200,
                 confidence: float = 0.95, duplicates: str = "drop", random_state: int | None = 0) -> None:
        self.k1 = k1
        self.k2 = k2
        self.max_samples = max_samples
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def _check_params(self) -> None:
        k1 = check_int("k1", self.k1, low=1)
        check_int("k2", self.k2, low=k1 + 1, fix="the scaling range needs k1 < k2")
        check_int("max_samples", self.max_samples, low=int(self.k2) + 1,
                  fix="max_samples must exceed k2 so every point has k2 neighbours")
        check_int("n_bootstrap", self.n_bootstrap, low=10)

    def _min_samples(self) -> int:
        return int(self.k2) + 1

    def _fit_points(self, X: np.ndarray) -> None:
        n = X.shape[0]
        k1, k2 = int(self.k1), int(self.k2)
        if n < k2 + 1:
            raise LowdimError(f"X has {n} distinct points; k2={k2} needs at least {k2 + 1}: lower k2 or pass more data")
        m = min(n, int(self.max_samples))
        rng = np.random.default_rng(self.random_state)
        S = X if m == n else X[np.sort(rng.choice(n, m, replace=False))]
        Dm = _pairwise_distances(S)
        kc = min(m - 1, 8 * k2)
        part = np.partition(Dm, sorted({0, k1 - 1, k2 - 1, kc - 1}), axis=1)
        r1, r2 = float(np.median(part[:, k1 - 1])), float(np.median(part[:, k2 - 1]))
        if not r2 > r1 > 0:
            raise LowdimError(f"the median {k1}-th and {k2}-th neighbour distances coincide ({r1:g}, tied "
                              "distances, e.g. lattice data); widen the scaling range with a larger k2")
        self.scaling_range_ = (r1, r2)
        lo_c, hi_c = float(np.median(part[:, 0])), float(np.median(part[:, kc - 1]))
        fit_r = np.geomspace(r1, r2, N_FIT_RADII)
        curve_r = np.geomspace(max(lo_c, r1 * 1e-3), max(hi_c, r2), N_CURVE_RADII)
        radii = np.concatenate([fit_r, curve_r])
        counts = np.stack([(Dm < r).sum(axis=1) for r in radii], axis=1).astype(np.float64)  # (m, radii)
        tiny = 0.5 / m  # half a pair per point: floor for resampled counts that reach zero
        x = np.log(fit_r) - np.log(fit_r).mean()
        f = slice(0, N_FIT_RADII)
        g = slice(N_FIT_RADII, None)
        dlr = np.diff(np.log(curve_r))
        c_hat = counts.mean(axis=0)

        def stat(means: np.ndarray) -> np.ndarray:  # [fitted slope, local slopes of the curve]
            # the pair count is a degree-2 U-statistic: to first order (Hoeffding) a resample moves it
            # by twice the change in the mean per-point count
            logc = np.log(np.maximum(2.0 * means - c_hat, tiny))
            slope = (logc[:, f] - logc[:, f].mean(axis=1, keepdims=True)) @ x / (x @ x)
            return np.column_stack([slope, np.diff(logc[:, g], axis=1) / dlr])

        theta = stat(c_hat[None, :])[0]
        self.dimension_ = float(theta[0])
        from lowdim.estimators.intervals import bootstrap_mean_statistic

        iv = bootstrap_mean_statistic(counts, stat, n_boot=int(self.n_bootstrap), confidence=self.confidence,
                                      random_state=self.random_state, theta_hat=theta)
        self.ci_ = (float(iv.low[0]), float(iv.high[0]))
        self.interval_method_ = f"{iv.method}, {iv.n_boot} resamples of the {m} subsampled points"
        self.raw_ = {"bootstrap_bias": float(iv.bias[0])}
        self.scale_curve_ = self._curve(np.sqrt(curve_r[1:] * curve_r[:-1]), theta[1:], iv.low[1:], iv.high[1:],
                                        "radius r (local slope of log C(r))")


def _pairwise_distances(S: np.ndarray) -> np.ndarray:
    """All Euclidean distances of the rows of ``S`` (float64 GEMM on centred data), diagonal inf."""
    A = np.asarray(S, dtype=np.float64)
    A = A - A.mean(axis=0)
    sq = np.einsum("ij,ij->i", A, A)
    D2 = sq[:, None] + sq[None, :] - 2.0 * (A @ A.T)
    np.maximum(D2, 0.0, out=D2)
    np.sqrt(D2, out=D2)
    np.fill_diagonal(D2, np.inf)
    return D2
