"""The one k-nearest-neighbour engine every estimator and evaluator uses.

"Exact" is a proof, not a hope. Every exact path takes candidates from a fast GEMM (float32,
certified bfloat16 on CPUs with native bf16 dot products, or a PCA lower bound for low-rank data),
recomputes their distances in float64 from the caller's values, and proves per query with a
rounding-error bound that no other point can be nearer than the k-th (derivation in
:mod:`lowdim.knn_exact`). Queries the bound cannot prove (near-duplicate clusters, ties) are searched
again with more candidates, then with a float64 GEMM, then by float64 brute force: the distances
returned equal float64 brute force's (tied points may be listed in another order), and
``Neighbors.info["stages"]`` says how many queries each stage settled. Memory is bounded by blocks
(never an n×n matrix), threads by ``n_jobs`` (default: the cores this process may use) inside
scoped limits. A CUDA tensor (or ``device="cuda"``) runs the same pipeline in torch
(:mod:`lowdim.knn_torch`). Above a work threshold FAISS HNSW (optional extra) gives approximate
neighbours, and the result says ``exact=False``.
"""

from __future__ import annotations

import time
import warnings
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

#: Rows closer to their nearest neighbour than this many ulps per coordinate of the centred data
#: count as near duplicates (:func:`near_duplicate_tolerance`).
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
        ``"stages"``: queries settled by each stage of the proven exact search (see
        :mod:`lowdim.knn_exact`); ``"backend_requested"``, ``"device"``, ``"n_jobs"``: the
        search settings, reused by estimators that search subsets of the points. For approximate
        graphs, ``"recall_estimate"``: recall@k measured against exact search on 256 random
        queries (a warning is issued below 0.9).
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
    from lowdim.rowhash import duplicates_from_hashes, row_hashes

    Xc = np.ascontiguousarray(X)
    if len(Xc) and Xc.shape[1]:
        kept, rep = duplicates_from_hashes(row_hashes(Xc))
        # a hash collision would merge two different rows: check every row against its
        # representative, byte for byte, and fall back to sorting whole rows if one differs
        step = max(1, (1 << 20) // max(Xc.shape[1], 1))
        raw = Xc.view(np.uint8).reshape(len(Xc), -1)
        if all(np.array_equal(raw[s:s + step], raw[kept[rep[s:s + step]]]) for s in range(0, len(Xc), step)):
            return kept, rep
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
    info: dict | None = None,
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
    info : dict, optional
        Receives ``"stages"``: how many queries each stage of the exact search settled.

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
        elif work > AUTO_APPROX_WORK and _has("faiss") and work > _approx_limit(metric):
            backend = "faiss"
        else:
            backend = "exact"
    stages: dict = {}
    if backend == "torch":
        from lowdim.knn_torch import torch_knn

        vals, idx, name, stages = torch_knn(reference, queries, kk, metric, device)
    elif backend == "faiss":
        vals, idx = _faiss_search(_np(reference), _np(queries), kk, metric)
        name = "faiss-hnsw"
    else:
        vals, idx, name, stages = _numpy_search(_np(reference), _np(queries), kk, metric, n_jobs, block_size)
    if info is not None:
        info["stages"] = stages
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
        Queries per GEMM block; default keeps all threads' score blocks within ~192 MB.
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
    search_info: dict = {}
    dist, idx, name = knn_search(ref_in, _rows(ref_in, q_idx, n), k, exclude=q_idx,
                                 backend=backend, device=device, n_jobs=n_jobs, block_size=block_size,
                                 info=search_info)
    if duplicates != "keep":
        near = _near_duplicates_of(A, dist, idx, q_idx)
        if len(near):
            if duplicates == "error":
                raise LowdimError(near_duplicate_message(f"X (shape {A.shape}, {A.dtype})", len(near)))
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
    # how the graph was searched: estimators that need extra searches (decimation) reuse these
    info: dict = {"stages": search_info.get("stages", {}), "backend_requested": backend,
                  "device": device, "n_jobs": n_jobs}
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
    from lowdim.knn_exact import exact_knn

    _, exact, _ = exact_knn(A, A[rows], k + 1)
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


def midrange(A: np.ndarray) -> np.ndarray:
    """Per-coordinate centre ``(min + max) / 2`` in float64: moves with the data (translation)."""
    return 0.5 * (A.min(axis=0).astype(np.float64) + A.max(axis=0).astype(np.float64))


def near_duplicate_tolerance(Q: np.ndarray, centre: np.ndarray, dtype: Any) -> np.ndarray:
    """Per row: ``NEAR_DUPLICATE_ULPS × ‖ulp(|q − c|)‖``, the roundoff level of the centred row.

    Translation-invariant (``c`` moves with the data) and scale-invariant (ulps scale with the
    values), unlike a threshold on the raw norm: 1e4 + U(0, 1)³ in float32, whose neighbours lie
    ~15 float32 steps apart, has no near duplicates; float32 copies of a vector that differ in
    their last bits (recomputed embeddings) have.
    """
    out = np.empty(len(Q))
    step = max(1, (1 << 20) // max(Q.shape[1], 1))
    for s in range(0, len(Q), step):
        ulp = np.spacing(np.abs(Q[s:s + step].astype(np.float64) - centre).astype(dtype)).astype(np.float64)
        out[s:s + step] = NEAR_DUPLICATE_ULPS * np.sqrt(np.einsum("ij,ij->i", ulp, ulp))
    return out


def _near_duplicates_of(A: np.ndarray, dist: np.ndarray, idx: np.ndarray, q_idx: np.ndarray) -> np.ndarray:
    """:func:`near_duplicate_rows` for a graph of ``A``; the tolerance is computed only for rows
    within its cheap upper bound ``ULPS·(eps·(‖q‖ + ‖c‖) + tiny·√D)`` (``ulp(x) ≤ eps·|x|``)."""
    centre = midrange(A)
    info = np.finfo(A.dtype)
    Q = A[q_idx] if len(q_idx) != len(A) else A
    qn = np.sqrt(np.einsum("ij,ij->i", Q, Q, dtype=np.float64))
    bound = NEAR_DUPLICATE_ULPS * (info.eps * (qn + np.linalg.norm(centre)) * (1 + 4 * info.eps)
                                   + float(info.smallest_subnormal) * np.sqrt(A.shape[1]))
    maybe = np.flatnonzero(dist[:, 0] <= bound)
    tol = np.full(len(q_idx), -1.0)
    if len(maybe):
        tol[maybe] = near_duplicate_tolerance(A[q_idx[maybe]], centre, A.dtype)
    return near_duplicate_rows(dist, idx, q_idx, tol)


def near_duplicate_rows(dist: np.ndarray, idx: np.ndarray, q_idx: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Rows whose nearest neighbour lies within ``tol`` (their roundoff level); the higher of each pair."""
    close = dist[:, 0] <= tol
    if not close.any():
        return np.empty(0, dtype=np.int64)
    return np.unique(np.maximum(q_idx[close], idx[close, 0]))


def near_duplicate_message(what: str, count: int) -> str:
    return (f"{what} has {count} near-duplicate rows (within {NEAR_DUPLICATE_ULPS} ulps per coordinate of "
            "the centred data: float roundoff level); deduplicate them or pass duplicates='drop'")


def _drop_self(vals: np.ndarray, idx: np.ndarray, self_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_self = idx == self_idx[:, None]
    # rows where self was not found (ties at distance 0 cannot occur after deduplication,
    # but approximate search may miss it): drop the last column instead
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    k = idx.shape[1] - 1
    return vals[keep].reshape(-1, k), idx[keep].reshape(-1, k)


def _numpy_search(R: np.ndarray, Q: np.ndarray, k: int, metric: str, n_jobs: int | None,
                  block_size: int | None) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """Proven exact top-k on the CPU; the first stage is PCA-bounded pruning where the data allow
    it, else certified bfloat16 candidates on CPUs with native bf16 dot products, else float32."""
    from lowdim.knn_exact import exact_knn
    from lowdim.knn_pruned import pruned_knn, worth_pruning

    first, name = None, "exact-numpy"
    if worth_pruning(R, Q, k, metric):
        first = pruned_knn(R, Q, k, n_jobs=n_jobs, block_size=block_size)
    work = float(Q.shape[0]) * R.shape[0] * R.shape[1]
    if first is None and metric == "euclidean" and work >= BF16_MIN_WORK and k < R.shape[0] // 4:
        from lowdim.knn_bf16 import bf16_fast, bf16_knn

        if bf16_fast():
            first, name = bf16_knn(R, Q, k, block_size=block_size, n_jobs=n_jobs), "exact-bf16"
    dist, idx, stages = exact_knn(R, Q, k, metric=metric, n_jobs=n_jobs, block_size=block_size, first=first)
    return dist, idx, name, stages


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
