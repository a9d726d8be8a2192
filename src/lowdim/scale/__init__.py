"""Scale-out on Dask: distributed k-NN / intrinsic dimension, and a sweep runner for d90.

Everything here needs the ``dask`` extra (``pip install "lowdim[dask]"``); dask is imported only
inside the functions that use it, so ``import lowdim.scale`` stays cheap.

- :func:`connect` — a ``dask.distributed.Client`` (a local cluster or a scheduler address).
- :func:`open_sharded` — a dask array from a dask array, a zarr array or a folder of ``.npy`` shards.
- :func:`dask_kneighbors` — exact k-NN of (a subsample of) the points against the sharded
  reference set, identical to :func:`lowdim.kneighbors` on the same data.
- :func:`estimate_distributed` / :func:`local_id_distributed` — ``lowdim.estimate`` and
  ``lowdim.local_id`` on sharded data.
- :class:`DaskRunner` — independent runs as Dask futures, yielded as they finish, with a run
  resubmitted when its worker dies.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DaskRunner",
    "connect",
    "dask_kneighbors",
    "estimate_distributed",
    "is_distributed_input",
    "local_id_distributed",
    "open_sharded",
]

_LAZY = {
    "DaskRunner": "lowdim.scale.dask_runner",
    "connect": "lowdim.scale.client",
    "dask_kneighbors": "lowdim.scale.dask_knn",
    "estimate_distributed": "lowdim.scale.estimate",
    "local_id_distributed": "lowdim.scale.estimate",
    "is_distributed_input": "lowdim.scale.shards",
    "open_sharded": "lowdim.scale.shards",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
