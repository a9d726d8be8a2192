"""Plot of the storage-vs-quality front: bytes per vector (log scale) against recall@k (and nDCG@10)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.report.plots import new_figure, save_figure

__all__ = ["plot_frontier"]


def plot_frontier(fr: Any, path: str | os.PathLike, *, chosen: Any = None, title: str = "") -> Path:
    """Every evaluated codec, the Pareto front, the chosen codec, and the data's intrinsic dimension.

    Parameters
    ----------
    fr : lowdim.compress.Frontier
    path : str or path-like
        ``.png``, ``.svg`` or ``.pdf``; written atomically.
    chosen : CodecReport, optional
        Highlighted point (e.g. ``recommend(...).report``).
    title : str
    """
    has_ndcg = fr.float32_ndcg is not None
    fig, axes = new_figure(2 if has_ndcg else 1, width=5.6, height=4.0)
    axes = list(np.atleast_1d(axes))
    k = fr.reports[0].k if fr.reports else 10
    panels = [("recall", f"recall@{k} of the float32 top-{k}", 1.0)]
    if has_ndcg:
        panels.append(("ndcg_at_10", "nDCG@10", fr.float32_ndcg))
    for ax, (key, label, ref) in zip(axes, panels):
        rows = [r for r in fr.reports if getattr(r, key) is not None]
        x = [r.bytes_per_vector for r in rows]
        y = [getattr(r, key) for r in rows]
        ax.scatter(x, y, s=18, color="0.6", label="evaluated codecs", zorder=2)
        front = sorted((r for r in rows if not r.rescored), key=lambda r: r.bytes_per_vector)
        best, fx, fy = -np.inf, [], []
        for r in front:
            if getattr(r, key) > best:
                best = getattr(r, key)
                fx.append(r.bytes_per_vector)
                fy.append(best)
        ax.step(fx, fy, where="post", color="tab:blue", lw=1.5, label="Pareto front", zorder=3)
        ax.axhline(ref, color="k", ls=":", lw=1, label="float32" + (f" ({ref:.4f})" if key != "recall" else ""))
        if chosen is not None and getattr(chosen, key) is not None:
            ax.scatter([chosen.bytes_per_vector], [getattr(chosen, key)], s=110, marker="*",
                       color="tab:red", zorder=4, label=f"chosen: {chosen.name}")
        for r in fr.front if key == "recall" else []:
            ax.annotate(r.name, (r.bytes_per_vector, r.recall), fontsize=6, xytext=(3, -8),
                        textcoords="offset points")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_bytes_formatter())
        ax.set_xlabel("bytes per vector (log scale)")
        ax.set_ylabel(label + " (fraction)" if key == "recall" else label)
        ax.grid(alpha=0.3)
        # below the axes, so it never hides points or their labels
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    lo, hi = fr.dimension_ci
    axes[0].text(0.02, 0.97, f"intrinsic dimension {fr.dimension:.1f} [{lo:.1f}, {hi:.1f}] (TwoNN)\n"
                             f"{fr.n_corpus} × {fr.dim} float32 = {4 * fr.dim} B/vector"
                             + ("\nlabel-free: held-out corpus rows as queries" if fr.label_free else ""),
                 transform=axes[0].transAxes, va="top", fontsize=7,
                 bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    fig.suptitle(title or "storage vs retrieval quality")
    return save_figure(fig, path)


def _bytes_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:g}")
