"""Exact k-NN of a sharded point set on a Dask cluster, identical to :func:`lowdim.kneighbors`.

Method: the reference set stays sharded on the workers. Each worker reads one shard, searches
the queries against it with the shared engine :func:`lowdim.neighbors.knn_search` (blocked GEMM +
exact float64 re-ranking), and returns its top-(k+1) with global row numbers; the coordinator
merges the per-shard lists (ordered by distance, then row) and drops each query itself. Exact
top-k is decomposable — the global k nearest are among the union of the per-shard k nearest — so
the neighbours and their float64 distances equal the single-process ones bit for bit (distances
are recomputed from the original values by the same code; ties at exactly equal distance may be
ordered differently). Duplicates are handled as :func:`lowdim.kneighbors` does: exact duplicate
rows are found from 128-bit row hashes computed on the workers, float near duplicates from the
first neighbour distance, and dropped (or refused) the same way.

Memory per worker: one shard (two in the all-pairs mode used when the queries are too many to
broadcast) plus the broadcast queries and one GEMM block.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Literal

import numpy as np

from lowdim.errors import LowdimError, require
from lowdim.neighbors import (
    Neighbors,
    _drop_self,
    _query_rows,
    drop_near_duplicates,
    knn_search,
    near_duplicate_message,
    near_duplicate_rows,
    near_duplicate_tolerance,
)
from lowdim.rowhash import duplicates_from_hashes as _duplicates_from_hashes
from lowdim.rowhash import row_hashes as _row_hashes
from lowdim.scale.shards import Sharded, load_shard, open_sharded
from lowdim.validation import check_choice, check_int

__all__ = ["dask_kneighbors", "get_client"]

#: Queries up to this many bytes are gathered on the coordinator and broadcast to every worker
#: (one task per reference shard); more queries use one task per (query shard, reference shard).
MAX_BROADCAST_BYTES = 256 * 2**20


def get_client(client: Any = None) -> Any:
    """``client``, or the default ``dask.distributed`` client, or a LowdimError saying how to get one."""
    if client is not None:
        return client
    distributed = require("distributed", "dask")
    try:
        return distributed.default_client()
    except ValueError:
        raise LowdimError(
            "distributed input needs a Dask client: pass client=lowdim.scale.connect() "
            "(a local cluster) or connect('tcp://scheduler:8786')"
        ) from None


def dask_kneighbors(
    X: Any,
    n_neighbors: int = 10,
    *,
    client: Any = None,
    queries: int | np.ndarray | None = None,
    duplicates: Literal["drop", "error", "keep"] = "drop",
    random_state: int | None = 0,
    shard_rows: int | None = None,
    block_size: int | None = None,
    max_broadcast_bytes: int = MAX_BROADCAST_BYTES,
    device: str | None = None,
) -> Neighbors:
    """Exact k-nearest-neighbour graph of a sharded point set, computed on a Dask cluster.

    Parameters
    ----------
    X : dask array, zarr array, path, Sharded or array-like
        See :func:`lowdim.scale.open_sharded`.
    n_neighbors : int, default=10
    client : distributed.Client, optional
        Default: the current default client.
    queries : int or array of int, optional
        Query a seeded random subsample of this many (deduplicated) rows, or these rows, against
        the whole reference set — global estimators need only a subsample. Default: all rows.
    duplicates, random_state, block_size
        As in :func:`lowdim.kneighbors`; the same seed picks the same query rows.
    shard_rows : int, optional
        Rows per shard when ``X`` is an in-memory array.
    max_broadcast_bytes : int
        Above this size the queries are not broadcast (all-pairs mode).
    device : str, optional
        ``"cuda"``: each worker searches its shard on its own GPU with the torch backend of the
        shared engine (one GPU per worker, as ``dask-cuda`` sets up; see docs/scaling.md).

    Returns
    -------
    Neighbors
        ``points`` is a lazy dask array (the reference rows after duplicate removal); every
        other field is a numpy array equal to what :func:`lowdim.kneighbors` returns.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.scale import connect, dask_kneighbors
    >>> X = np.random.default_rng(0).normal(size=(3000, 8))
    >>> with connect(workers=2) as client:                                  # doctest: +SKIP
    ...     nb = dask_kneighbors(X, 5, client=client, shard_rows=1000)
    """
    t0 = time.perf_counter()
    check_choice("duplicates", duplicates, ("drop", "error", "keep"))
    k = check_int("n_neighbors", n_neighbors, low=1)
    client = get_client(client)
    S = X if isinstance(X, Sharded) else open_sharded(X, client=client, shard_rows=shard_rows)
    n0 = S.n_points
    if n0 < k + 1:
        raise LowdimError(f"{S.source} has {n0} samples (shape {S.shape}); at least {k + 1} are needed "
                          f"(n_neighbors={k} plus the point itself); pass more data or lower the parameter")
    offs = S.offsets
    scans = client.gather(client.map(
        _scan_shard, S.loaders, [S.dtype] * S.n_shards, S.names, offs[:-1].tolist(),
        [duplicates != "keep"] * S.n_shards, pure=False))
    lo = np.min([s[1] for s in scans], axis=0)
    hi = np.max([s[2] for s in scans], axis=0)
    if n0 > 1 and np.max(hi - lo) == 0:
        raise LowdimError(f"{S.source} (shape {S.shape}) is constant: every row is the same point, so it has "
                          "no intrinsic dimension to measure; check the data source")
    kept = np.arange(n0)
    rep = np.arange(n0)
    n_drop = 0
    if duplicates != "keep":
        kept, rep = _duplicates_from_hashes(np.concatenate([s[0] for s in scans]))
        n_drop = n0 - len(kept)
        if n_drop and duplicates == "error":
            raise LowdimError(f"{S.source} (shape {S.shape}) has {n_drop} duplicate rows; remove them "
                              "or pass duplicates='drop'")
    del scans
    n = len(kept)
    if n < k + 1:
        raise LowdimError(f"{S.source} has {n} distinct points (shape {S.shape}, {n_drop} duplicates dropped); "
                          f"n_neighbors={k} needs at least {k + 1}: lower n_neighbors or pass more data")
    q_idx = _query_rows(queries, n, random_state)
    args = (client, S, k, block_size, max_broadcast_bytes, device)
    centre = 0.5 * (lo.astype(np.float64) + hi.astype(np.float64))  # as lowdim.neighbors.midrange
    dist, idx, tol, mode = _search(*args, kept, q_idx, n_drop > 0, centre)
    if duplicates != "keep":
        near = near_duplicate_rows(dist, idx, q_idx, tol)
        if len(near):
            if duplicates == "error":
                raise LowdimError(near_duplicate_message(f"{S.source} (shape {S.shape}, {S.dtype})", len(near)))
            _, kept, rep, q_idx, dist, idx, redo = drop_near_duplicates(near, n, dist, idx, q_idx,
                                                                          kept, rep)
            n_drop += len(near)
            if len(redo):
                dist[redo], idx[redo], _, mode = _search(*args, kept, q_idx[redo], True, centre)
    if n_drop and duplicates == "drop":
        warnings.warn(
            f"dropped {n_drop} duplicate or near-duplicate rows of {n0} (they make neighbour "
            "distances zero); pass duplicates='error' to refuse such data", UserWarning, stacklevel=2)
    points = S.points()
    if n_drop:
        points = points[kept]
    n_workers = len(client.scheduler_info().get("workers", {}))
    return Neighbors(
        distances=dist, indices=idx, points=points, query_indices=q_idx, kept=kept, representative=rep,
        backend="dask-exact-numpy", exact=True, n_duplicates_dropped=int(n_drop),
        seconds=time.perf_counter() - t0,
        info={"shards": S.n_shards, "workers": n_workers, "mode": mode, "source": S.source},
    )


# --------------------------------------------------------------------------- coordinator side


def _search(client: Any, S: Sharded, k: int, block_size: int | None, max_bytes: int, device: str | None,
            kept: np.ndarray, q_idx: np.ndarray, subset: bool,
            centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """k-NN (self excluded) of deduplicated rows ``q_idx`` against deduplicated rows ``kept``, and
    each query's near-duplicate tolerance around ``centre``."""
    distributed = require("distributed", "dask")
    offs = S.offsets
    kk = k + 1  # self is among the per-shard candidates; dropped after the merge
    shard_of = np.searchsorted(offs, kept, side="right") - 1
    counts = np.bincount(shard_of, minlength=S.n_shards)
    dedup_off = np.concatenate([[0], np.cumsum(counts)])
    keep_local = [kept[shard_of == j] - offs[j] if subset else None for j in range(S.n_shards)]
    orig_q = kept[q_idx]
    q_shard = np.searchsorted(offs, orig_q, side="right") - 1
    q_pos = [np.flatnonzero(q_shard == j) for j in range(S.n_shards)]
    m = len(q_idx)
    best_v = np.full((m, kk), np.inf)
    best_i = np.full((m, kk), np.iinfo(np.int64).max, dtype=np.int64)
    refs = [j for j in range(S.n_shards) if counts[j]]
    ref_args = {j: (S.loaders[j], keep_local[j], int(dedup_off[j])) for j in refs}
    opts = (S.dtype, kk, block_size, device)
    if m * S.n_features * S.dtype.itemsize <= max_bytes:
        mode = "broadcast"
        qs = [j for j in range(S.n_shards) if len(q_pos[j])]
        parts = client.gather([client.submit(_take_rows, S.loaders[j], S.dtype, orig_q[q_pos[j]] - offs[j],
                                             pure=False) for j in qs])
        Q = np.empty((m, S.n_features), S.dtype)
        for j, rows in zip(qs, parts):
            Q[q_pos[j]] = rows
        qnorm = near_duplicate_tolerance(Q, centre, S.dtype)
        Qf = client.scatter(Q, broadcast=True, hash=False)
        futs = {client.submit(_shard_topk, *ref_args[j], Qf, *opts, pure=False): None
                for j in refs}
    else:
        mode = "all-pairs"
        qnorm = np.empty(m)
        futs = {}
        for i in range(S.n_shards):
            if not len(q_pos[i]):
                continue
            qrows = orig_q[q_pos[i]] - offs[i]
            futs[client.submit(_row_tolerance, S.loaders[i], S.dtype, qrows, centre, pure=False)] = ("norm", i)
            for j in refs:
                futs[client.submit(_pair_topk, None if i == j else S.loaders[i], qrows, *ref_args[j],
                                   *opts, pure=False)] = ("knn", i)
    try:
        for fut in distributed.as_completed(list(futs), loop=client.loop):
            what = futs.pop(fut)
            res = fut.result()
            fut.release()
            if what is None:
                rows = slice(None)
            elif what[0] == "norm":
                qnorm[q_pos[what[1]]] = res
                continue
            else:
                rows = q_pos[what[1]]
            best_v[rows], best_i[rows] = _merge(best_v[rows], best_i[rows], *res, kk)
    finally:
        for fut in futs:
            fut.cancel()
    dist, idx = _drop_self(best_v, best_i, q_idx)
    return dist, idx, qnorm, mode


def _merge(v1: np.ndarray, i1: np.ndarray, v2: np.ndarray, i2: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``kk`` smallest (distance, row) pairs of two candidate lists per query."""
    v = np.concatenate([v1, v2], axis=1)
    i = np.concatenate([i1, i2], axis=1)
    order = np.lexsort((i, v), axis=1)[:, :kk]
    return np.take_along_axis(v, order, 1), np.take_along_axis(i, order, 1)


# --------------------------------------------------------------------------- worker side


def _threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError):
        return 1


def _scan_shard(loader: tuple, dtype: Any, name: str, offset: int, want_hash: bool) -> tuple:
    """Validate one shard; return its 128-bit row hashes (for duplicates) and column ranges."""
    R = load_shard(loader, dtype)
    finite = np.isfinite(R)
    if not finite.all():
        bad = np.argwhere(~finite)
        r, c = bad[0]
        raise LowdimError(
            f"shard {name!r} (shape {R.shape}) has {len(bad)} non-finite values (NaN or inf), first at its "
            f"row {r} (global row {offset + r}), column {c}; drop or impute those rows")
    if not len(R):
        D = R.shape[1]
        return np.empty((0, 2), np.uint64), np.full(D, np.inf), np.full(D, -np.inf)
    return (_row_hashes(R) if want_hash else None), R.min(axis=0), R.max(axis=0)


def _take_rows(loader: tuple, dtype: Any, rows: np.ndarray) -> np.ndarray:
    return load_shard(loader, dtype)[rows]


def _row_tolerance(loader: tuple, dtype: Any, rows: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return near_duplicate_tolerance(load_shard(loader, dtype)[rows], centre, dtype)


def _topk(R: np.ndarray, Q: np.ndarray, off: int, kk: int, block_size: int | None,
          device: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not len(R):
        return np.empty((len(Q), 0)), np.empty((len(Q), 0), np.int64)
    v, i, _ = knn_search(R, Q, min(kk, len(R)), backend="torch" if device else "exact", device=device,
                         n_jobs=_threads(), block_size=block_size)
    return v, i + off


def _shard_topk(loader: tuple, keep: np.ndarray | None, off: int, Q: np.ndarray, dtype: Any, kk: int,
                block_size: int | None, device: str | None) -> tuple[np.ndarray, np.ndarray]:
    R = load_shard(loader, dtype)
    if keep is not None:
        R = R[keep]
    return _topk(R, Q, off, kk, block_size, device)


def _pair_topk(qloader: tuple | None, qrows: np.ndarray, loader: tuple, keep: np.ndarray | None, off: int,
               dtype: Any, kk: int, block_size: int | None, device: str | None) -> tuple[np.ndarray, np.ndarray]:
    R = load_shard(loader, dtype)
    Q = (R if qloader is None else load_shard(qloader, dtype))[qrows]  # None: the same shard
    if keep is not None:
        R = R[keep]
    return _topk(R, Q, off, kk, block_size, device)
