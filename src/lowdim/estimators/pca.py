"""PCA-based linear-span dimension: explained-variance threshold and participation ratio."""

from __future__ import annotations

from typing import Literal

import numpy as np

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.validation import check_choice, check_fraction, check_int

__all__ = ["PCA", "participation_ratio", "variance_threshold_dimension"]

#: Rows used to resample the spectrum for the bootstrap interval (the deviations are rescaled
#: to the full sample size, an m-out-of-n bootstrap).
BOOTSTRAP_ROWS = 10_000
#: Rows per block when accumulating the covariance (bounded memory for float32 input).
BLOCK_ROWS = 8192
#: Variance thresholds of the scale curve.
CURVE_THRESHOLDS = np.array([0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99])


def variance_threshold_dimension(eigenvalues: np.ndarray, variance: float, *,
                                 fractional: bool = False) -> np.ndarray:
    """Smallest number of components whose eigenvalues explain ``variance`` of the total.

    ``eigenvalues`` is sorted descending along its last axis (batches allowed). With
    ``fractional`` the count is interpolated linearly on the cumulative curve between the
    last component below the threshold and the first at or above it.
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    v = np.asarray(variance, dtype=np.float64)
    cum = np.cumsum(lam, axis=-1)
    cum = cum / cum[..., -1:]
    # 1e-12 absorbs roundoff in the cumulative sum (rank-k data reaches 1 − 1e-16 at k)
    below = cum < v[..., None] - 1e-12
    k = np.minimum(np.sum(below, axis=-1), lam.shape[-1] - 1)  # 0-based index of the first at/above
    if not fractional:
        return (k + 1).astype(np.float64)
    cum = np.broadcast_to(cum, below.shape)
    prev = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0)[..., None], -1)[..., 0], 0.0)
    cur = np.take_along_axis(cum, k[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(cur > prev, (v - prev) / (cur - prev), 1.0)
    return k + np.clip(frac, 0.0, 1.0)


def participation_ratio(eigenvalues: np.ndarray) -> np.ndarray:
    """``(Σλ)² / Σλ²`` along the last axis: k for k equal eigenvalues, between 1 and k otherwise."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    return lam.sum(axis=-1) ** 2 / (lam**2).sum(axis=-1)


class PCA(IDEstimator):
    """Linear-span dimension from the PCA spectrum.

    **These measure the dimension of the linear span of the data, not of the manifold**: a
    circle in a plane has PCA dimension 2, a Swiss roll 3, a curved 1-D helix 3. Use them for
    (near-)linear structure and for comparison with the literature (e.g. representation-analysis
    papers that report participation ratios); use ``"twonn"``, ``"mle"`` or ``"gride"`` for the
    intrinsic dimension of curved data.

    - ``estimator="threshold"``: the smallest ``k`` whose leading ``k`` components explain a
      fraction ``variance`` of the total variance (``fractional=True`` interpolates linearly on
      the cumulative curve, giving a non-integer).
    - ``estimator="participation_ratio"``: ``PR = (Σλ)² / Σλ²`` (Gao et al. 2017, "A theory of
      multineuronal dimensionality…"; Recanatesi et al. 2019), ``k`` for ``k`` equal variances.

    The spectrum comes from the ``D × D`` covariance (accumulated over row blocks, then
    ``eigh``) or from the ``n × n`` Gram matrix when ``n < D`` — never a full SVD of ``X``. The
    interval is a BCa bootstrap over rows (:mod:`lowdim.estimators.intervals`; never widened): on a seeded subsample of at most ``10,000`` rows, the
    per-row contributions to each eigenvalue (squared projections on the eigenvectors, i.e.
    first-order perturbation of the spectrum) are resampled, the deviations rescaled to the full
    ``n`` and the estimator re-applied to each resampled spectrum.

    Parameters
    ----------
    estimator : {"threshold", "participation_ratio"}, default="threshold"
    variance : float in (0, 1), default=0.9
        Explained-variance threshold of ``estimator="threshold"``.
    fractional : bool, default=False
        Interpolate the threshold dimension between integers.
    n_bootstrap : int, default=200
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
        Exact duplicate rows are dropped (or refused) as in the other estimators.
    random_state : int, default=0
        Seed of the bootstrap.

    Attributes
    ----------
    dimension_, ci_ : float, (float, float)
    eigenvalues_ : ndarray
        Covariance spectrum, descending.
    explained_variance_ratio_, cumulative_variance_ : ndarray
    scale_curve_ : ScaleCurve
        Threshold dimension against the explained-variance threshold (0.5 … 0.99), with
        bootstrap bands: the cumulative explained-variance curve read in dimension units.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import PCA
    >>> X = np.random.default_rng(0).normal(size=(1000, 3)) @ np.random.default_rng(1).normal(size=(3, 20))
    >>> PCA(variance=0.999).fit(X).dimension_
    3.0
    """

    name = "pca"
    uses_neighbors = False

    def __init__(self, *, estimator: Literal["threshold", "participation_ratio"] = "threshold",
                 variance: float = 0.9, fractional: bool = False, n_bootstrap: int = 200,
                 confidence: float = 0.95, duplicates: str = "drop", random_state: int | None = 0) -> None:
        self.estimator = estimator
        self.variance = variance
        self.fractional = fractional
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def _check_params(self) -> None:
        check_choice("estimator", self.estimator, ("threshold", "participation_ratio"))
        check_fraction("variance", self.variance, low=0.0, high=1.0, high_open=True)
        check_int("n_bootstrap", self.n_bootstrap, low=10)

    def _min_samples(self) -> int:
        return 2

    def _dim(self, lam: np.ndarray) -> np.ndarray:
        if self.estimator == "participation_ratio":
            return participation_ratio(lam)
        return variance_threshold_dimension(lam, float(self.variance), fractional=bool(self.fractional))

    def _fit_points(self, X: np.ndarray) -> None:
        n, D = X.shape
        if n < 2:
            raise LowdimError(f"PCA needs at least 2 distinct rows, got {n}")
        mean = X.mean(axis=0, dtype=np.float64)
        lam, proj = _spectrum(X, mean, self.random_state)
        total = lam.sum()
        if total <= 0:
            raise LowdimError(f"X (shape {X.shape}) has zero variance; it has no dimension to measure")
        self.eigenvalues_ = lam
        self.explained_variance_ratio_ = lam / total
        self.cumulative_variance_ = np.cumsum(lam) / total
        self.dimension_ = float(self._dim(lam))
        # bootstrap: resample rows' contributions z_ij = (x_i·v_j)² to λ_j (first order)
        from lowdim.estimators.intervals import bootstrap_mean_statistic

        Z = proj**2
        m = Z.shape[0]
        lam_sub = Z.sum(axis=0) / max(m - 1, 1)
        ths = CURVE_THRESHOLDS
        frac = bool(self.fractional)

        def spectra(means: np.ndarray) -> np.ndarray:  # resampled spectra, rescaled to n rows
            lam_b = lam[: Z.shape[1]] + np.sqrt(m / n) * (means * (m / max(m - 1, 1)) - lam_sub)
            if Z.shape[1] < lam.size:  # Gram path: the null space has zero variance in every resample
                lam_b = np.hstack([lam_b, np.zeros((lam_b.shape[0], lam.size - Z.shape[1]))])
            return -np.sort(-np.clip(lam_b, 0.0, None), axis=1)

        def stat(means: np.ndarray) -> np.ndarray:  # [estimate, threshold dimension at each threshold]
            lb = spectra(means)
            return np.column_stack([self._dim(lb), variance_threshold_dimension(lb, ths[:, None],
                                                                                fractional=frac).T])

        cd = variance_threshold_dimension(lam, ths, fractional=frac)
        iv = bootstrap_mean_statistic(Z, stat, n_boot=int(self.n_bootstrap), confidence=self.confidence,
                                      random_state=self.random_state,
                                      theta_hat=np.concatenate([[self.dimension_], cd]))
        self.ci_ = (float(iv.low[0]), float(iv.high[0]))
        self.interval_method_ = (f"{iv.method}, {iv.n_boot} resamples of {m} rows' contributions to the "
                                 "spectrum (first-order perturbation, rescaled to n)")
        self.raw_ = {"bootstrap_bias": float(iv.bias[0])}
        self.scale_curve_ = self._curve(ths, cd, iv.low[1:], iv.high[1:], "explained-variance threshold (PCA)")


def _spectrum(X: np.ndarray, mean: np.ndarray, random_state: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Covariance eigenvalues (descending) and the projections of ≤ BOOTSTRAP_ROWS centred rows
    on the eigenvectors (``n < D``: from the Gram matrix, whose eigenvectors give them directly)."""
    n, D = X.shape
    work = np.float32 if X.dtype == np.float32 else np.float64
    if n < D:
        Xc = X.astype(np.float64) - mean
        w, U = np.linalg.eigh(Xc @ Xc.T / (n - 1))
        order = np.argsort(w)[::-1]
        w, U = np.clip(w[order], 0.0, None), U[:, order]
        r = int(min(n - 1, D))
        proj = U[:, :r] * np.sqrt(w[:r] * (n - 1))
        rows = _subsample(n, random_state)
        lam = np.zeros(D)
        lam[:r] = w[:r]
        return lam, proj[rows]
    C = np.zeros((D, D))
    for s in range(0, n, BLOCK_ROWS):
        B = (X[s:s + BLOCK_ROWS] - mean).astype(work, copy=False)
        C += (B.T @ B).astype(np.float64, copy=False)
    w, V = np.linalg.eigh(C / (n - 1))
    order = np.argsort(w)[::-1]
    rows = _subsample(n, random_state)
    proj = ((X[rows] - mean).astype(work, copy=False) @ V[:, order].astype(work)).astype(np.float64)
    return np.clip(w[order], 0.0, None), proj


def _subsample(n: int, random_state: int | None) -> np.ndarray:
    if n <= BOOTSTRAP_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, BOOTSTRAP_ROWS, replace=False))
