"""Matplotlib figures for ID results; every file is written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.io import atomic_path
from lowdim.result import IDResult

__all__ = ["new_figure", "plot_id_result", "save_figure"]

_FORMATS = (".png", ".svg", ".pdf")


def new_figure(ncols: int = 1, *, width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    """A figure with the non-interactive Agg backend (safe on headless machines)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0] if ncols > 1 else axes[0][0]


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save as PNG/SVG/PDF by suffix, atomically, and close the figure."""
    import matplotlib.pyplot as plt

    p = Path(path)
    if p.suffix.lower() not in _FORMATS:
        plt.close(fig)
        raise LowdimError(f"plot file {str(p)!r} must end in one of {', '.join(_FORMATS)}")
    fig.tight_layout()
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=p.suffix[1:].lower(), dpi=120, bbox_inches="tight")  # nothing clipped
    plt.close(fig)
    return p


def plot_id_result(res: IDResult, path: str | os.PathLike, *, title: str = "") -> Path:
    """Scale curve (with its confidence band) and, when present, the local-ID histogram."""
    panels = int(res.scale_curve is not None) + int(res.local is not None)
    fig, axes = new_figure(max(panels, 1))
    axes = list(np.atleast_1d(axes))
    i = 0
    if res.scale_curve is not None:
        ax, c = axes[i], res.scale_curve
        ax.plot(c.scale, c.dimension, "o-", label=res.method)
        ax.fill_between(c.scale, c.ci_low, c.ci_high, alpha=0.25, label="95% confidence band")
        ax.axhline(res.dimension, color="k", ls="--", lw=1, label=f"global {res.dimension:.2f}")
        ax.set_xscale("log")
        ax.set_xlabel(f"{c.label} (log scale)")
        ax.set_ylabel("intrinsic dimension")
        ax.legend()
        i += 1
    if res.local is not None:
        ax = axes[i]
        ax.hist(res.local, bins=50, color="tab:orange", alpha=0.8)
        ax.axvline(res.dimension, color="k", ls="--", lw=1, label=f"global {res.dimension:.2f}")
        ax.set_xlabel("local intrinsic dimension")
        ax.set_ylabel("number of points")
        ax.legend()
        i += 1
    if panels == 0:
        ax = axes[0]
        lo, hi = res.ci
        ax.errorbar([0], [res.dimension], yerr=[[res.dimension - lo], [hi - res.dimension]], fmt="o")
        ax.set_xticks([0], [res.method])
        ax.set_ylabel("intrinsic dimension")
    fig.suptitle(title or f"{res.method}: {res.dimension:.2f} [{res.ci[0]:.2f}, {res.ci[1]:.2f}]")
    return save_figure(fig, path)
