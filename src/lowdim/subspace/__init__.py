"""Intrinsic dimension of a training task: subspace training and the d90 search.

- :class:`SubspaceModel` — train any ``nn.Module`` in θ = θ₀ + P z (Li et al. 2018), with
  dense, sparse or Fastfood projections and SAID (Aghajanyan et al. 2021).
- :func:`find_d90` — baseline, log-grid sweep, bisection, several seeds, resumable results file.
- :func:`save_subspace` / :func:`load_subspace` — a trained model as ``z`` + seed (safetensors).
- :data:`TASKS` / :func:`get_task` — offline built-in tasks (digits, mnist1d, MNIST IDX, MiniLM).

Needs the ``torch`` extra (``pip install "lowdim[torch]"``); imported lazily by ``lowdim``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TASKS",
    "D90Result",
    "SerialRunner",
    "SubspaceModel",
    "Task",
    "find_d90",
    "get_task",
    "load_subspace",
    "make_projection",
    "run_one",
    "save_subspace",
]

_LAZY = {
    "SubspaceModel": "lowdim.subspace.model",
    "make_projection": "lowdim.subspace.projections",
    "find_d90": "lowdim.subspace.search",
    "run_one": "lowdim.subspace.search",
    "D90Result": "lowdim.subspace.search",
    "SerialRunner": "lowdim.subspace.runner",
    "save_subspace": "lowdim.subspace.export",
    "load_subspace": "lowdim.subspace.export",
    "TASKS": "lowdim.subspace.tasks",
    "Task": "lowdim.subspace.tasks",
    "get_task": "lowdim.subspace.tasks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim.subspace' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
