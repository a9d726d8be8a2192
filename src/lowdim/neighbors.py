"""The one k-nearest-neighbour engine every estimator and evaluator uses.

Exact search is a blocked GEMM: for a block of queries ``Q`` the score ``q·r − ½‖r‖²`` (largest =
nearest) comes from one float32 matrix product against the reference points augmented with a
column of ``−½‖r‖²``; a running top-(k+margin) is kept with ``argpartition`` and the candidates are
re-ranked with exact float64 distances, so float32 cancellation never decides an answer. Memory is
bounded by the block (never an n×n matrix); blocks run on all cores. On CPUs with native bfloat16
dot products, large Euclidean searches take their candidates from a bfloat16 GEMM instead and
prove each answer exact with a rounding-error bound (:mod:`lowdim.knn_bf16`); queries the bound
cannot prove are searched again in float32. A CUDA tensor (or
``device="cuda"``) runs the same algorithm in torch on the GPU. Above a work threshold FAISS HNSW
(optional extra) gives approximate neighbours, and the result says so.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from lowdim.errors import LowdimError, require
from lowdim.validation import as_points, check_choice, check_int

__all__ = ["Neighbors", "find_duplicates", "kneighbors", "knn_search"]

Backend = Literal["auto", "exact", "torch", "faiss"]
BACKENDS = ("auto", "exact", "torch", "faiss")
#: Above this many multiply-adds (n_queries · n_reference · n_features) ``backend="auto"`` uses
#: FAISS HNSW when it is installed (≈ 100,000² × 2,000, a few minutes of exact search on 2 cores).
AUTO_APPROX_WORK = 2e13
#: queries whose exact neighbours are computed to estimate an approximate graph's recall,
#: and the recall below which a warning says the graph is unreliable
RECALL_SAMPLE = 256
RECALL_WARNING = 0.9
#: exact search with certified bfloat16 candidates (:mod:`lowdim.knn_bf16`) from this much work
#: (n_queries × n × D) on CPUs with native bfloat16 dot products (AVX512-BF16 / AMX) and torch
BF16_MIN_WORK = 5e10
#: where exact search runs on certified bfloat16 candidates, auto switches to approximate search
#: only above this multiple of AUTO_APPROX_WORK (the exact search is that much faster there)
BF16_APPROX_FACTOR = 2.5

#: Rows closer to another row than this many units of roundoff (eps of the dtype × the row's
#: norm) count as near duplicates.
NEAR_DUPLICATE_ULPS = 8


@dataclass(frozen=True, eq=False)
class Neighbors:
    """A cached k-nearest-neighbour graph, reusable by every estimator.

    Attributes
    ----------
    distances : ndarray of shape (n_queries, k)
        Euclidean distances to the k nearest other points, ascending, float64.
    indices : ndarray of shape (n_queries, k)
        Row numbers (into ``points``) of those neighbours.
    points : ndarray of shape (n_points, n_features)
        The reference points after duplicate removal.
    query_indices : ndarray of shape (n_queries,)
        Rows of ``points`` that were queried (all of them unless a subsample was asked for).
    kept : ndarray of shape (n_points,)
        Row numbers in the caller's original array of ``points``.
    representative : ndarray of shape (n_original,)
        For every original row, the row of ``points`` that stands for it (duplicates map to the
        copy that was kept).
    backend : str
        ``"exact-numpy"``, ``"exact-bf16"`` (float32 data searched through certified bfloat16
        candidates, see :mod:`lowdim.knn_bf16`), ``"exact-torch-cuda"``, ``"exact-torch-cpu"``
        or ``"faiss-hnsw"``.
    exact : bool
        False when an approximate index was used.
    n_duplicates_dropped : int
        Exact plus near duplicates removed.
    seconds : float
        Time spent building the graph.
    info : dict
        For approximate graphs, ``"recall_estimate"``: recall@k measured against exact search
        on 256 random queries (a warning is issued below 0.9).
    """

    distances: np.ndarray
    indices: np.ndarray
    points: np.ndarray
    query_indices: np.ndarray
    kept: np.ndarray
    representative: np.ndarray
    backend: str
    exact: bool
    n_duplicates_dropped: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of neighbours stored per query."""
        return int(self.distances.shape[1])

    @property
    def n_queries(self) -> int:
        return int(self.distances.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def is_full(self) -> bool:
        """True when every point is a query (needed by pointwise/local estimates)."""
        return self.n_queries == self.n_points

    def require(self, k: int, who: str) -> Neighbors:
        """Return a view with exactly ``k`` neighbours, or raise if fewer are stored."""
        if k > self.k:
            raise LowdimError(
                f"{who} needs {k} neighbours per point but the Neighbors object holds {self.k}; "
                f"build it with lowdim.kneighbors(X, n_neighbors={k})"
            )
        if k == self.k:
            return self
        return replace(self, distances=self.distances[:, :k], indices=self.indices[:, :k])

    def to_original(self, values: np.ndarray) -> np.ndarray:
        """Map per-point values (one per row of ``points``) back to the caller's original rows."""
        if not self.is_full:
            raise LowdimError("per-point values need neighbours of every point; build Neighbors without queries=")
        return values[self.representative]


def find_duplicates(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact duplicate rows.

    Returns
    -------
    kept : ndarray
        Sorted row numbers of the first copy of every distinct row.
    representative : ndarray of shape (n,)
        For every row, its position in ``kept``.
    """
    Xc = np.ascontiguousarray(X)
    rows = Xc.view(np.dtype((np.void, Xc.dtype.itemsize * Xc.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]


def knn_search(
    reference: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    metric: Literal["euclidean", "ip"] = "euclidean",
    exclude: np.ndarray | None = None,
    backend: Backend = "auto",
    device: str | None = None,
    n_jobs: int | None = None,
    block_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Low-level top-k search of ``queries`` against ``reference`` (no validation, no deduplication).

    Parameters
    ----------
    reference, queries : ndarray
        2-D float arrays with the same number of columns (numpy, or torch tensors for CUDA).
    k : int
        Neighbours per query.
    metric : {"euclidean", "ip"}
        Euclidean distance (ascending) or inner product (descending).
    exclude : ndarray of shape (n_queries,), optional
        Row of ``reference`` that each query must not return (itself).
    backend, device, n_jobs, block_size
        See :func:`kneighbors`.

    Returns
    -------
    values : ndarray of shape (n_queries, k)
        Distances (ascending) or inner products (descending), float64.
    indices : ndarray of shape (n_queries, k)
    backend : str
        What actually ran.
    """
    n_ref = reference.shape[0]
    kk = k + (exclude is not None)
    if kk > n_ref:
        raise LowdimError(f"k={k} neighbours asked for but the reference set has {n_ref} points")
    on_cuda = (device is not None and str(device).startswith("cuda")) or _is_cuda(reference)
    if backend == "auto":
        work = float(queries.shape[0]) * n_ref * reference.shape[1]
        if on_cuda:
            backend = "torch"
        elif work > _approx_limit(metric) and _has("faiss"):
            backend = "faiss"
        else:
            backend = "exact"
    if backend == "torch":
        vals, idx, name = _torch_search(reference, queries, kk, metric, device)
    elif backend == "faiss":
        vals, idx = _faiss_search(_np(reference), _np(queries), kk, metric)
        name = "faiss-hnsw"
    else:
        vals, idx, name = _numpy_search(_np(reference), _np(queries), kk, metric, n_jobs, block_size)
    if exclude is not None:
        vals, idx = _drop_self(vals, idx, np.asarray(exclude))
    return vals, idx, name


def kneighbors(
    X: Any,
    n_neighbors: int = 10,
    *,
    queries: int | np.ndarray | None = None,
    duplicates: Literal["drop", "error", "keep"] = "drop",
    backend: Backend = "auto",
    device: str | None = None,
    n_jobs: int | None = None,
    block_size: int | None = None,
    random_state: int | None = 0,
) -> Neighbors:
    """Build the k-nearest-neighbour graph of a point cloud.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points (numpy array or torch tensor; a CUDA tensor runs on the GPU).
    n_neighbors : int, default=10
        Neighbours per point, not counting the point itself.
    queries : int or array of int, optional
        Query only these rows (or a random subsample of this many rows) against all points.
        Global estimators are unbiased on a random query subset and cost proportionally less.
    duplicates : {"drop", "error", "keep"}, default="drop"
        Exact and float near-duplicate rows make neighbour distances zero and break every ratio
        estimator. ``"drop"`` keeps one copy and warns with the count; ``"error"`` raises.
    backend : {"auto", "exact", "torch", "faiss"}, default="auto"
        ``"auto"`` is exact (numpy on CPU, torch on CUDA) unless the work exceeds
        :data:`AUTO_APPROX_WORK` (× :data:`BF16_APPROX_FACTOR` where the certified bfloat16 exact
        search runs) and FAISS is installed, then approximate HNSW.
    device : str, optional
        ``"cuda"`` to search on the GPU with torch.
    n_jobs : int, optional
        Threads for the exact CPU search; default all cores.
    block_size : int, optional
        Queries per GEMM block; default keeps each block's score matrix near 64 MB.
    random_state : int, optional
        Seed of the query subsample.

    Returns
    -------
    Neighbors

    Examples
    --------
    >>> import numpy as np, lowdim
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> nb = lowdim.kneighbors(X, n_neighbors=5)
    >>> nb.distances.shape, nb.backend
    ((500, 5), 'exact-numpy')
    """
    t0 = time.perf_counter()
    check_choice("duplicates", duplicates, ("drop", "error", "keep"))
    check_choice("backend", backend, BACKENDS)
    k = check_int("n_neighbors", n_neighbors, low=1)
    cuda_input = _is_cuda(X)
    A = as_points(X, min_samples=k + 1, why=f"n_neighbors={k} plus the point itself")
    if A.dtype != np.float64 and A.dtype != np.float32:
        A = A.astype(np.float64)
    n0 = A.shape[0]
    kept = np.arange(n0)
    rep = np.arange(n0)
    n_drop = 0
    if duplicates != "keep":
        kept, rep = find_duplicates(A)
        n_drop = n0 - len(kept)
        if n_drop and duplicates == "error":
            raise LowdimError(
                f"X (shape {A.shape}) has {n_drop} duplicate rows; remove them (np.unique(X, axis=0)) "
                "or pass duplicates='drop'"
            )
        if n_drop:
            A = A[kept]
    n = A.shape[0]
    if n < k + 1:
        raise LowdimError(
            f"X has {n} distinct points (shape {A.shape}, {n_drop} duplicates dropped); "
            f"n_neighbors={k} needs at least {k + 1}: lower n_neighbors or pass more data"
        )
    if device is None and cuda_input:
        device = "cuda"
    q_idx = _query_rows(queries, n, random_state)
    ref_in = _to_device(A, device) if device else A
    dist, idx, name = knn_search(ref_in, _rows(ref_in, q_idx, n), k, exclude=q_idx,
                                 backend=backend, device=device, n_jobs=n_jobs, block_size=block_size)
    if duplicates != "keep":
        near = _near_duplicates(A, dist, idx, q_idx)
        if len(near):
            if duplicates == "error":
                raise LowdimError(
                    f"X (shape {A.shape}, {A.dtype}) has {len(near)} near-duplicate rows (closer than "
                    f"{NEAR_DUPLICATE_ULPS} × eps × ‖x‖: float roundoff level); "
                    "deduplicate them or pass duplicates='drop'"
                )
            keep_mask, kept, rep, q_idx, dist, idx, redo = drop_near_duplicates(near, n, dist, idx, q_idx,
                                                                                kept, rep)
            A = A[keep_mask]
            n_drop += len(near)
            if len(redo):
                ref_in = _to_device(A, device) if device else A
                dist[redo], idx[redo], _ = knn_search(ref_in, _rows(ref_in, q_idx[redo], len(A)), k,
                                                      exclude=q_idx[redo], backend=backend, device=device,
                                                      n_jobs=n_jobs, block_size=block_size)
    if n_drop and duplicates == "drop":
        warnings.warn(
            f"dropped {n_drop} duplicate or near-duplicate rows of {n0} (they make neighbour "
            "distances zero); pass duplicates='error' to refuse such data",
            UserWarning,
            stacklevel=2,
        )
    info: dict = {}
    if name.startswith("faiss"):
        info["recall_estimate"] = _sample_recall(A, q_idx, idx, k)
        if info["recall_estimate"] < RECALL_WARNING:
            warnings.warn(
                f"approximate k-NN ({name}) found only {info['recall_estimate']:.0%} of the true {k} "
                f"neighbours on a sample of {RECALL_SAMPLE} queries; local and ratio estimates on this graph "
                "are biased: pass backend='exact' (exact search is certified and fast on bf16 CPUs) "
                "or subsample the queries (queries=...)", UserWarning, stacklevel=2)
    return Neighbors(
        distances=dist, indices=idx, points=A, query_indices=q_idx, kept=kept,
        representative=rep, backend=name, exact=not name.startswith("faiss"),
        n_duplicates_dropped=int(n_drop), seconds=time.perf_counter() - t0, info=info,
    )


def _sample_recall(A: np.ndarray, q_idx: np.ndarray, idx: np.ndarray, k: int) -> float:
    """recall@k of an approximate graph on RECALL_SAMPLE random queries, against exact search."""
    rng = np.random.default_rng(0)
    pick = rng.choice(len(q_idx), size=min(RECALL_SAMPLE, len(q_idx)), replace=False)
    rows = q_idx[pick]
    _, exact = _gemm_topk(A, A[rows], k + 1, "euclidean", None, None)
    exact = _drop_self(np.zeros(exact.shape), exact, rows)[1]
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(idx[pick], exact))
    return hits / (len(pick) * k)


# --------------------------------------------------------------------------- helpers


def _rows(A: Any, rows: np.ndarray, n: int) -> Any:
    """``A[rows]``, but ``A`` itself (no copy) when the rows are all of them in order."""
    if len(rows) == A.shape[0] == n and np.array_equal(rows, np.arange(n)):
        return A
    return A[rows]


def _approx_limit(metric: str) -> float:
    if metric == "euclidean":
        from lowdim.knn_bf16 import bf16_fast

        if bf16_fast():
            return AUTO_APPROX_WORK * BF16_APPROX_FACTOR
    return AUTO_APPROX_WORK


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def _is_cuda(X: Any) -> bool:
    return type(X).__module__.startswith("torch") and getattr(X, "is_cuda", False)


def _np(X: Any) -> np.ndarray:
    if isinstance(X, np.ndarray):
        return X
    return X.detach().cpu().numpy()


def _to_device(A: np.ndarray, device: str) -> Any:
    torch = require("torch", "torch")
    return torch.as_tensor(A, device=device)


def _query_rows(queries: int | np.ndarray | None, n: int, seed: int | None) -> np.ndarray:
    if queries is None:
        return np.arange(n)
    if np.isscalar(queries):
        m = check_int("queries", int(queries), low=1)
        if m >= n:
            return np.arange(n)
        return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    q = np.asarray(queries)
    if q.ndim != 1 or q.dtype.kind not in "iu" or (len(q) and (q.min() < 0 or q.max() >= n)):
        raise LowdimError(f"queries must be a number or 1-D integer row indices in [0, {n}); got shape {q.shape}")
    return q


def drop_near_duplicates(near: np.ndarray, n: int, dist: np.ndarray, idx: np.ndarray, q_idx: np.ndarray,
                         kept: np.ndarray, rep: np.ndarray) -> tuple:
    """Bookkeeping after near duplicates ``near`` (rows of the current n points) are dropped.

    Each dropped row is represented by its nearest neighbour, following chains to a kept row.
    Removing points cannot bring nearer neighbours, so the graph of every remaining query stays
    valid unless one of its neighbours was dropped: only those ``redo`` rows need a new search.

    Returns
    -------
    keep_mask : bool array over the n rows
    kept, representative : updated original row numbers and original row -> new row
    q_idx : the remaining queries (new numbering)
    dist, idx : their graph rows, renumbered (rows in ``redo`` are stale)
    redo : positions in ``q_idx`` to search again
    """
    keep_mask = np.ones(n, bool)
    keep_mask[near] = False
    new_pos = np.cumsum(keep_mask) - 1
    target = np.arange(n)
    nn_of = np.full(n, -1)
    nn_of[q_idx] = idx[:, 0]
    target[near] = nn_of[near]
    for _ in range(8):  # follow chains of near duplicates to a kept row
        bad = ~keep_mask[target]
        if not bad.any():
            break
        target[bad] = np.where(nn_of[target[bad]] >= 0, nn_of[target[bad]], target[bad])
    stay = keep_mask[q_idx]
    dist, idx = dist[stay], idx[stay]
    redo = np.flatnonzero(~keep_mask[idx].all(axis=1))
    return (keep_mask, kept[keep_mask], new_pos[target][rep], new_pos[q_idx[stay]],
            dist, new_pos[idx], redo)


def _near_duplicates(A: np.ndarray, dist: np.ndarray, idx: np.ndarray, q_idx: np.ndarray) -> np.ndarray:
    """Rows whose nearest neighbour lies at float-roundoff distance; the higher row of each pair.

    Roundoff level is ``NEAR_DUPLICATE_ULPS · eps(dtype) · ‖x‖``: float32 copies of one vector that
    differ in their last bits (recomputed embeddings) are caught; genuine neighbours are not.
    """
    eps = np.finfo(A.dtype).eps
    norms = np.sqrt(np.einsum("ij,ij->i", A[q_idx], A[q_idx], dtype=np.float64))
    close = dist[:, 0] <= NEAR_DUPLICATE_ULPS * eps * norms
    if not close.any():
        return np.empty(0, dtype=np.int64)
    i = q_idx[close]
    j = idx[close, 0]
    return np.unique(np.maximum(i, j))


def _drop_self(vals: np.ndarray, idx: np.ndarray, self_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_self = idx == self_idx[:, None]
    # rows where self was not found (ties at distance 0 cannot occur after deduplication,
    # but approximate search may miss it): drop the last column instead
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    k = idx.shape[1] - 1
    return vals[keep].reshape(-1, k), idx[keep].reshape(-1, k)


def _block_rows(n_ref: int, block_size: int | None) -> int:
    if block_size is not None:
        return max(1, int(block_size))
    return int(np.clip(8_000_000 // max(n_ref, 1), 16, 4096))


def _numpy_search(R: np.ndarray, Q: np.ndarray, k: int, metric: str, n_jobs: int | None,
                  block_size: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Exact top-k on the CPU: PCA-bounded pruning where the data allow it, else certified
    bfloat16 candidates on CPUs with native bf16 dot products, else blocked float32 GEMM."""
    # pruning pays its set-up (a D×D covariance and a bound-space index) only with many queries
    if (metric == "euclidean" and R.shape[1] >= 32 and R.shape[0] >= 4000 and k < R.shape[0] // 4
            and Q.shape[0] >= 4 * R.shape[1]):
        res = _pruned_search(R, Q, k, n_jobs, block_size)
        if res is not None:
            return (*res, "exact-numpy")
    work = float(Q.shape[0]) * R.shape[0] * R.shape[1]
    if metric == "euclidean" and work >= BF16_MIN_WORK and k < R.shape[0] // 4:
        from lowdim.knn_bf16 import bf16_fast, bf16_knn

        if bf16_fast():
            dist, idx, ok = bf16_knn(R, Q, k, block_size=block_size)
            bad = np.flatnonzero(~ok)
            if len(bad):  # the bound could not prove these: search them exactly
                dist[bad], idx[bad] = _gemm_topk(R, Q[bad], k, metric, n_jobs, block_size)
            return dist, idx, "exact-bf16"
    return (*_gemm_topk(R, Q, k, metric, n_jobs, block_size), "exact-numpy")


def _pruned_search(R: np.ndarray, Q: np.ndarray, k: int, n_jobs: int | None,
                   block_size: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact k-NN through a lower bound in a few principal components.

    With ``z = Pᵀ(x − c)`` the top-m PCA coordinates and ``e = ‖(x − c) − P z‖`` the residual norm,
    ``‖x − y‖² = ‖z_x − z_y‖² + ‖e_x − e_y‖² ≥ ‖z_x − z_y‖² + (|e_x| − |e_y|)²``: the Euclidean
    distance between the augmented points ``[z, |e|]`` (m + 1 numbers) is a lower bound of the true
    distance. We take the ``kc`` nearest in the bound (k-d tree or GEMM: the bound space has
    m + 1 ≤ 65 dimensions and holds ≥ 99.8 % of the variance), re-rank them exactly, and accept a query when
    its exact k-th distance is at most the bound of its (kc+1)-th candidate: no point outside the
    candidates can then be nearer. Rejected queries go through the full GEMM search. Returns None
    when a trial on a sample says the bound would reject too many queries (spectrum too flat).
    """
    n, D = R.shape
    centre = R.mean(axis=0, dtype=np.float64)
    cov = np.zeros((D, D))
    for s in range(0, n, 32768):
        blk = (R[s:s + 32768] - centre).astype(np.float32)
        cov += (blk.T @ blk).astype(np.float64)
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1].clip(min=0), evecs[:, ::-1]
    tail = np.cumsum(evals[::-1])[::-1] / max(evals.sum(), 1e-300)  # tail[m] = residual fraction
    m = next((m for m in (4, 8, 16, 32, 64) if m <= D // 4 and tail[m] <= 2e-3), None)
    if m is None:
        return None
    P = np.ascontiguousarray(evecs[:, :m])

    def augment(X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), m + 1))
        for s in range(0, len(X), 32768):
            xc = X[s:s + 32768] - centre
            z = xc @ P
            out[s:s + 32768, :m] = z
            out[s:s + 32768, m] = np.sqrt(np.maximum(np.einsum("ij,ij->i", xc, xc) - np.einsum("ij,ij->i", z, z), 0))
        return out

    from scipy.spatial import cKDTree

    Ra = augment(R)
    Qa = Ra if Q is R else augment(Q)
    # exact search in the (m+1)-dim bound space: a k-d tree for large n, blocked GEMM otherwise
    tree = cKDTree(Ra) if n >= 20_000 else None
    kc = k + max(8, k)
    jobs = n_jobs or os.cpu_count() or 1

    def search(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if tree is not None:
            lb, cand = tree.query(Qa[rows], kc + 1, workers=jobs)
        else:
            lb, cand = _gemm_topk(Ra, Qa[rows], kc + 1, "euclidean", n_jobs, block_size)
        dk = np.empty((len(rows), k))
        ik = np.empty((len(rows), k), np.int64)

        def rerank(s: int) -> None:  # exact float64 distances to the candidates, in blocks
            c = cand[s:s + 1024, :kc]
            diff = R[c].astype(np.float64, copy=False) - Q[rows[s:s + 1024]].astype(np.float64, copy=False)[:, None, :]
            d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            dk[s:s + 1024] = np.take_along_axis(d, order, 1)
            ik[s:s + 1024] = np.take_along_axis(c, order, 1)

        _parallel(rerank, range(0, len(rows), 1024), n_jobs)
        return dk, ik, dk[:, -1] <= lb[:, kc]

    rng = np.random.default_rng(0)
    trial = rng.choice(len(Q), size=min(256, len(Q)), replace=False)
    if search(trial)[2].mean() < 0.8:
        return None
    dist, idx, ok = search(np.arange(len(Q)))
    bad = np.flatnonzero(~ok)
    if len(bad):
        dist[bad], idx[bad] = _gemm_topk(R, Q[bad], k, "euclidean", n_jobs, block_size)
    return dist, idx


def _gemm_topk(R: np.ndarray, Q: np.ndarray, k: int, metric: str,
               n_jobs: int | None, block_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Blocked GEMM top-k. Extra memory: one float32 copy of R (+1 column) and per-block scores."""
    n_ref, n_q, D = R.shape[0], Q.shape[0], R.shape[1]
    same = Q is R
    margin = 0 if k >= n_ref else min(n_ref - k, max(4, k // 2))
    kc = k + margin
    chunk = 65536
    if metric == "euclidean":
        # translation invariance: centre on the reference mean so float32 keeps the precision
        # that an offset (data far from the origin) would otherwise cancel away; the score
        # q·r − ½‖r‖² comes out of one GEMM against R augmented with a −½‖r‖² column
        centre = R.mean(axis=0, dtype=np.float64)
        Ra = np.empty((n_ref, D + 1), np.float32)
        for s in range(0, n_ref, chunk):
            Ra[s:s + chunk, :D] = R[s:s + chunk] - centre
        Ra[:, D] = -0.5 * np.einsum("ij,ij->i", Ra[:, :D], Ra[:, :D], dtype=np.float64)
        Qc = Ra[:, :D] if same else (Q - centre).astype(np.float32)
    else:
        Ra = np.asarray(R, dtype=np.float32)
        Qc = Ra if same else np.asarray(Q, dtype=np.float32)
    RaT = Ra.T
    b = _block_rows(n_ref, block_size)
    out_v = np.empty((n_q, k), np.float64)
    out_i = np.empty((n_q, k), np.int64)

    def run(start: int) -> None:
        stop = min(start + b, n_q)
        if metric == "euclidean":
            Qa = np.empty((stop - start, D + 1), np.float32)
            Qa[:, :D] = Qc[start:stop]
            Qa[:, D] = 1.0
        else:
            Qa = Qc[start:stop]
        S = Qa @ RaT  # largest score = nearest (or largest inner product)
        if kc < n_ref:
            cand = np.argpartition(S, n_ref - kc, axis=1)[:, n_ref - kc:]
        else:
            cand = np.broadcast_to(np.arange(n_ref), S.shape).copy()
        del S
        # exact float64 re-ranking of the few candidates, from the caller's original values
        Rc = R[cand].astype(np.float64, copy=False)
        Qb = Q[start:stop].astype(np.float64, copy=False)
        if metric == "euclidean":
            diff = Rc - Qb[:, None, :]
            v = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            order = np.argsort(v, axis=1, kind="stable")[:, :k]
        else:
            v = np.einsum("ijk,ik->ij", Rc, Qb)
            order = np.argsort(-v, axis=1, kind="stable")[:, :k]
        out_v[start:stop] = np.take_along_axis(v, order, 1)
        out_i[start:stop] = np.take_along_axis(cand, order, 1)

    _parallel(run, range(0, n_q, b), n_jobs)
    return out_v, out_i


def _parallel(fn: Any, starts: range, n_jobs: int | None) -> None:
    """Run ``fn(start)`` for every block, one BLAS thread per worker, on all cores."""
    from threadpoolctl import threadpool_limits

    jobs = n_jobs or os.cpu_count() or 1
    if jobs == 1 or len(starts) == 1:
        for s in starts:
            fn(s)
        return
    # one BLAS thread per block worker: GEMM, argpartition and re-ranking all use every core
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs) as pool:
        list(pool.map(fn, starts))


def _torch_search(R: Any, Q: Any, k: int, metric: str, device: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    torch = require("torch", "torch")
    dev = torch.device(device) if device else getattr(R, "device", torch.device("cpu"))
    if isinstance(dev, str):
        dev = torch.device(dev)
    Rt = torch.as_tensor(R, device=dev)
    Qt = torch.as_tensor(Q, device=dev)
    R64, Q64 = Rt.double(), Qt.double()
    if metric == "euclidean":  # centre: see _numpy_search
        centre = R64.mean(0)
        R32, Q32 = (R64 - centre).float(), (Q64 - centre).float()
    else:
        R32, Q32 = Rt.float(), Qt.float()
    n_ref, n_q = Rt.shape[0], Qt.shape[0]
    margin = 0 if k >= n_ref else min(n_ref - k, max(4, k // 2))
    kc = k + margin
    if metric == "euclidean":
        half_sq = 0.5 * (R32.double() ** 2).sum(1)
        Ra = torch.cat([R32, (-half_sq).float()[:, None]], 1)
        Qa = torch.cat([Q32, torch.ones(n_q, 1, device=dev)], 1)
    else:
        Ra, Qa = R32, Q32
    b = int(np.clip(256_000_000 // max(n_ref, 1), 16, 65536)) if dev.type == "cuda" else _block_rows(n_ref, None)
    vs, ids = [], []
    for s in range(0, n_q, b):
        S = Qa[s:s + b] @ Ra.T
        cand = torch.topk(S, kc, dim=1).indices
        if metric == "euclidean":
            v = (R64[cand] - Q64[s:s + b, None, :]).square().sum(-1).sqrt()
            v, o = torch.sort(v, dim=1, stable=True)
        else:
            v = torch.einsum("ijk,ik->ij", R64[cand], Q64[s:s + b])
            v, o = torch.sort(v, dim=1, descending=True, stable=True)
        vs.append(v[:, :k])
        ids.append(torch.gather(cand, 1, o[:, :k]))
    return torch.cat(vs).cpu().numpy(), torch.cat(ids).cpu().numpy(), f"exact-torch-{dev.type}"


def _faiss_search(R: np.ndarray, Q: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    faiss = require("faiss", "faiss")
    D = R.shape[1]
    R32 = np.ascontiguousarray(R, dtype=np.float32)
    Q32 = np.ascontiguousarray(Q, dtype=np.float32)
    fm = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWFlat(D, 32, fm)
    index.hnsw.efConstruction = 64
    index.add(R32)
    index.hnsw.efSearch = max(64, 2 * k)
    v, i = index.search(Q32, k)
    if (i < 0).any():
        raise LowdimError("approximate search returned too few neighbours; use backend='exact'")
    # exact float64 distances for the neighbours found
    R64, Q64 = R.astype(np.float64, copy=False), Q.astype(np.float64, copy=False)
    if metric == "euclidean":
        out = np.empty(i.shape)
        for s in range(0, len(Q64), 8192):
            d = R64[i[s:s + 8192]] - Q64[s:s + 8192, None, :]
            out[s:s + 8192] = np.sqrt(np.einsum("ijk,ijk->ij", d, d))
        order = np.argsort(out, axis=1, kind="stable")
    else:
        out = np.einsum("ijk,ik->ij", R64[i], Q64)
        order = np.argsort(-out, axis=1, kind="stable")
    return np.take_along_axis(out, order, 1), np.take_along_axis(i.astype(np.int64), order, 1)
