"""GRIDE: the generalised-ratios intrinsic dimension estimator (Denti et al. 2022), multiscale."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtri

from lowdim.errors import LowdimError
from lowdim.estimators.base import IDEstimator
from lowdim.neighbors import Neighbors
from lowdim.validation import check_int, to_numpy

__all__ = ["GRIDE", "gride_from_log_mu", "select_scale"]

#: Search interval of the likelihood maximisation (as DADApy: 1e-3 … 1e3).
D_BOUNDS = (1e-3, 1e3)
#: Scale-selection rule of ``n1="auto"``: move from n1 to 2·n1 while the curve falls by more than
#: this fraction of its value *and* by more than SCALE_Z standard errors (Fisher, in quadrature).
SCALE_DROP = 0.03
SCALE_Z = 2.0
#: Largest neighbour rank of the curve that ``n1="auto"`` reads when ``range_max`` is None.
AUTO_RANGE_MAX = 64


def select_scale(dims: np.ndarray, errs: np.ndarray, *, drop: float = SCALE_DROP, z: float = SCALE_Z) -> int:
    """Index of the scale chosen on a GRIDE curve at n1 = 1, 2, 4, … (the plateau rule).

    Ambient noise inflates the dimension at scales below the noise and the curve falls as the
    scale grows; where it stops falling the noise no longer dominates (Denti et al. 2022, Sec. 4:
    read the ID where the curve is flat). Starting at n1 = 1, the rule moves to the next scale
    while the curve falls by more than ``drop`` (3 %) of its value and by more than ``z`` (2)
    standard errors, and stops at the first scale after which it does not: a flat or rising curve
    (clean data, curvature) keeps n1 = 1. If the curve falls all the way, the largest scale is
    chosen (and the noise may extend further).
    """
    i = 0
    while i + 1 < len(dims):
        fall = dims[i] - dims[i + 1]
        if fall > drop * dims[i] and fall > z * float(np.hypot(errs[i], errs[i + 1])):
            i += 1
        else:
            break
    return i


def gride_from_log_mu(log_mu: np.ndarray, n1: int, n2: int) -> tuple[float, float]:
    """GRIDE maximum-likelihood dimension and its standard error from ``log(r_{n2} / r_{n1})``.

    ``mu = r_{n2}/r_{n1}`` has density ``d (mu^d − 1)^{n2−n1−1} / (B(n2−n1, n1) mu^{(n2−1)d+1})``
    (Denti et al. 2022, eq. 5). The log-likelihood, concave in ``d``, is maximised by bounded
    scalar minimisation over ``log d``; as DADApy does, it uses ``(N − 1) log d`` so that at
    ``n1 = 1, n2 = 2`` it reduces to the unbiased TwoNN MLE ``(N − 1) / Σ log mu`` (solved in
    closed form there). The error is ``1 / sqrt(J)`` with the observed Fisher information
    ``J = (N − 1)/d² + (n2 − n1 − 1) Σ log²mu / (4 sinh²(d log mu / 2))``.

    Ratios equal to 1 (tied distances) have zero density when ``n2 > n1 + 1`` and are ignored.
    """
    L = np.asarray(log_mu, dtype=np.float64)
    a = n2 - n1 - 1
    if a > 0:
        L = L[L > 0]
    N = L.size
    if N < 2:
        raise LowdimError(f"GRIDE (n1={n1}, n2={n2}) needs at least 2 usable distance ratios, got {N}")
    sL = float(L.sum())
    if sL <= 0:
        raise LowdimError(f"GRIDE (n1={n1}, n2={n2}): every distance ratio is 1 (tied distances)")
    if a == 0:
        d = (N - 1) / sL
    else:
        from scipy.optimize import minimize_scalar  # lazy: scipy.optimize costs ~0.3 s to import

        def nll(t: float) -> float:
            dd = np.exp(t)
            return -((N - 1) * t + a * (dd * sL + np.log(-np.expm1(-dd * L)).sum()) - (n2 - 1) * dd * sL)

        lo, hi = np.log(D_BOUNDS[0]), np.log(D_BOUNDS[1])
        res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        d = float(np.exp(res.x))
    J = (N - 1) / d**2
    if a > 0:  # (ratios of exactly 1 were dropped above, so no 0/0 here)
        with np.errstate(over="ignore"):
            J += a * float(np.sum(L**2 / (4.0 * np.sinh(d * L / 2.0) ** 2)))
    return float(d), float(1.0 / np.sqrt(J))


class GRIDE(IDEstimator):
    """Generalised ratios ID estimator (Denti, Doimo, Laio & Mira 2022), with its scale curve.

    For each point ``mu = r_{n2} / r_{n1}``, the ratio of its distances to the ``n2``-th and
    ``n1``-th neighbours, has a closed-form distribution that depends only on the dimension;
    the estimate maximises its likelihood. ``n1 = 1, n2 = 2`` is TwoNN; larger ``n1`` probes
    larger scales without decimating the data, which makes the estimate robust to noise. The
    scale curve repeats the estimate at ``n1 = 1, 2, 4, …`` with ``n2 = 2 n1`` up to
    ``range_max`` (DADApy's ``return_id_scaling_gride``), against the mean distance of the
    neighbours involved.

    Denti, F., Doimo, D., Laio, A. & Mira, A., "The generalized ratios intrinsic dimension
    estimator", Scientific Reports 12:20005 (2022).

    Scale selection (``n1="auto"``): the estimate is read at the scale chosen on the curve by the
    plateau rule of :func:`select_scale` (move to the next scale while the curve falls by more
    than 3 % and 2 standard errors); ``selected_n1_``, ``selected_distance_`` and the result's
    ``scale`` report the choice as a neighbour order and as a distance, and the whole curve is the
    result's ``scale_curve``. This is how the GRIDE paper and DADApy read ID off noisy data.

    Neighbours searched: exactly ``n2`` for a fixed ``n1`` (and the curve then covers the ranks
    those hold), ``range_max`` when given, and ``range_max`` (default 64) for ``n1="auto"``. A
    :class:`~lowdim.Neighbors` passed in is used as it is: the curve covers the ranks it holds.

    Parameters
    ----------
    n1 : int or "auto", default=1
        Rank of the nearer neighbour of the global estimate; ``"auto"``: chosen on the curve.
    n2 : int, optional
        Rank of the farther neighbour, ``n2 > n1``; default ``2 * n1``.
    range_max : int or None, default=None
        Largest neighbour rank of the scale curve (capped by the points available and by the
        neighbours stored in a :class:`~lowdim.Neighbors` passed in); None: the ranks searched
        anyway (``n2``, or 64 for ``n1="auto"``).
    confidence : float, default=0.95
        The interval is ``d ± z · err`` with ``err`` from the observed Fisher information.
    duplicates : {"drop", "error", "keep"}, default="drop"
    random_state : int, default=0

    Attributes
    ----------
    dimension_, ci_, std_error_ : float, (float, float), float
    scale_curve_ : ScaleCurve or None
    scale_ranks_ : ndarray
        ``n1`` of each point of the curve (``n2 = 2 n1``).
    selected_n1_, selected_distance_ : int, float
        The scale of the estimate: its ``n1`` and the mean distance of the ``n1``-th and
        ``n2``-th neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators import GRIDE
    >>> X = np.random.default_rng(0).normal(size=(2000, 3)) @ np.random.default_rng(1).normal(size=(3, 10))
    >>> round(GRIDE().fit(X).dimension_)
    3
    """

    name = "gride"

    def __init__(self, *, n1: int | str = 1, n2: int | None = None, range_max: int | None = None,
                 confidence: float = 0.95, duplicates: str = "drop", random_state: int | None = 0) -> None:
        self.n1 = n1
        self.n2 = n2
        self.range_max = range_max
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def _auto(self) -> bool:
        return isinstance(self.n1, str)

    def _n2(self) -> int:
        if self._auto():
            return 2
        return int(self.n2) if self.n2 is not None else 2 * int(self.n1)

    def _check_params(self) -> None:
        if self._auto():
            if self.n1 != "auto":
                raise LowdimError(f"n1 must be a positive int or 'auto', got {self.n1!r}")
            if self.n2 is not None:
                raise LowdimError(f"n2={self.n2!r} cannot be given with n1='auto' (n2 = 2·n1 on the curve)")
            n1 = 1
        else:
            n1 = check_int("n1", self.n1, low=1)
        if self.n2 is not None:
            check_int("n2", self.n2, low=n1 + 1, fix="GRIDE needs n2 > n1")
        if self.range_max is not None:
            check_int("range_max", self.range_max, low=2, fix="or pass range_max=None for a curve over the ranks searched anyway")

    def fit(self, X: Any, y: Any = None) -> GRIDE:
        """Estimate the ID of ``X`` (array or :class:`~lowdim.Neighbors`); see the class docstring."""
        # the scale curve uses as many neighbours as the data (or a Neighbors passed in) offer
        self._k_cap = X.k if isinstance(X, Neighbors) else _n_rows(X) - 1
        self._given = isinstance(X, Neighbors)  # a graph passed in: the curve covers all it holds
        try:
            return super().fit(X, y)
        finally:
            del self._k_cap, self._given

    def _range_max(self) -> int:
        if self.range_max is not None:
            return int(self.range_max)
        return AUTO_RANGE_MAX if self._auto() else 0

    def n_neighbors_needed(self) -> int:
        need = self._n2()
        want = max(need, self._range_max())
        if getattr(self, "_given", False) and self.range_max is None and not self._auto():
            want = self._k_cap
        cap = getattr(self, "_k_cap", None)
        return max(need, min(want, cap)) if cap is not None and cap > 0 else want

    def _fit_neighbors(self, nb: Neighbors) -> None:
        r = nb.distances
        if (r[:, 0] <= 0).any():
            raise LowdimError(
                f"{int((r[:, 0] <= 0).sum())} points have a zero distance to their nearest neighbour "
                "(duplicate points); GRIDE needs distinct points: pass duplicates='drop'"
            )
        z = float(ndtri(0.5 + self.confidence / 2))
        kmax = min(self._range_max(), nb.k) if self._range_max() else nb.k
        ranks = 2 ** np.arange(int(np.log2(kmax))) if kmax >= 2 else np.array([], int)
        self.scale_ranks_ = ranks
        dims, errs, scales = [], [], []
        for m in ranks:  # a handful of scales (log2 of range_max), each vectorised over points
            di, ei = gride_from_log_mu(np.log(r[:, 2 * m - 1] / r[:, m - 1]), int(m), int(2 * m))
            dims.append(di)
            errs.append(ei)
            scales.append(float(np.mean(r[:, [m - 1, 2 * m - 1]])))
        dims_a, errs_a = np.array(dims), np.array(errs)
        if len(ranks):
            self.scale_curve_ = self._curve(scales, dims_a, dims_a - z * errs_a, dims_a + z * errs_a,
                                            "mean distance of the n1-th and 2·n1-th neighbours (GRIDE)")
        if self._auto():
            i = select_scale(dims_a, errs_a)
            n1, n2 = int(ranks[i]), int(2 * ranks[i])
            d, err, dist = float(dims_a[i]), float(errs_a[i]), float(scales[i])
            rule = (f"plateau rule: from n1=1 move to 2·n1 while the curve falls by > {SCALE_DROP:.0%} and "
                    f"> {SCALE_Z:g} standard errors")
            if i == len(ranks) - 1 and i > 0:
                self.notes_.append(f"the GRIDE curve still falls at its largest scale (n1={n1}): the noise may reach "
                                   "further; a larger range_max would read a larger scale")
        else:
            n1, n2 = int(self.n1), self._n2()
            d, err = gride_from_log_mu(np.log(r[:, n2 - 1] / r[:, n1 - 1]), n1, n2)
            dist = float(np.mean(r[:, [n1 - 1, n2 - 1]]))
            rule = "fixed n1, n2"
        self.dimension_, self.std_error_ = d, err
        self.ci_ = (d - z * err, d + z * err)
        self.selected_n1_, self.selected_distance_ = n1, dist
        self.selected_scale_ = {"n1": n1, "n2": n2, "distance": dist,
                                "distance_definition": "mean distance of the n1-th and n2-th neighbours",
                                "rule": rule}
        self.interval_method_ = "normal: d ± z·SE, SE from the observed Fisher information"
        self.raw_ = {"std_error": err}


def _n_rows(X: Any) -> int:
    try:
        A = to_numpy(X)
    except LowdimError:
        return 0
    return int(A.shape[0]) if A.ndim >= 1 else 0
