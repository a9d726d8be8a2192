"""``method="auto"``: a documented rule over one shared graph, chosen on out-of-family data."""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdim.estimators.base import IDEstimator
from lowdim.estimators.compare import disagreements
from lowdim.estimators.ctwonn import CalibratedTwoNN
from lowdim.estimators.gride import AUTO_RANGE_MAX, GRIDE, _n_rows
from lowdim.estimators.mle import MLE
from lowdim.estimators.twonn import TwoNN
from lowdim.neighbors import Neighbors
from lowdim.validation import check_int

__all__ = ["RULE", "AutoID", "noise_floor"]

#: ctwonn is reported only where its correction of raw TwoNN exceeds this fraction. Out of family
#: (clean cases, sphere reference) corrections below 2 % made two cases worse than raw TwoNN
#: (5-D Gaussian, Student-t: within sampling error), corrections of 2.7 % and more improved every
#: case; 5 % leaves the cases within sampling error to raw TwoNN. Fixed before the 24-manifold check.
CALIBRATION_MIN_CORRECTION = 0.05
#: Rows of the covariance spectrum of the noise-floor test (a seeded subsample above this).
SPECTRUM_ROWS = 20_000
#: The noise floor must lie this far below the largest variance.
NOISE_GAP = 10.0

#: The rule, in words (also in every auto result's ``choice["rule"]``).
RULE = ("1) noise: if the covariance spectrum has a flat floor (its trailing half within the Marchenko-Pastur "
        "spread of pure noise, at least 10x below the top; isotropic ambient noise) and the GRIDE plateau rule "
        "moves off n1 = 1, report GRIDE at the selected scale; 2) else report the calibrated TwoNN (ctwonn) "
        f"where its correction of raw TwoNN exceeds {CALIBRATION_MIN_CORRECTION:.0%}; 3) else raw TwoNN")


def noise_floor(points: np.ndarray, *, random_state: int | None = 0) -> dict[str, Any]:
    """Does the covariance spectrum show a floor of isotropic ambient noise?

    With ``n`` rows in ``D`` dimensions, pure isotropic noise has covariance eigenvalues within
    the Marchenko–Pastur range, a ratio of at most ``((1 + √γ)/(1 − √γ))²`` (γ = D/n) between its
    largest and smallest. The test: the trailing half of the spectrum lies within that ratio, is
    above roundoff (1e-9 of the top) and at least ``NOISE_GAP`` (10) times below the top variance.
    A clean linear embedding (zero floor), data filling the space (no gap) and smoothly decaying
    spectra (embeddings, images) all fail it. ``D < 4`` or ``D ≥ n`` cannot be tested (False).
    """
    n, D = (int(v) for v in points.shape)
    out: dict[str, Any] = {"noisy": False, "floor_variance": None, "top_variance": None}
    if D < 4 or D >= n:
        out["why"] = "not testable (D < 4 or D >= n)"
        return out
    if n > SPECTRUM_ROWS:  # a seeded subsample (rows read lazily from sharded point sets)
        points = points[np.sort(np.random.default_rng(random_state).choice(n, SPECTRUM_ROWS, replace=False))]
        n = SPECTRUM_ROWS
    A = np.asarray(points)
    B = A.astype(np.float64) - A.mean(axis=0, dtype=np.float64)
    lam = np.clip(np.linalg.eigvalsh(B.T @ B / (n - 1))[::-1], 0.0, None)
    tail = lam[D // 2:]
    g = D / n
    mp = ((1 + np.sqrt(g)) / (1 - np.sqrt(g))) ** 2 if g < 1 else np.inf
    floor, top = float(np.median(tail)), float(lam[0])
    spread = float(tail[0] / tail[-1]) if tail[-1] > 0 else np.inf
    out.update(floor_variance=floor, top_variance=top, tail_spread=spread, marchenko_pastur_spread=float(mp))
    out["noisy"] = bool(floor > 1e-9 * top and spread <= mp and top >= NOISE_GAP * floor)
    return out


class AutoID(IDEstimator):
    """The default estimator: one neighbour graph, one documented rule, every raw value kept.

    From a single ``range_max``-neighbour graph (64 by default) it computes the GRIDE scale curve
    (Denti et al. 2022), plain TwoNN (Facco et al. 2017), the calibrated TwoNN (``ctwonn``) and the
    MLE (Levina & Bickel 2004, k = 20) — no other search, except ctwonn's 20,000-point subsets
    above 20,000 points (with the graph's own settings). Then:

    1. **noise**: if the covariance spectrum has a floor of isotropic ambient noise
       (:func:`noise_floor`) and the GRIDE plateau rule (:func:`lowdim.estimators.gride.select_scale`)
       moves off n1 = 1 — the curve falls with scale, as noise at the neighbour scale makes it —
       the estimate is **GRIDE at the selected scale** (``method="gride"``; the result's ``scale``
       gives n1, n2 and the distance). The spectrum test is needed because a falling curve alone
       does not mean noise: clean high-dimensional or non-uniform data make it fall too.
    2. **high dimension**: else, where the calibrated TwoNN corrects raw TwoNN by more than 5 %
       (:data:`CALIBRATION_MIN_CORRECTION`), the estimate is **ctwonn**, with its raw TwoNN value
       and calibration provenance;
    3. else **raw TwoNN** (the calibration's correction would be within the spread between data
       shapes, and out of family it overshoots there).

    The rule was chosen on ``benchmarks/id_out_of_family.py`` (noise, non-uniform densities,
    unions, curvature, real data; none of it from the calibration family), with the 24 benchmark
    manifolds of ``benchmarks/id_accuracy.py`` as a check; the numbers are in that script's
    output and the README. The result's ``method`` is the estimator actually used, ``choice``
    says that ``auto`` chose it and why, ``raw`` holds every candidate's value and interval on
    the same graph, and ``notes`` list the candidates that disagree beyond their intervals.

    Parameters
    ----------
    range_max : int, default=64
        Neighbours searched (the largest rank of the GRIDE curve; capped by n − 1).
    confidence : float, default=0.95
    duplicates : {"drop", "error", "keep"}, default="drop"
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.estimators.auto import AutoID
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 4)) @ rng.normal(size=(4, 30))
    >>> r = AutoID().fit(X).result()
    >>> r.method, r.choice["requested"], round(r.dimension)
    ('twonn', 'auto', 4)
    """

    name = "auto"

    def __init__(self, *, range_max: int = AUTO_RANGE_MAX, confidence: float = 0.95, duplicates: str = "drop",
                 random_state: int | None = 0) -> None:
        self.range_max = range_max
        self.confidence = confidence
        self.duplicates = duplicates
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("range_max", self.range_max, low=4, fix="the GRIDE curve needs at least n1 = 1, 2")

    def fit(self, X: Any, y: Any = None) -> AutoID:
        """Estimate the ID of ``X`` (array or :class:`~lowdim.Neighbors`); see the class docstring."""
        self._k_cap = X.k if isinstance(X, Neighbors) else _n_rows(X) - 1
        try:
            return super().fit(X, y)
        finally:
            del self._k_cap

    def n_neighbors_needed(self) -> int:
        cap = getattr(self, "_k_cap", None)
        want = int(self.range_max)
        return max(2, min(want, cap)) if cap is not None and cap > 0 else want

    def _fit_neighbors(self, nb: Neighbors) -> None:
        common = {"confidence": self.confidence, "duplicates": self.duplicates, "random_state": self.random_state}
        g = GRIDE(n1="auto", range_max=self.range_max, **common).fit(nb)
        t = TwoNN(decimation=False, **common).fit(nb)
        c = CalibratedTwoNN(decimation=False, **common).fit(nb)
        parts = {"gride": g.result(), "twonn": t.result(), "ctwonn": c.result()}
        if nb.k >= 20:
            parts["mle"] = MLE(n_neighbors=20, **common).fit(nb).result()
        floor = noise_floor(nb.points, random_state=self.random_state)
        correction = (c.dimension_ - t.dimension_) / t.dimension_ if t.dimension_ > 0 else 0.0
        curve = g.scale_curve_
        if floor["noisy"] and g.selected_n1_ > 1:
            chosen, src = parts["gride"], g
            fall = (curve.dimension[0] - chosen.dimension) / curve.dimension[0]
            reason = (f"the covariance spectrum has a flat noise floor (variance {floor['floor_variance']:.3g}, "
                      f"{floor['top_variance'] / floor['floor_variance']:.0f}x below the top) and the GRIDE curve "
                      f"falls by {fall:.0%} from n1=1 ({curve.dimension[0]:.2f}) to the plateau rule's "
                      f"n1={g.selected_n1_} (distance {g.selected_distance_:.3g}): noise at the smallest scales")
        elif correction > CALIBRATION_MIN_CORRECTION:
            chosen, src = parts["ctwonn"], c
            reason = (f"no noise signature; the calibration corrects raw TwoNN ({t.dimension_:.2f}) by "
                      f"{correction:.0%} > {CALIBRATION_MIN_CORRECTION:.0%} (high dimension for this N)")
        else:
            chosen, src = parts["twonn"], t
            why = "no noise floor in the spectrum" if not floor["noisy"] else "the GRIDE curve does not fall"
            reason = (f"no noise signature ({why}); the calibration would correct raw TwoNN by only "
                      f"{correction:.0%} <= {CALIBRATION_MIN_CORRECTION:.0%}, within the spread between data shapes")
        self.dimension_, self.ci_ = chosen.dimension, chosen.ci
        self.chosen_ = chosen.method
        self.scale_curve_ = g.scale_curve_
        self.interval_method_ = chosen.interval_method
        self.calibration_ = chosen.calibration
        self.selected_scale_ = g.selected_scale_ if chosen.method == "gride" else None
        self.choice_ = {"requested": "auto", "chosen": chosen.method, "rule": RULE, "reason": reason}
        self.raw_ = {**{k: v for k, v in chosen.raw.items()}, "noise_floor": floor,
                     "calibration_correction": correction, "gride_scale": g.selected_scale_,
                     "candidates": {k: {"dimension": r.dimension, "ci": list(r.ci), "interval_method": r.interval_method}
                                    for k, r in parts.items()}}
        self.notes_.append(f"method='auto' chose {chosen.method!r}: {reason}")
        self.notes_.extend(n for n in src.notes_ if n not in self.notes_)
        self.notes_.extend(disagreements([parts[k] for k in ("twonn", "mle", "gride") if k in parts]))

    def result(self) -> Any:
        """The estimate, named after the estimator actually used (``choice`` says auto chose it)."""
        from dataclasses import replace

        res = super().result()
        return replace(res, method=self.chosen_)
