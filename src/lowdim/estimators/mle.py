"""Levina–Bickel maximum-likelihood ID with the MacKay–Ghahramani correction."""

from __future__ import annotations

import numpy as np

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.neighbors import Neighbors
from lowdim.validation import check_int

__all__ = ["MLE", "mle_inverse_estimates", "resampled_means"]


def resampled_means(values: np.ndarray, n_boot: int, random_state: int | None) -> np.ndarray:
    """Bootstrap means of the rows of ``values``: one row per resample, vectorised.

    Each resample draws ``n`` rows with replacement; their multiplicities form a count matrix
    ``W`` (chunks of resamples at a time, bounded memory) and the means are ``W @ values / n``.

    Parameters
    ----------
    values : ndarray of shape (n, p)
    n_boot : int
    random_state : int or None

    Returns
    -------
    ndarray of shape (n_boot, p)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    rng = np.random.default_rng(random_state)
    out = np.empty((n_boot, values.shape[1]))
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        out[s:s + b] = counts @ values / n
    return out


def mle_inverse_estimates(distances: np.ndarray, ks: np.ndarray, *, unbiased: bool) -> np.ndarray:
    """Per-point inverse MLE ``1 / m_k(x_i)`` for every ``k`` in ``ks``, vectorised.

    ``S_ik = Σ_{j<k} log(T_k(x_i) / T_j(x_i))`` with ``T_j`` the distance to the j-th neighbour;
    under the local Poisson model ``S_ik ~ Gamma(k − 1, rate d)``, so ``S_ik / (k − 1)`` is
    unbiased for ``1 / d`` and ``(k − 2) / S_ik`` is unbiased for ``d``.

    Returns
    -------
    ndarray of shape (n_points, len(ks))
        ``S_ik / (k − 1)`` (or ``S_ik / (k − 2)`` when ``unbiased``).
    """
    ks = np.asarray(ks, dtype=int)
    logT = np.log(distances[:, : ks.max()])
    csum = np.cumsum(logT, axis=1)
    S = (ks - 1) * logT[:, ks - 1] - csum[:, ks - 2]
    return S / (ks - (2 if unbiased else 1))


class MLE(IDEstimator):
    """Maximum-likelihood intrinsic dimension (Levina & Bickel 2004; MacKay & Ghahramani 2005).

    Around each point the neighbour distances ``T_1 ≤ … ≤ T_k`` of a locally uniform density give
    the likelihood estimate ``m_k(x) = (k − 1) / Σ_{j<k} log(T_k / T_j)`` (Levina & Bickel, eq. 8).
    Levina & Bickel average ``m_k(x)`` over points; MacKay & Ghahramani showed that averaging the
    *inverses* is the right pooling (the inverse is the unbiased quantity), so the global estimate
    is ``m_k = 1 / mean_i(1 / m_k(x_i)) = (k − 1) · n / Σ_i S_ik`` — the pooled maximum likelihood,
    and exactly ``skdim.id.MLE(comb="mle")``. With ``k_range=(k1, k2)`` the estimate is the mean of
    ``m_k`` over ``k1 ≤ k ≤ k2``, as Levina & Bickel recommend.

    Normalisation: the global estimate uses ``k − 1`` (with averaged inverses this is the pooled
    MLE and is unbiased to O(1/n)). A single point's ``(k − 1) / S`` is biased up by
    ``(k − 1)/(k − 2)``; ``(k − 2) / S`` is unbiased, so the local (per-point) estimates use
    ``k − 2`` by default. ``unbiased=True`` / ``False`` forces one normalisation for both
    (skdim's ``unbiased`` flag).

    Levina, E. & Bickel, P. J., "Maximum likelihood estimation of intrinsic dimension", NIPS 17
    (2004). MacKay, D. J. C. & Ghahramani, Z., "Comments on 'Maximum likelihood estimation of
    intrinsic dimension' by E. Levina and P. Bickel" (2005).

    Parameters
    ----------
    n_neighbors : int, default=20
        ``k``, the number of neighbours (not counting the point). Also the neighbourhood of the
        local estimate.
    k_range : tuple of int (k1, k2), optional
        Average ``m_k`` over ``k1 ≤ k ≤ k2`` instead of using ``k = n_neighbors`` alone.
    unbiased : bool or None, default=None
        Normalisation (see above). None: ``k − 1`` globally, ``k − 2`` locally.
    local : bool, default=False
        Also compute the per-point MLE over each point's ``n_neighbors`` neighbours into
        ``local_dimensions_`` (the global ``dimension_`` is unchanged).
    n_bootstrap : int, default=1000
        Bootstrap resamples of the points for the confidence interval (BCa, see
        :mod:`lowdim.estimators.intervals`; the same for each point of the curve). The paper
        gives no interval for the pooled estimate; neighbourhoods overlap, so the interval treats
        the per-point terms as independent and is on the narrow side.
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
    random_state : int, default=0
        Seed of the bootstrap.

    Attributes
    ----------
    dimension_, ci_ : float, (float, float)
    scale_curve_ : ScaleCurve
        ``m_k`` against ``k`` (neighbour rank), with bootstrap bands.
    local_dimensions_ : ndarray or None

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import MLE
    >>> X = np.random.default_rng(0).normal(size=(2000, 4)) @ np.random.default_rng(1).normal(size=(4, 20))
    >>> round(MLE().fit(X).dimension_)
    4
    """

    name = "mle"
    supports_local = True

    def __init__(self, *, n_neighbors: int = 20, k_range: tuple[int, int] | None = None,
                 unbiased: bool | None = None, local: bool = False, n_bootstrap: int = 1000,
                 confidence: float = 0.95, duplicates: str = "drop", random_state: int | None = 0) -> None:
        self.n_neighbors = n_neighbors
        self.k_range = k_range
        self.unbiased = unbiased
        self.local = local
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def _kmin(self, *, local: bool) -> int:
        unb = self.unbiased if self.unbiased is not None else local
        return 3 if unb else 2

    def _check_params(self) -> None:
        if self.unbiased not in (None, True, False):
            raise LowdimError(f"unbiased must be None, True or False, got {self.unbiased!r}")
        check_int("n_neighbors", self.n_neighbors, low=self._kmin(local=self.local),
                  fix="the MLE needs at least 2 neighbours (3 for the unbiased local estimate)")
        if self.k_range is not None:
            kr = self.k_range
            if not isinstance(kr, (tuple, list)) or len(kr) != 2:
                raise LowdimError(f"k_range must be a pair (k1, k2) with 2 <= k1 <= k2, got {kr!r}")
            k1 = check_int("k_range[0]", kr[0], low=self._kmin(local=False))
            check_int("k_range[1]", kr[1], low=k1, fix="k_range=(k1, k2) needs k1 <= k2")
        check_int("n_bootstrap", self.n_bootstrap, low=10)

    def _kmax(self) -> int:
        return int(self.k_range[1]) if self.k_range is not None else int(self.n_neighbors)

    def n_neighbors_needed(self) -> int:
        return max(self._kmax(), int(self.n_neighbors) if self.local else 0)

    def _fit_neighbors(self, nb: Neighbors) -> None:
        kmax = self._kmax()
        dist = _positive_distances(nb.require(kmax, "MLE").distances)
        unb = bool(self.unbiased) if self.unbiased is not None else False
        ks = np.arange(self._kmin(local=False), kmax + 1)
        inv = mle_inverse_estimates(dist, ks, unbiased=unb)  # (n, len(ks))
        curve = 1.0 / inv.mean(axis=0)
        sel = (ks >= self.k_range[0]) if self.k_range is not None else (ks == kmax)
        self.dimension_ = float(curve[sel].mean())
        from lowdim.estimators.intervals import bootstrap_mean_statistic

        def stat(means: np.ndarray) -> np.ndarray:  # [global estimate, m_k for every k]
            c = 1.0 / means
            return np.column_stack([c[:, sel].mean(axis=1), c])

        iv = bootstrap_mean_statistic(inv, stat, n_boot=int(self.n_bootstrap), confidence=self.confidence,
                                      random_state=self.random_state,
                                      theta_hat=np.concatenate([[self.dimension_], curve]))
        self.ci_ = (float(iv.low[0]), float(iv.high[0]))
        self.interval_method_ = f"{iv.method}, {iv.n_boot} resamples of the points"
        self.raw_ = {"bootstrap_bias": float(iv.bias[0])}
        lo, hi = iv.low[1:], iv.high[1:]
        self.scale_curve_ = self._curve(ks, curve, lo, hi, "neighbour rank k (MLE)")

    def _local_neighbors(self, nb: Neighbors) -> np.ndarray:
        k = int(self.n_neighbors)
        dist = _positive_distances(nb.require(k, "local MLE").distances)
        unb = self.unbiased if self.unbiased is not None else True
        inv = mle_inverse_estimates(dist, np.array([k]), unbiased=unb)[:, 0]
        with np.errstate(divide="ignore"):
            return 1.0 / inv  # tied distances (lattice data) give inf, as the likelihood does


def _positive_distances(dist: np.ndarray) -> np.ndarray:
    if (dist[:, 0] <= 0).any():
        n0 = int((dist[:, 0] <= 0).sum())
        raise LowdimError(
            f"{n0} points have a zero distance to their nearest neighbour (duplicate points); "
            "the MLE needs distinct points: pass duplicates='drop'"
        )
    return dist
