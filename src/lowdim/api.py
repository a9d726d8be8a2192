"""``lowdim.estimate`` and ``lowdim.local_id``: the one-call entry points for point clouds."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.estimators.registry import get_estimator
from lowdim.neighbors import Neighbors
from lowdim.result import IDResult
from lowdim.validation import check_choice

__all__ = ["estimate", "local_id"]

#: Neighbourhood size of the local ID when the global method has no per-point variant.
LOCAL_NEIGHBORS = 20


def estimate(X: Any, method: str = "auto", *, local: bool = False, client: Any = None,
             **params: Any) -> IDResult:
    """Estimate the intrinsic dimension of a point cloud.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), torch tensor, or Neighbors
        The points (a CUDA tensor searches neighbours on the GPU), or a neighbour graph from
        :func:`lowdim.kneighbors` to reuse across methods.
    method : str, default="auto"
        A name from :func:`lowdim.estimators.available`. ``"auto"`` is a rule
        (:class:`~lowdim.estimators.auto.AutoID`, chosen on ``benchmarks/id_out_of_family.py``):
        GRIDE at the scale its plateau rule selects when the GRIDE curve shows noise at small
        scales, else the calibrated TwoNN. ``result.method`` names the estimator actually used,
        ``result.choice`` says why, ``result.raw`` keeps every candidate's value.
    local : bool, default=False
        Also compute the per-point local ID (TwoNN or MLE over k-neighbourhoods) into
        ``result.local``. The global estimate is unchanged.
    client : distributed.Client, optional
        Run the k-NN on a Dask cluster (see :func:`lowdim.scale.estimate_distributed`); also used
        when X is a dask array, a zarr array, a ``.zarr`` path or a folder of ``.npy`` shards.
    **params
        Keyword arguments of the estimator class (e.g. ``n_neighbors=``, ``discard_fraction=``).

    Returns
    -------
    IDResult

    Examples
    --------
    >>> import numpy as np, lowdim
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 5)) @ rng.normal(size=(5, 50))   # a 5-D plane in 50-D
    >>> r = lowdim.estimate(X, method="twonn")
    >>> round(r.dimension), r.method
    (5, 'twonn')
    """
    if client is not None or _distributed(X):
        from lowdim.scale.estimate import estimate_distributed

        return estimate_distributed(X, client=client, method=method, local=local, **params)
    name = str(method).lower()
    cls = get_estimator(name)
    valid = inspect.signature(cls.__init__).parameters
    unknown = [p for p in params if p not in valid]
    if unknown:
        allowed = ", ".join(p for p in valid if p != "self")
        raise LowdimError(f"method {name!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: {allowed}")
    if local and not cls.supports_local:
        # the global method has no per-point variant: local TwoNN over the same neighbour graph
        from dataclasses import replace

        from lowdim.neighbors import kneighbors

        est = cls(**params)
        need = max(est.n_neighbors_needed(), LOCAL_NEIGHBORS)
        nb = X if isinstance(X, Neighbors) else kneighbors(
            X, need, duplicates=params.get("duplicates", "drop"), random_state=params.get("random_state", 0))
        res = est.fit(nb).result()
        loc = local_id(nb, method="twonn", n_neighbors=LOCAL_NEIGHBORS)
        res = replace(res, local=loc, notes=(*res.notes, f"local ID: TwoNN over {LOCAL_NEIGHBORS}-neighbourhoods "
                                             f"({name} has no per-point variant)"))
    else:
        if local:
            params["local"] = True
        res = cls(**params).fit(X).result()
    return res


def local_id(X: Any, *, method: str = "twonn", n_neighbors: int = 20, client: Any = None,
             **params: Any) -> np.ndarray:
    """Per-point (local) intrinsic dimension, one value per input row, vectorised.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or Neighbors
    method : {"twonn", "mle"}, default="twonn"
        TwoNN or Levina–Bickel MLE over each point's ``n_neighbors``-neighbourhood.
    n_neighbors : int, default=20

    Returns
    -------
    ndarray of shape (n_samples,)
        Duplicate rows get the value of the copy that was kept.

    Examples
    --------
    >>> import numpy as np, lowdim
    >>> X = np.random.default_rng(0).uniform(size=(3000, 2))
    >>> float(np.round(np.median(lowdim.local_id(X)), 0))
    2.0
    """
    if client is not None or _distributed(X):
        from lowdim.scale.estimate import local_id_distributed

        return local_id_distributed(X, client=client, method=method, n_neighbors=n_neighbors, **params)
    check_choice("method", method, ("twonn", "mle"))
    if isinstance(X, Neighbors) and not X.is_full:
        raise LowdimError("local_id needs neighbours of every point; build Neighbors without queries=")
    cls = get_estimator(method)
    est = cls(n_neighbors=n_neighbors, local=True, **params)
    if hasattr(est, "decimation"):
        est.decimation = False
    return est.fit(X).local_dimensions_


def _distributed(X: Any) -> bool:
    """Sharded input (dask/zarr array, .zarr path, folder of .npy shards): see lowdim.scale."""
    from lowdim.scale.shards import is_distributed_input

    return is_distributed_input(X)
