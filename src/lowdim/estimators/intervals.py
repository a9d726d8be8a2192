"""Bootstrap intervals for statistics that are functions of a mean: BCa, never widened.

Every bootstrap interval of lowdim's estimators (MLE, PCA, correlation dimension and their scale
curves) is a statistic ``θ = f(mean of per-row values)``. This module resamples the rows
(:func:`~lowdim.estimators.mle.resampled_means`), and returns the bias-corrected and accelerated
(BCa) interval of Efron (1987): with ``z0 = Φ⁻¹(P*(θ* < θ̂))`` (ties count half) and the
acceleration ``a`` from the jackknife, the interval is the ``Φ(z0 + (z0 + z_α)/(1 − a(z0 + z_α)))``
quantiles of the resamples. The jackknife is exact and cheap here: the leave-one-out mean is
``(Σv − v_i)/(n − 1)``. Where BCa is undefined (every resample on one side of the estimate, e.g.
an integer-valued PCA count), the percentile interval is returned, its method says so, and the
bootstrap bias ``mean(θ*) − θ̂`` is reported. No interval is ever widened to contain the estimate.

B. Efron, "Better bootstrap confidence intervals", JASA 82:171–185 (1987); T. J. DiCiccio and
B. Efron, "Bootstrap confidence intervals", Statistical Science 11:189–228 (1996).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["BootstrapInterval", "bca_from_samples", "bootstrap_mean_statistic"]


@dataclass(frozen=True)
class BootstrapInterval:
    """``low``/``high`` (scalars or arrays), the ``method`` used per column and the bootstrap bias."""

    low: np.ndarray
    high: np.ndarray
    method: str
    bias: np.ndarray
    n_boot: int


def bca_from_samples(theta_hat: np.ndarray, boot: np.ndarray, jack: np.ndarray,
                     confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BCa limits per column from bootstrap (B, m) and jackknife (n, m) replicates.

    Returns ``low, high, ok`` where ``ok`` is False for columns whose BCa is undefined (there the
    percentile limits are returned).
    """
    theta_hat = np.atleast_1d(np.asarray(theta_hat, dtype=float))
    boot = np.asarray(boot, dtype=float).reshape(boot.shape[0], -1)
    jack = np.asarray(jack, dtype=float).reshape(jack.shape[0], -1)
    B = boot.shape[0]
    alpha = (1 - confidence) / 2
    prop = ((boot < theta_hat).sum(axis=0) + 0.5 * (boot == theta_hat).sum(axis=0)) / B
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(prop)
        dev = jack.mean(axis=0) - jack
        num = (dev**3).sum(axis=0)
        den = 6.0 * (dev**2).sum(axis=0) ** 1.5
        a = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        lims = []
        for z in (ndtri(alpha), ndtri(1 - alpha)):
            lims.append(ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))))
    ok = np.isfinite(z0) & np.isfinite(lims[0]) & np.isfinite(lims[1])
    pl = np.where(ok, lims[0], alpha)
    ph = np.where(ok, lims[1], 1 - alpha)
    sb = np.sort(boot, axis=0)
    low = np.array([np.quantile(sb[:, j], pl[j]) for j in range(sb.shape[1])])
    high = np.array([np.quantile(sb[:, j], ph[j]) for j in range(sb.shape[1])])
    return low, high, ok


def bootstrap_mean_statistic(values: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], *,
                             n_boot: int, confidence: float, random_state: int | None,
                             theta_hat: np.ndarray | None = None) -> BootstrapInterval:
    """BCa interval of ``stat(mean of rows)`` by resampling the rows of ``values``.

    Parameters
    ----------
    values : ndarray of shape (n, p)
        Per-row contributions whose mean the statistic is a function of.
    stat : callable
        Maps means of shape (B, p) to statistics of shape (B,) or (B, m).
    n_boot, confidence, random_state
        Resamples, coverage and seed.
    theta_hat : ndarray, optional
        The point estimate(s); default ``stat(values.mean(axis=0))``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators.intervals import bootstrap_mean_statistic
    >>> v = np.random.default_rng(0).exponential(size=(500, 1))
    >>> iv = bootstrap_mean_statistic(v, lambda m: 1 / m[:, 0], n_boot=1000, confidence=0.95, random_state=0)
    >>> iv.method, bool(iv.low[0] < 1 / v.mean() < iv.high[0])
    ('bootstrap BCa', True)
    """
    from lowdim.estimators.mle import resampled_means

    V = np.asarray(values, dtype=np.float64)
    V = V[:, None] if V.ndim == 1 else V
    n = V.shape[0]
    if theta_hat is None:
        theta_hat = stat(V.mean(axis=0, keepdims=True))[0]
    theta_hat = np.atleast_1d(np.asarray(theta_hat, dtype=float))
    boot = np.asarray(stat(resampled_means(V, int(n_boot), random_state)), dtype=float).reshape(n_boot, -1)
    jack = np.empty((n, boot.shape[1]))
    step = max(1, 2_000_000 // max(V.shape[1], 1))
    total = V.sum(axis=0)
    for s in range(0, n, step):  # leave-one-out means, in bounded chunks
        jack[s:s + step] = np.asarray(stat((total - V[s:s + step]) / (n - 1)), dtype=float).reshape(-1, boot.shape[1])
    low, high, ok = bca_from_samples(theta_hat, boot, jack, confidence)
    method = "bootstrap BCa" if ok.all() else (
        "bootstrap percentile (BCa undefined: the resamples all lie on one side of the estimate)"
        if not ok.any() else "bootstrap BCa (percentile where BCa is undefined)")
    return BootstrapInterval(low, high, method, boot.mean(axis=0) - theta_hat, int(n_boot))
