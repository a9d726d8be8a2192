"""Figures for low-rank training: per-module ranks, measured signal vs allocated vs learned rank,
and the quality-vs-trainable-parameters front. Plotting never recomputes: it reads result objects."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.report.plots import new_figure, save_figure

__all__ = ["plot_front", "plot_plan", "plot_profile"]


def _short(names: Sequence[str]) -> list[str]:
    return [n if len(n) <= 28 else "…" + n[-27:] for n in names]


def plot_profile(prof: Any, path: str | os.PathLike | None = None, *, title: str = "") -> Any:
    """Effective, stable, energy-90 % and MP ranks of each module's weight, and its inputs' ID."""
    mods = prof.modules
    if not mods:
        raise LowdimError("the profile has no modules to plot")
    x = np.arange(len(mods))
    fig, ax = new_figure(width=max(6.0, 0.35 * len(mods) + 3))
    for key, style, label in (("effective_rank", "o-", "effective rank"), ("stable_rank", "^:", "stable rank"),
                              ("energy_rank_90", "s--", "energy rank 90 %"), ("mp_rank", "d-", "above MP edge")):
        ax.plot(x, [ms.weight.get(key, np.nan) for ms in mods], style, label=f"W: {label}")
    if any(ms.inputs and ms.inputs.get("id") is not None for ms in mods):
        has = [bool(ms.inputs and ms.inputs.get("id") is not None) for ms in mods]
        d = np.array([ms.inputs["id"] if h else np.nan for ms, h in zip(mods, has)])
        lo = np.array([ms.inputs["ci"][0] if h else np.nan for ms, h in zip(mods, has)])
        hi = np.array([ms.inputs["ci"][1] if h else np.nan for ms, h in zip(mods, has)])
        ax.errorbar(x, d, yerr=[d - lo, hi - d], fmt="x", capsize=3, label="input ID (with interval)")
    if any(ms.update for ms in mods):
        ax.plot(x, [ms.update["mp_rank"] if ms.update else np.nan for ms in mods], "v", label="ΔW: above MP edge")
    ax.set_xticks(x, _short([ms.name for ms in mods]), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("rank / dimension")
    ax.set_yscale("symlog", linthresh=10)
    ax.legend(fontsize=7)
    ax.set_title(title or f"spectral profile of {prof.model}")
    return save_figure(fig, path) if path is not None else fig


def plot_plan(plan: Any, path: str | os.PathLike | None = None, *,
              learned: Mapping[str, Mapping[str, float]] | None = None, title: str = "") -> Any:
    """Measured signal (right axis) against allocated rank and learned ranks per module.

    ``learned`` maps a label (``"SoRA survivors"``, ``"AdaLoRA"``, ``"Maestro"``) to
    ``{module: rank}``.
    """
    names = list(plan.ranks)
    if not names:
        raise LowdimError("the plan has no modules to plot")
    x = np.arange(len(names))
    fig, ax = new_figure(width=max(6.0, 0.35 * len(names) + 3))
    ax.bar(x, [plan.ranks[n] for n in names], color="0.8", label=f"allocated ({plan.rule}, {plan.signal})")
    for (label, ranks), mk in zip((learned or {}).items(), "os^dv"):
        ax.plot(x, [ranks.get(n, np.nan) for n in names], mk, label=label)
    ax.set_ylabel("rank")
    ax.set_xticks(x, _short(names), rotation=60, ha="right", fontsize=7)
    if plan.scores:
        ax2 = ax.twinx()
        ax2.plot(x, [plan.scores.get(n, np.nan) for n in names], "k.:", label="measured signal")
        ax2.set_ylabel(f"signal: {plan.signal}")
        ax2.legend(fontsize=7, loc="upper right")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or f"rank plan: {plan.n_params:,} trainable parameters")
    return save_figure(fig, path) if path is not None else fig


def plot_front(points: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None, *,
               metric: str = "accuracy", title: str = "") -> Any:
    """Quality against trainable parameters, one marker per run, the Pareto front as a line.

    Each point is ``{"label", "params", metric, optionally metric + "_ci": [lo, hi]}``.
    """
    if not points:
        raise LowdimError("no runs to plot")
    from lowdim.lowrank.report import param_front

    fig, ax = new_figure()
    for p in points:
        ci = p.get(f"{metric}_ci")
        yerr = None if ci is None else [[p[metric] - ci[0]], [ci[1] - p[metric]]]
        ax.errorbar([p["params"]], [p[metric]], yerr=yerr, fmt="o", capsize=3, label=p["label"])
    front = param_front(points, metric=metric)
    ax.plot([p["params"] for p in front], [p[metric] for p in front], "k--", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title(title or f"{metric} vs trainable parameters")
    return save_figure(fig, path) if path is not None else fig
