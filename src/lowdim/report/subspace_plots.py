"""Plots of a d90 search: metric vs subspace dimension d, with the baseline and the threshold."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lowdim.report.plots import new_figure, save_figure

__all__ = ["plot_d90"]


def plot_d90(result: Any, path: str | os.PathLike, *, title: str = "") -> Path:
    """Mean metric (± CI) per tested d on a log axis, every run as a dot, baseline, threshold, d90.

    Parameters
    ----------
    result : lowdim.subspace.search.D90Result
    path : path-like
        ``.png``, ``.svg`` or ``.pdf``; written atomically.
    """
    fig, ax = new_figure(width=6.0, height=4.0)
    subs = [r for r in result.runs if r["kind"] == "subspace"]
    ax.scatter([r["d"] for r in subs], [r["metric"] for r in subs], s=12, color="tab:blue", alpha=0.35,
               label="runs (one per seed)")
    ds = [p["d"] for p in result.per_d]
    means = [p["mean"] for p in result.per_d]
    lo = [p["mean"] - p["ci_low"] if not math.isnan(p["ci_low"]) else 0.0 for p in result.per_d]
    hi = [p["ci_high"] - p["mean"] if not math.isnan(p["ci_high"]) else 0.0 for p in result.per_d]
    ax.errorbar(ds, means, yerr=[lo, hi], fmt="o-", color="tab:blue", capsize=3, label="mean ± CI")
    ax.axhline(result.baseline, color="k", lw=1, label=f"baseline {result.baseline:.3f}")
    rule = (f"{result.threshold:g} × baseline" if result.threshold_rule == "relative"
            else f"absolute {result.threshold:g}")
    ax.axhline(result.threshold_value, color="tab:red", ls="--", lw=1,
               label=f"threshold {result.threshold_value:.3f} ({rule})")
    t_lo, t_hi = getattr(result, "threshold_ci", (math.nan, math.nan))
    if t_lo == t_lo and t_hi == t_hi and t_hi > t_lo:  # the baseline interval's reach
        ax.axhspan(t_lo, t_hi, color="tab:red", alpha=0.08, label=f"threshold ends [{t_lo:.3f}, {t_hi:.3f}]")
    if result.d90 is not None:
        ax.axvline(result.d90, color="tab:green", ls=":", lw=1.5, label=f"d90 = {result.d90}")
        lo_ci, hi_ci = result.ci
        if lo_ci is not None:
            ax.axvspan(lo_ci, hi_ci if hi_ci is not None else max(ds), color="tab:green", alpha=0.1,
                       label=f"d90 interval [{lo_ci}, {hi_ci if hi_ci is not None else '>' + str(max(ds))}]")
    ax.set_xscale("log")
    ax.set_ylim(max(-0.02, min([*means, result.threshold_value]) - 0.1), max(1.02, result.baseline + 0.02))
    ax.set_xlabel("subspace dimension d (log scale)")
    metric = result.config.get("metric", "metric")
    ax.set_ylabel(f"{metric} (fraction)" if "accuracy" in str(metric) else str(metric))
    ax.legend(fontsize=7, loc="lower right")
    cfg = result.config
    ax.set_title(title or f"{cfg.get('task', '')}: {cfg.get('projection', '')}"
                 f"{' SAID' if cfg.get('said') else ''}, D = {result.n_params:,}", fontsize=9)
    return save_figure(fig, path)
