"""Result objects: small frozen dataclasses that serialise to JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["IDResult", "ScaleCurve"]


@dataclass(frozen=True)
class ScaleCurve:
    """Dimension as a function of scale.

    Attributes
    ----------
    scale : ndarray
        The scale variable (``label`` says which: neighbour rank, number of points, radius, …).
    dimension, ci_low, ci_high : ndarray
        Estimate and confidence band at each scale.
    label : str
        What ``scale`` measures, used as the plot's x-axis label.
    """

    scale: np.ndarray
    dimension: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    label: str = "scale"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "scale": _list(self.scale),
            "dimension": _list(self.dimension),
            "ci_low": _list(self.ci_low),
            "ci_high": _list(self.ci_high),
        }


@dataclass(frozen=True)
class IDResult:
    """An intrinsic-dimension estimate with its uncertainty.

    Attributes
    ----------
    dimension : float
        The global estimate.
    ci : tuple of float
        Confidence interval (95 % unless ``params["confidence"]`` says otherwise).
    method : str
        Registry name of the estimator that produced it (for ``method="auto"``, the one chosen).
    n_samples : int
        Points used after duplicate removal.
    n_duplicates_dropped : int
        Exact or near-duplicate rows removed before estimation.
    params : dict
        Resolved parameters.
    scale_curve : ScaleCurve or None
        Estimate as a function of scale, where the method defines one.
    local : ndarray or None
        Per-point (local) dimensions, one per input row, when asked for.
    seconds : float
        Wall time, neighbour search included.
    neighbors : str or None
        k-NN backend used (``"exact-numpy"``, ``"faiss-hnsw"``, …), None for methods without k-NN.
    notes : tuple of str
        Anything the user should know (approximate neighbours, method choice, an estimate above the
        number of features, estimators that disagree beyond their intervals, …).
    interval_method : str
        How ``ci`` was computed (e.g. ``"chi2 of the censored TwoNN likelihood"``, ``"bootstrap BCa,
        1000 resamples of the points"``, ``"Fisher information (normal)"``).
    raw : dict
        The raw quantities the estimate was derived from (for ``ctwonn``: ``"twonn"``, the plain
        TwoNN value, and its interval; for bootstrap intervals: ``"bootstrap_bias"``; …).
    choice : dict or None
        For ``method="auto"``: ``{"requested": "auto", "chosen": …, "rule": …, "reason": …}``.
    calibration : dict or None
        For a calibrated estimate: the table's ``version``, the sample size ``n_read`` whose curve
        was read, the curve's relative sampling error there (``cell_error``), folded into ``ci``.
    scale : dict or None
        A selected scale, where the method chose one: neighbour orders ``n1``, ``n2``, the
        ``distance`` it corresponds to, and the ``rule``.
    """

    dimension: float
    ci: tuple[float, float]
    method: str
    n_samples: int
    n_duplicates_dropped: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    scale_curve: ScaleCurve | None = None
    local: np.ndarray | None = None
    seconds: float = 0.0
    neighbors: str | None = None
    notes: tuple[str, ...] = ()
    interval_method: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    choice: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    scale: dict[str, Any] | None = None

    def to_dict(self, *, include_local: bool = False) -> dict[str, Any]:
        """Plain-Python dictionary; the per-point array is summarised unless ``include_local``."""
        d = asdict(self)
        d["ci"] = [float(self.ci[0]), float(self.ci[1])]
        d["dimension"] = float(self.dimension)
        d["scale_curve"] = self.scale_curve.to_dict() if self.scale_curve is not None else None
        d["notes"] = list(self.notes)
        d["params"] = _jsonable(self.params)
        for key in ("raw", "choice", "calibration", "scale"):
            d[key] = _jsonable(getattr(self, key))
        if self.local is None:
            d["local"] = None
        elif include_local:
            d["local"] = _list(self.local)
        else:
            loc = np.asarray(self.local, dtype=float)
            d["local"] = {
                "n": int(loc.size),
                "mean": float(np.mean(loc)),
                "median": float(np.median(loc)),
                "q05": float(np.quantile(loc, 0.05)),
                "q95": float(np.quantile(loc, 0.95)),
            }
        return d

    def to_json(self, *, include_local: bool = False, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (what ``lowdim id --json`` prints)."""
        return json.dumps(self.to_dict(include_local=include_local), indent=indent)

    def __str__(self) -> str:
        lo, hi = self.ci
        return f"{self.method}: {self.dimension:.2f} [{lo:.2f}, {hi:.2f}] (n={self.n_samples})"


def _list(a: Any) -> list:
    return [float(x) for x in np.asarray(a, dtype=float).ravel()]


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, float) and not np.isfinite(o):
        return None
    if isinstance(o, np.generic):
        return _jsonable(o.item())
    if isinstance(o, np.ndarray):
        return o.tolist()
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    return str(o)
