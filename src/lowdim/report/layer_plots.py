"""Figures for per-layer measurements: ID vs layer, and measurements vs training step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.report.plots import new_figure, save_figure

__all__ = ["plot_layer_profile", "plot_over_training"]


def plot_layer_profile(reports: Sequence[Any], path: str | os.PathLike, *, title: str = "") -> Path:
    """Global ID (with its interval), mean local ID and participation ratio against the layer."""
    if not reports:
        raise LowdimError("no layer reports to plot")
    names = [r.name for r in reports]
    x = np.arange(len(reports))
    dim = np.array([r.dimension for r in reports])
    lo = np.array([r.ci[0] for r in reports])
    hi = np.array([r.ci[1] for r in reports])
    fig, ax = new_figure(width=max(5.0, 0.6 * len(reports) + 2))
    ax.errorbar(x, dim, yerr=[dim - lo, hi - dim], fmt="o-", capsize=3, label=f"global ID ({reports[0].method})")
    ax.plot(x, [r.local_mean for r in reports], "s--", label=f"mean local ID ({reports[0].local_method}, "
            f"k={reports[0].n_neighbors})")
    ax.plot(x, [r.participation_ratio for r in reports], "^:", label="participation ratio")
    ax.set_xticks(x, names, rotation=45 if max(len(n) for n in names) > 6 else 0, ha="right")
    ax.set_xlabel("layer")
    ax.set_ylabel("dimension (number of coordinates)")
    ax.legend(fontsize=8)
    ax.set_title(title or "intrinsic dimension across layers")
    return save_figure(fig, path)


def plot_over_training(history: Sequence[Any], path: str | os.PathLike, *, layers: Sequence[str] | None = None,
                       title: str = "", extra: dict[str, Sequence[tuple[int, float]]] | None = None) -> Path:
    """Mean local ID vs step and DSE vs step, one line per layer.

    Parameters
    ----------
    history : list of LayerReport with ``step`` set (e.g. ``RepresentationCallback.history``)
    layers : list of str, optional
        Layers to draw (default all).
    extra : dict name -> [(step, value), …], optional
        More curves for a third panel (test accuracy, loss, …).
    """
    rows = [r for r in history if r.step is not None]
    if not rows:
        raise LowdimError("no recordings with a step to plot; record with RepresentationCallback")
    names = list(dict.fromkeys(r.name for r in rows)) if layers is None else list(layers)
    has_dse = any(r.dse is not None for r in rows)
    panels = 1 + int(has_dse) + int(bool(extra))
    fig, axes = new_figure(panels)
    axes = list(np.atleast_1d(axes))
    if not has_dse:  # keep the panel order: local ID, [DSE], [extra]
        axes.insert(1, None)
    for name in names:
        rs = sorted((r for r in rows if r.name == name), key=lambda r: r.step)
        steps = [r.step for r in rs]
        label = f"layer {name}" if not name.startswith("layer") else name
        axes[0].plot(steps, [r.local_mean for r in rs], "o-", ms=3, label=label)
        if has_dse:
            axes[1].plot(steps, [np.nan if r.dse is None else r.dse for r in rs], "o-", ms=3, label=label)
    axes[0].set_ylabel("mean local ID (dimensions)")
    if has_dse:
        axes[1].set_ylabel("DSE (bits)")
    for ax in axes[:2]:
        if ax is not None:
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
    if extra:
        for label, pts in extra.items():
            s, v = zip(*pts) if pts else ((), ())
            axes[2].plot(s, v, "-", label=label)
        axes[2].set_xlabel("step")
        axes[2].legend(fontsize=7)
    fig.suptitle(title or "representations over training")
    return save_figure(fig, path)
