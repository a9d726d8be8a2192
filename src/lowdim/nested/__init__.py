"""Nested (Matryoshka-style) representations: sub-models and sub-caches that work at every size.

- :mod:`lowdim.nested.starbucks` — Starbucks 2-D Matryoshka fine-tuning over fixed (layer, dim)
  pairs (Zhuang et al. 2024), on sentence-transformers' own layer/width machinery.
- :mod:`lowdim.nested.matryoshka_kv` — MatryoshkaKV: nested orthogonal projections of the
  attention keys and values, PCA-initialised and distilled (Lin et al., ICLR 2025).

Needs the ``torch`` and ``embed`` extras; imported lazily by ``lowdim``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["KVProjector", "StarbucksLoss", "fine_tune_starbucks", "greedy_ranks"]

_LAZY = {
    "StarbucksLoss": ("lowdim.nested.starbucks", "StarbucksLoss"),
    "fine_tune_starbucks": ("lowdim.nested.starbucks", "fine_tune"),
    "KVProjector": ("lowdim.nested.matryoshka_kv", "KVProjector"),
    "greedy_ranks": ("lowdim.nested.matryoshka_kv", "greedy_ranks"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim.nested' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
