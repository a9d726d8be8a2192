"""``lowdim.estimate`` / ``lowdim.local_id`` on sharded data with a Dask client."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.estimators.registry import AUTO, REGISTRY, get_estimator
from lowdim.neighbors import Neighbors
from lowdim.result import IDResult
from lowdim.validation import check_choice

__all__ = ["estimate_distributed", "local_id_distributed"]


def _build(method: str, params: dict) -> tuple[str, Any]:
    name = AUTO if str(method).lower() == "auto" else method
    cls = get_estimator(name)
    if not cls.uses_neighbors:
        knn = sorted(n for n, c in REGISTRY.items() if c.uses_neighbors)
        raise LowdimError(
            f"method {name!r} needs every point in one process, so it has no distributed mode; "
            f"use a k-NN method ({', '.join(knn)}) or estimate on a sample loaded with np.load"
        )
    try:
        return name, cls(**params)
    except TypeError as exc:
        raise LowdimError(f"bad parameter for method {name!r}: {exc}") from None


def estimate_distributed(X: Any, *, client: Any = None, method: str = "auto", local: bool = False,
                         queries: int | None = None, shard_rows: int | None = None,
                         device: str | None = None, **params: Any) -> IDResult:
    """Intrinsic dimension of a sharded point set; the k-NN runs on a Dask cluster.

    ``lowdim.estimate(X, client=client, ...)`` lands here when ``client`` is given or ``X`` is a
    dask array, a zarr array, a ``.zarr`` path or a folder of ``.npy`` shards.

    Parameters
    ----------
    X : dask array, zarr array, path, or array-like
        See :func:`lowdim.scale.open_sharded`.
    client : distributed.Client, optional
        Default: the current default client.
    method : str, default="auto"
        A k-NN estimator from the registry.
    local : bool, default=False
        Also compute per-point local ID (needs every point as a query).
    queries : int, optional
        Estimate a global ID from this many random query points (seeded by ``random_state``)
        against the whole reference set: the cost falls in proportion, the estimate stays
        unbiased. Default: every point, which gives exactly the single-process result.
    shard_rows : int, optional
        Rows per shard for an in-memory array.
    device : str, optional
        ``"cuda"`` to search each shard on the worker's GPU (see :func:`lowdim.scale.dask_kneighbors`).
    **params
        Estimator parameters, as in :func:`lowdim.estimate`.

    Returns
    -------
    IDResult
        Equal to ``lowdim.estimate`` on the same data when ``queries`` is None.
    """
    from lowdim.scale.dask_knn import dask_kneighbors

    if local:
        params["local"] = True
        if queries is not None:
            raise LowdimError(f"local=True needs every point as a query; drop queries={queries}")
    if isinstance(X, Neighbors):
        raise LowdimError("X is already a Neighbors graph; call lowdim.estimate(X) without client=")
    name, est = _build(method, params)
    k = est.n_neighbors_needed()
    nb = dask_kneighbors(X, k, client=client, queries=queries, duplicates=est.duplicates,
                         random_state=est.random_state, shard_rows=shard_rows, device=device)
    res = est.fit(nb).result()
    note = (f"distributed exact k-NN: {nb.info['shards']} shards on {nb.info['workers']} Dask workers "
            f"({nb.n_queries} of {nb.n_points} points queried)")
    notes = (*res.notes, note)
    return replace(res, notes=notes, seconds=res.seconds)


def local_id_distributed(X: Any, *, client: Any = None, method: str = "twonn", n_neighbors: int = 20,
                         shard_rows: int | None = None, **params: Any) -> np.ndarray:
    """Per-point local ID of a sharded point set (k-NN on a Dask cluster); see :func:`lowdim.local_id`."""
    from lowdim.scale.dask_knn import dask_kneighbors

    check_choice("method", method, ("twonn", "mle"))
    cls = get_estimator(method)
    est = cls(n_neighbors=n_neighbors, local=True, **params)
    if hasattr(est, "decimation"):
        est.decimation = False
    nb = dask_kneighbors(X, est.n_neighbors_needed(), client=client, duplicates=est.duplicates,
                         random_state=est.random_state, shard_rows=shard_rows)
    return est.fit(nb).local_dimensions_
