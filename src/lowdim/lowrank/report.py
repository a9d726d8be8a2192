"""Tables and fronts for low-rank runs: measured signal vs allocated vs learned rank, and the
quality-vs-trainable-parameters Pareto front (the compression module's :func:`pareto_front`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["param_front", "rank_table"]


@dataclass
class _Point:
    bytes_per_vector: float  # the front's cost axis: here trainable parameters
    value: float
    index: int
    rescored: bool = False

    @property
    def memory_bytes(self) -> float:  # the name the front sorts by in newer versions of frontier.py
        return self.bytes_per_vector


def param_front(points: Sequence[Mapping[str, Any]], *, metric: str = "accuracy") -> list[Mapping[str, Any]]:
    """Runs not dominated in (fewer trainable parameters, higher ``metric``), parameters ascending.

    Examples
    --------
    >>> runs = [{"label": "lora r=8", "params": 9000, "accuracy": 0.95},
    ...         {"label": "svfit", "params": 300, "accuracy": 0.94},
    ...         {"label": "lora r=2", "params": 2300, "accuracy": 0.93}]
    >>> [p["label"] for p in param_front(runs)]
    ['svfit', 'lora r=8']
    """
    from lowdim.compress.frontier import pareto_front

    pts = [_Point(float(p["params"]), float(p[metric]), i) for i, p in enumerate(points)
           if p.get(metric) is not None]
    return [points[q.index] for q in pareto_front(pts, key="value")]


def rank_table(plan: Any, learned: Mapping[str, Mapping[str, float]] | None = None
               ) -> tuple[list[str], list[list[str]]]:
    """Columns and rows: module, shape, measured signal, allocated rank, and each learned rank.

    ``learned`` maps a label (``"SoRA"``, ``"AdaLoRA"``, ``"Maestro"``) to ``{module: rank}``.
    """
    learned = dict(learned or {})
    cols = ["module", "shape", f"signal ({plan.signal})", f"allocated ({plan.rule})", *learned]
    rows = []
    for n, r in plan.ranks.items():
        m, k = plan.shapes[n]
        s = plan.scores.get(n)
        rows.append([n, f"{m}×{k}", "-" if s is None else f"{s:.3g}", str(r),
                     *[("-" if n not in v else f"{v[n]:g}") for v in learned.values()]])
    return cols, rows
