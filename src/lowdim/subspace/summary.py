"""What a d90 sweep's runs summarise to: accuracy intervals, the d90 interval, :class:`D90Result`.

**Accuracy intervals** (per tested d and for the baseline) — ``ACCURACY_INTERVAL``. S seeds give
accuracies a₁ … a_S, each on the same n test examples; the estimand is their mean ā. Its variance
adds the two sources of error:

- seed spread: ``s² / S``, the sample variance of the aₛ over the seeds;
- test-set sampling: ``p̃ (1 − p̃) / n``, binomial over the n test examples (n, not S·n: the seeds
  share one test set, so pooling them adds no examples), with p̃ = (n·ā + ½) / (n + 1) so that an
  accuracy of 0 or 1 keeps a non-zero error.

The interval is built on the logit scale (delta method: standard error ÷ p̃(1 − p̃)) and mapped
back, so it lies inside (0, 1) whatever S and n are: ``expit(logit(p̃) ± h / (p̃ (1 − p̃)))`` with
``h = √(t²_{S−1} · v_seed + z² · v_test)`` — each source at its own quantile: Student-t on S − 1
degrees of freedom for the estimated seed term, normal for the known test-set term. (One
Welch–Satterthwaite quantile on the summed variance undercovers at S = 2–3 when the seeds
dominate, 0.87–0.93 for a nominal 0.95 in a simulation; this form is exact at either extreme and
conservative between.) With S = 1 only the test-set term is left: the classic logit interval of a
proportion (close to Wilson's); n unknown (a custom task without ``n_test``) leaves the seed term only, and no interval
for S = 1 (NaN bounds).

**d90 interval.** Let θ be the threshold (for the relative rule θ = threshold × baseline, and
its ends ``θ_lo, θ_hi`` use the baseline interval's ends; for the absolute rule θ_lo = θ_hi = θ).
A tested d *clearly fails* when its interval lies below θ_lo, and *clearly passes* when it lies
at or above θ_hi. The d90 interval runs from one above the largest clearly failing d below d90
(or the smallest possible d) to the smallest clearly passing d ≥ d90; when no tested d clearly
passes, the upper end is ``None`` — "not reached within the tested range" — and never a number
beyond the tested d (or D). The ends are read off per-d intervals at the chosen level and assume
that accuracy does not fall as d grows; no joint (simultaneous) coverage over the tested d is
claimed, and the resolution is the tested grid (d90 is the smallest tested d that passes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lowdim.errors import LowdimError

__all__ = ["ACCURACY_INTERVAL", "D90Result", "accuracy_interval", "check_baseline", "d90_interval", "mean_ci",
           "pack_correct", "paired_difference", "unpack_correct"]

ACCURACY_INTERVAL = ("logit (delta method): seed spread s²/S plus binomial test-set error p(1-p)/n_test, "
                     "each at its own quantile (t on S-1 df, normal); inside (0, 1)")
NOT_REACHED = "not reached within the tested range"


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def accuracy_interval(values: Sequence[float], n_test: int | None = None,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean accuracy over seeds and its interval inside (0, 1) (see the module docstring).

    Parameters
    ----------
    values : sequence of float in [0, 1]
        One accuracy per seed, all on the same test set.
    n_test : int, optional
        Test examples behind each accuracy; without it only the seed spread counts.
    confidence : float

    Returns
    -------
    (mean, low, high)
        NaN bounds when there is nothing to estimate from (one seed and no ``n_test``).

    Examples
    --------
    >>> m, lo, hi = accuracy_interval([0.9], n_test=100)     # one seed: the logit interval
    >>> round(lo, 3), round(hi, 3)                            # (Wilson's: 0.826, 0.945)
    (0.819, 0.942)
    >>> m, lo, hi = accuracy_interval([0.97, 0.99, 1.0], n_test=500)
    >>> bool(0 < lo < m < hi < 1)                             # never beyond [0, 1]
    True
    """

    a = np.asarray(values, dtype=float)
    m, S = float(a.mean()), len(a)
    if n_test is not None and n_test > 0:
        n = float(n_test)
        p_c = (n * m + 0.5) / (n + 1)
        var = p_c * (1 - p_c) / n
    elif S < 2:
        return m, math.nan, math.nan
    else:
        p_c, var = min(max(m, 1e-6), 1 - 1e-6), 0.0
    v_seed = float(np.var(a, ddof=1)) / S if S >= 2 else 0.0
    if var + v_seed <= 0:  # identical seeds and no test-set size: nothing to spread
        return m, m, m
    centre, h = float(_logit(np.array(p_c))), _half_width(v_seed, var, S, confidence) / (p_c * (1 - p_c))
    expit = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    return m, expit(centre - h), expit(centre + h)


def _half_width(v_seed: float, v_test: float, S: int, confidence: float) -> float:
    """``√((t_{S−1} · se_seed)² + (z · se_test)²)``: each error source at its own quantile.

    The seed term is estimated from S − 1 degrees of freedom, the test-set term is known. A single
    Welch–Satterthwaite quantile on the summed variance undercovers when the seed term dominates
    and S is 2 or 3 (its df estimate is then itself noisy: 0.87–0.93 measured for a nominal 0.95);
    scaling each term by its own quantile is exact at either extreme and conservative between.
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    t = float(stats.t.ppf(0.5 + confidence / 2, S - 1)) if S >= 2 else 0.0
    return math.sqrt(t * t * v_seed + z * z * v_test)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of any metric (NaN bounds for fewer than 2 values).

    Not bounded to [0, 1]: :func:`accuracy_interval` is what :func:`find_d90` uses for accuracies.
    """
    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    from scipy import stats

    h = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def pack_correct(bits: Any) -> dict:
    """Per-example correctness as a JSON-able record field: ``{"n": n, "bits": base64 of packbits}``."""
    import base64

    b = np.asarray(bits, dtype=bool).reshape(-1)
    return {"n": len(b), "bits": base64.b64encode(np.packbits(b).tobytes()).decode("ascii")}


def unpack_correct(field: dict) -> np.ndarray:
    """Inverse of :func:`pack_correct` (a run record's ``"correct"``)."""
    import base64

    raw = np.frombuffer(base64.b64decode(field["bits"]), dtype=np.uint8)
    n = int(field["n"])
    if not 0 <= n <= 8 * len(raw) or len(raw) != (n + 7) // 8:
        raise LowdimError(f"a run's 'correct' field says n={n} but holds {len(raw)} bytes ({(n + 7) // 8} "
                          "expected): the results file was edited or damaged; rerun that run")
    return np.unpackbits(raw, count=n).astype(bool)


def paired_difference(a: Sequence[float], b: Sequence[float], n_test: int | None = None,
                      confidence: float = 0.95, *, correct: tuple | None = None) -> tuple[float, float, float]:
    """Mean of ``b − a`` over paired seeds and its interval: is configuration b better than a?

    ``a[s]`` and ``b[s]`` are two configurations' accuracies at the same seed ``s`` (the same
    projection seed, e.g. DID and SAID at one d) on the same ``n_test`` examples. The variance adds
    the paired seed spread ``s²_Δ / S`` and the test-set term. With ``correct = (bits_a, bits_b)``
    (per seed, per-example correctness, e.g. :func:`unpack_correct` of the runs' ``"correct"``)
    the test-set term is the paired one, ``var_i(e_i) / n`` with ``e_i`` example i's mean over
    seeds of ``b − a`` (McNemar's variance for one seed; with several, the variance of the
    seed-averaged difference), never below ``½ / (n (n + 1))``
    (half a discordant example: two sides that agree on every example keep a non-zero error, as
    p̃ does in :func:`accuracy_interval`). Without them the covariance of the
    two accuracies over test sets is unknown, so the Cauchy–Schwarz bound
    ``(√(p̃_a(1 − p̃_a)) + √(p̃_b(1 − p̃_b)))² / n`` is charged (exact when the two are perfectly
    anti-correlated; conservative otherwise, often by far). Both treat test examples as
    independent. Each term at its own quantile (t on S − 1 df for the seeds, normal for the test
    set), as in :func:`accuracy_interval`; not clipped.

    With one seed the seed spread cannot be estimated and only the test-set term is left: the
    interval is then about that seed's pair of models, not about the seed distribution.

    Returns
    -------
    (mean, low, high)
        NaN bounds with one seed and no ``n_test``.

    Examples
    --------
    >>> m, lo, hi = paired_difference([0.80, 0.82, 0.81], [0.85, 0.86, 0.85], n_test=2000)
    >>> round(m, 3), bool(lo > 0)                 # b is better, beyond seeds and test-set error
    (0.043, True)
    >>> round(paired_difference([0.80, 0.82], [0.81, 0.80])[0], 3)
    -0.005
    """

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise LowdimError(f"paired_difference needs two equal-length lists of per-seed accuracies, got "
                          f"{len(x)} and {len(y)} values; pass the runs of the same seeds in the same order")
    diff, S = y - x, len(x)
    m = float(diff.mean())
    v_test = 0.0
    if correct is not None:
        sides = [[np.asarray(c, dtype=bool).reshape(-1) for c in side] for side in correct]
        lens = [[len(c) for c in side] for side in sides]
        if len(sides) != 2 or any(len(ln) != S for ln in lens) or len({n for ln in lens for n in ln}) != 1 \
                or lens[0][0] < 2:
            raise LowdimError(f"correct= needs one per-example array per seed on both sides ({S} seeds), all of "
                              f"one length ≥ 2; got lengths {lens}")
        ca, cb = (np.asarray(side, dtype=float) for side in sides)
        if not (np.allclose(ca.mean(axis=1), x, atol=1e-9) and np.allclose(cb.mean(axis=1), y, atol=1e-9)):
            raise LowdimError("correct= does not match the accuracies given (each array's mean must be its "
                              "seed's accuracy): pass the runs' own 'correct' fields, in the same seed order")
        e, n = (cb - ca).mean(axis=0), ca.shape[1]
        # at least half a discordant example's worth (as p̃ keeps an accuracy of 0 or 1 uncertain)
        v_test = max(float(np.var(e, ddof=1)) / n, 0.5 / (n * (n + 1)))
    elif n_test:
        n = float(n_test)
        sd = [math.sqrt(p * (1 - p)) for p in ((n * float(v.mean()) + 0.5) / (n + 1) for v in (x, y))]
        v_test = (sd[0] + sd[1]) ** 2 / n
    v_seed = float(np.var(diff, ddof=1)) / S if S >= 2 else 0.0
    if v_seed + v_test <= 0:
        return (m, math.nan, math.nan) if S < 2 else (m, m, m)
    h = _half_width(v_seed, v_test, S, confidence)
    return m, m - h, m + h


def d90_interval(per_d: list[dict], d90: int | None, thr_lo: float, thr_hi: float, low: int) -> tuple:
    """The d90 interval ``(low end, high end or None)`` (see the module docstring)."""
    if d90 is None:
        return (None, None)
    below = [r["d"] for r in per_d if r["d"] < d90 and r["ci_high"] < thr_lo]
    above = [r["d"] for r in per_d if r["d"] >= d90 and r["ci_low"] >= thr_hi]
    return (max(below) + 1 if below else low, min(above) if above else None)


def check_baseline(mean: float, lo: float, hi: float, chance: float | None, threshold: float, rule: str, *,
                    given: bool, n_seeds: int = 0) -> None:
    """Refuse a baseline at chance, or one that cannot reach an absolute threshold (LowdimError)."""
    what = (f"the given baseline={mean:.4g}" + (f" (interval [{lo:.4g}, {hi:.4g}])" if lo == lo else "") if given else
            f"the measured full-training baseline (mean {mean:.4f}, interval [{lo:.4f}, {hi:.4f}] over "
            f"{n_seeds} seed{'s' if n_seeds != 1 else ''})")
    low_end = mean if lo != lo else lo
    if chance is not None and low_end <= chance:
        raise LowdimError(
            f"{what} does not beat the test set's majority-class rate {chance:.4f} by a clear margin"
            f"{'' if given else ' (its interval reaches it)'}: the model did not learn the task, and a d90 "
            "relative to it means nothing; train longer (epochs), change the baseline learning rates "
            "(baseline_lrs, CLI --lr) or check the data")
    high_end = mean if hi != hi else hi
    if rule == "absolute" and high_end < threshold:
        raise LowdimError(
            f"{what} stays below the absolute threshold={threshold:g}: full training does not reach it, so no "
            "subspace will; lower the threshold, use threshold_rule='relative', or improve the baseline")


def ci_text(ci: tuple, d90: int | None, d_max: int | None = None) -> str:
    """The d90 interval in words, e.g. ``[401, 566]`` or ``[401, not reached within the tested range]``."""
    if d90 is None:
        return f"d90 {NOT_REACHED}" + (f" (up to d = {d_max})" if d_max else "")
    lo, hi = ci
    return f"[{lo}, {hi if hi is not None else NOT_REACHED}]"


@dataclass(frozen=True)
class D90Result:
    """Outcome of :func:`~lowdim.subspace.find_d90`.

    Attributes
    ----------
    d90 : int or None
        Smallest tested d whose mean metric reaches the threshold (None: not reached by ``d_max``).
    ci : (int or None, int or None)
        Interval of d90 (module docstring); an upper end of None means "not reached within the
        tested range" (``ci_text`` says it in words; JSON has ``null``).
    baseline, baseline_ci : float, (float, float)
        Full-training metric (mean over seeds) and its interval (``interval_method``).
    threshold, threshold_rule, threshold_value : float, str, float
        The rule and the metric level a d must reach.
    per_d : list of dict
        ``{"d", "mean", "ci_low", "ci_high", "n", "passes"}`` for every tested d, ascending.
    runs : list of dict
        Every run record (baseline and subspace).
    n_params : int
        D, trainable parameters of the model.
    interval_method : str
        How ``baseline_ci`` and the per-d intervals were computed.
    n_test, chance : int or None, float or None
        Test examples behind each accuracy and the test set's majority-class rate (when the task
        knows them).
    threshold_ci : tuple
        ``(θ_lo, θ_hi)``, the ends of the threshold that decide "clearly fails" / "clearly passes"
        (the baseline interval's ends × threshold for the relative rule; θ, θ otherwise).
    config : dict
    """

    d90: int | None
    ci: tuple
    baseline: float
    baseline_ci: tuple
    threshold: float
    threshold_rule: str
    threshold_value: float
    per_d: list
    runs: list
    n_params: int
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    interval_method: str = ACCURACY_INTERVAL
    n_test: int | None = None
    chance: float | None = None
    threshold_ci: tuple = (math.nan, math.nan)

    @property
    def compression_ratio(self) -> float | None:
        """D / d90."""
        return self.n_params / self.d90 if self.d90 else None

    @property
    def ci_text(self) -> str:
        """The d90 interval in words."""
        return ci_text(self.ci, self.d90, self.config.get("d_max"))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci"] = list(self.ci)
        out["baseline_ci"] = list(self.baseline_ci)
        out["compression_ratio"] = self.compression_ratio
        out["ci_text"] = self.ci_text
        return out

    def to_json(self) -> dict:
        """The ``lowdim d90 --json`` document (NaN bounds are ``null``)."""
        nan = lambda v: None if isinstance(v, float) and v != v else v  # noqa: E731
        per_d = [{k: nan(v) for k, v in p.items()} for p in self.per_d]
        return {"d90": self.d90, "ci": list(self.ci), "ci_text": self.ci_text,
                "ci_upper_reached": self.d90 is not None and self.ci[1] is not None,
                "baseline": self.baseline, "baseline_ci": [nan(x) for x in self.baseline_ci],
                "interval_method": self.interval_method, "n_test": self.n_test, "chance": self.chance,
                "threshold": self.threshold, "threshold_rule": self.threshold_rule,
                "threshold_value": self.threshold_value, "threshold_ci": [nan(x) for x in self.threshold_ci],
                "n_params": self.n_params,
                "compression_ratio": self.compression_ratio, "per_d": per_d, "runs": self.runs,
                "config": self.config, "seconds": self.seconds}
