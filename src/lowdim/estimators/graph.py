"""Extra searches an estimator makes beside a shared neighbour graph, with that graph's settings.

An estimator given a :class:`~lowdim.Neighbors` never searches again with settings of its own:
where a method needs more searches (TwoNN / ctwonn decimation, ctwonn's 20,000-point subsets),
they run through :func:`lowdim.kneighbors` with the backend, device and thread count that built the
graph (read from ``Neighbors.info`` / attributes where the engine records them, else from the
backend name), on the graph's own deduplicated points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdim.neighbors import Neighbors, kneighbors

__all__ = ["search_settings", "subset_neighbors"]


def search_settings(nb: Neighbors) -> dict[str, Any]:
    """``backend``, ``device`` and ``n_jobs`` for :func:`lowdim.kneighbors`, as the graph was built."""
    info = getattr(nb, "info", None) or {}
    name = str(nb.backend)
    if name.startswith("faiss"):
        backend = "faiss"
    elif "torch" in name:
        backend = "torch"
    else:
        backend = "exact"
    device = getattr(nb, "device", None) or info.get("device")
    if device is None and "torch" in name:
        device = "cuda" if name.endswith("cuda") else "cpu"
    n_jobs = getattr(nb, "n_jobs", None) or info.get("n_jobs")
    return {"backend": backend, "device": device, "n_jobs": n_jobs}  # what ran, not what was asked


def subset_neighbors(points: Any, rows: np.ndarray, k: int, settings: dict[str, Any]) -> Neighbors:
    """k-NN graph of ``points[rows]`` among themselves, searched with ``settings``.

    ``points`` are already deduplicated (the graph's points, or rows deduplicated by the caller), so
    duplicates are kept as they are.
    """
    sub = points[np.sort(np.asarray(rows))]
    return kneighbors(sub, k, duplicates="keep", **settings)
