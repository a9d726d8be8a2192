"""TwoNN: the ratio of second to first neighbour distance (Facco et al. 2017)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import gammaincinv

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.estimators.graph import search_settings, subset_neighbors
from lowdim.neighbors import Neighbors
from lowdim.validation import check_choice, check_fraction, check_int

__all__ = ["TwoNN", "twonn_from_mu"]


def twonn_from_mu(mu: np.ndarray, *, discard_fraction: float = 0.1, algorithm: str = "mle",
                  confidence: float = 0.95) -> tuple[float, tuple[float, float]]:
    """TwoNN estimate and confidence interval from ratios ``mu = r2 / r1``.

    ``mu`` follows a Pareto law ``P(mu > x) = x^{-d}``. The largest ``discard_fraction`` of the
    ratios (outliers, boundary and curvature effects) are treated as right-censored, which keeps
    the maximum-likelihood estimate exact: ``d = m / (Σ_{kept} log mu + (n − m) log mu_c)`` with
    ``2 d S ~ χ²(2m)`` giving the interval. ``algorithm="linear"`` is Facco et al.'s original fit
    of ``−log(1 − F)`` against ``log mu`` through the origin (the interval is then the same χ²
    width, centred on the fit).
    """
    mu = np.sort(np.asarray(mu, dtype=np.float64))
    n = mu.size
    m = max(2, int(np.floor(n * (1.0 - discard_fraction))))
    logs = np.log(mu)
    if algorithm == "linear":
        F = np.arange(1, n + 1) / n
        x, y = logs[:m], -np.log1p(-F[:m])
        d = float(np.dot(x, y) / np.dot(x, x))
    else:
        S = logs[:m].sum() + (n - m) * logs[m - 1]
        d = float((m - 1) / S) if S > 0 else np.inf
    S = logs[:m].sum() + (n - m) * logs[m - 1]
    a = (1 - confidence) / 2
    # chi2.ppf(p, 2m) = 2·gammaincinv(m, p): 2 d S ~ χ²(2m)  =>  d ∈ [χ²_a, χ²_{1−a}] / (2S)
    lo = gammaincinv(m, a) / S
    hi = gammaincinv(m, 1 - a) / S
    scale = d / (m / S) if algorithm == "linear" and S > 0 else 1.0  # centre the χ² width on the fit
    return d, (float(lo * scale), float(hi * scale))


class TwoNN(IDEstimator):
    """Two-nearest-neighbour intrinsic dimension (Facco, d'Errico, Rodriguez & Laio, 2017).

    Facco et al., "Estimating the intrinsic dimension of datasets by a minimal neighborhood
    information", Scientific Reports 7:12140 (2017).

    Parameters
    ----------
    discard_fraction : float, default=0.1
        Fraction of the largest ratios treated as censored (the paper discards 10 %).
    algorithm : {"mle", "linear"}, default="mle"
        Censored maximum likelihood, or the paper's linear fit through the origin.
    decimation : bool or None, default=None
        Compute the scale curve by decimation (estimates on random subsets of n/2, n/4, …
        points, as in the paper). None: only when n ≤ 50,000, as it costs a third more search.
        Those searches use the backend, device and threads of the graph the estimate came from.
    n_neighbors : int, default=20
        Neighbourhood size of the local (per-point) estimate.
    local : bool, default=False
        Also compute per-point local ID: TwoNN over each point's ``n_neighbors`` neighbourhood
        (as in "Less is More: Local Intrinsic Dimensions of Contextual Language Models", 2025).
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import TwoNN
    >>> X = np.random.default_rng(0).normal(size=(2000, 3)) @ np.random.default_rng(1).normal(size=(3, 10))
    >>> round(TwoNN().fit(X).dimension_)
    3
    """

    name = "twonn"
    supports_local = True

    def __init__(self, *, discard_fraction: float = 0.1, algorithm: Literal["mle", "linear"] = "mle",
                 decimation: bool | None = None, n_neighbors: int = 20, local: bool = False,
                 confidence: float = 0.95, duplicates: str = "drop", random_state: int | None = 0) -> None:
        self.discard_fraction = discard_fraction
        self.algorithm = algorithm
        self.decimation = decimation
        self.n_neighbors = n_neighbors
        self.local = local
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def n_neighbors_needed(self) -> int:
        return max(2, self.n_neighbors) if self.local else 2

    def _check_params(self) -> None:
        check_fraction("discard_fraction", self.discard_fraction, low=0.0, high=0.9, low_open=False)
        check_choice("algorithm", self.algorithm, ("mle", "linear"))
        check_int("n_neighbors", self.n_neighbors, low=2)

    def _estimate(self, mu: np.ndarray) -> tuple[float, tuple[float, float]]:
        return twonn_from_mu(mu, discard_fraction=self.discard_fraction, algorithm=self.algorithm,
                             confidence=self.confidence)

    def _fit_neighbors(self, nb: Neighbors) -> None:
        if nb.n_queries < 3:
            raise LowdimError(f"TwoNN needs at least 3 points, got {nb.n_queries}")
        mu = nb.distances[:, 1] / nb.distances[:, 0]
        self.mu_ = mu
        self.dimension_, self.ci_ = self._estimate(mu)
        self.interval_method_ = ("chi2: 2·d·S ~ chi2(2m) of the censored TwoNN likelihood"
                                 + (", centred on the linear fit" if self.algorithm == "linear" else ""))
        decimate = self.decimation if self.decimation is not None else nb.n_points <= 50_000
        if decimate and nb.n_points >= 40:
            self.scale_curve_ = self._decimation_curve(nb)

    def _decimation_curve(self, nb: Neighbors) -> object:
        rng = np.random.default_rng(self.random_state)
        settings = search_settings(nb)  # the graph's backend, device and threads: no other settings
        sizes, dims, los, his, scales = [], [], [], [], []
        n = nb.n_points
        while n >= 20:
            if n == nb.n_points:
                mu, r = nb.distances[:, 1] / nb.distances[:, 0], nb.distances[:, :2]
            else:
                nbs = subset_neighbors(nb.points, rng.choice(nb.n_points, size=n, replace=False), 2, settings)
                mu, r = nbs.distances[:, 1] / nbs.distances[:, 0], nbs.distances
            d, (lo, hi) = self._estimate(mu)
            sizes.append(n)
            scales.append(float(np.median(r[:, 1])))
            dims.append(d)
            los.append(lo)
            his.append(hi)
            n //= 2
        self.decimation_sizes_ = np.array(sizes)
        return self._curve(scales, dims, los, his, "median 2nd-neighbour distance (decimation)")

    def _local_neighbors(self, nb: Neighbors) -> np.ndarray:
        return local_twonn(nb, self.n_neighbors)


def local_twonn(nb: Neighbors, k: int) -> np.ndarray:
    """Per-point TwoNN over each point's k-neighbourhood (itself plus its k neighbours), vectorised.

    ``d_i = k / Σ_{j ∈ N_k(i) ∪ {i}} log mu_j`` (the unbiased MLE ``(m − 1) / Σ log mu`` with
    ``m = k + 1`` ratios).
    """
    nbk = nb.require(max(k, 2), "local TwoNN")
    logmu = np.log(nbk.distances[:, 1] / nbk.distances[:, 0])
    S = logmu + logmu[nbk.indices[:, :k]].sum(axis=1)
    return k / S
