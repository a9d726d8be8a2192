"""lowdim: how many dimensions does this really need?

Intrinsic dimension of point clouds, neural representations and training tasks, and embedding
compression that uses it. Heavy dependencies (torch, faiss, transformers) load only when used.

Examples
--------
>>> import numpy as np, lowdim
>>> X = np.random.default_rng(0).normal(size=(1000, 4)) @ np.ones((4, 30))
>>> lowdim.estimate(X, method="twonn").dimension < 2
True
"""

from __future__ import annotations

import importlib
from typing import Any

from lowdim.errors import LowdimError

__version__ = "0.1.0"

# name -> module that defines it; imported on first use so `import lowdim` stays fast
_LAZY = {
    "estimate": "lowdim.api",
    "local_id": "lowdim.api",
    "kneighbors": "lowdim.neighbors",
    "Neighbors": "lowdim.neighbors",
    "IDResult": "lowdim.result",
    "load_points": "lowdim.io",
    "layer_report": "lowdim.representations.layers",
    "SubspaceModel": "lowdim.subspace",
    "find_d90": "lowdim.subspace",
    "recommend": "lowdim.compress",
    "Codec": "lowdim.compress",
}

__all__ = ["LowdimError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
