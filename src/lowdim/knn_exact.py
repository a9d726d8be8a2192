"""Exact k-NN on the CPU with a proof for every answer.

A fast GEMM in low precision proposes ``kc`` candidates per query; their distances are recomputed
in float64 from the caller's values; a rounding-error bound then decides, query by query, whether
any point outside the candidates could be nearer than the k-th. Queries the bound cannot prove are
searched again with more candidates, then with a float64 GEMM, and finally by direct float64
differences against every point (float64 brute force, which needs no proof). No fixed margin ever
decides an answer.

The bound (one derivation for every GEMM path, float32 and float64 here, bfloat16 in
:mod:`lowdim.knn_bf16`, torch in :mod:`lowdim.knn_torch`)
-----------------------------------------------------------------------------------------------
Centre on ``c`` (any fixed float64 vector; :func:`centre_of`, a robust median): ``q* = q − c``, ``r* = r − c`` exactly,
so that ``‖q − r‖² = ‖q*‖² − 2 s(q, r)`` with ``s = q*·r* − ½‖r*‖²``. The GEMM sees rounded copies
``q̃, r̃`` (``Δq = q* − q̃`` covers the float64 subtraction, ``≤ 2⁻⁵³‖q*‖``, and the rounding to the
GEMM's dtype, computed exactly) and the norm column ``t_r = fl(−½‖r̃‖²)``. It returns
``Ŝ = fl(q̃·r̃ + t_r)`` with ``|Ŝ − (q̃·r̃ + t_r)| ≤ γ_{D+1}(‖q̃‖‖r̃‖ + |t_r|)``, ``γ_n = nu/(1 − nu)`` for
the accumulation's unit roundoff u in any summation order (Higham, *Accuracy and Stability of
Numerical Algorithms*, Thm 3.1; FMA only helps). Expanding ``q*·r* − q̃·r̃ = q̃·Δr + Δq·r̃ + Δq·Δr``
and ``½‖r*‖² − ½‖r̃‖² = r̃·Δr + ½‖Δr‖²`` with Cauchy–Schwarz gives, for every r,

    |s(q, r) − Ŝ(q, r)| ≤ E(q) = γ(‖q̃‖M + |t|max) + ‖q̃‖δ + ‖Δq‖(M + δ) + Mδ + ½δ² + τ,

where ``M`` bounds ``‖r̃‖``, ``δ`` bounds ``‖Δr‖`` and ``τ`` the norm column's own rounding. Only points
that could be nearer than the k-th candidate matter, and by the triangle inequality those have
``‖r*‖ < ‖q*‖ + d_k``: so ``M`` is the smaller of the largest reference norm and ``‖q̃‖ + ‖Δq‖ + d_k + δ``
(outliers far away do not loosen every query's bound). A point outside the ``kc`` candidates has
``Ŝ ≤ ŝ_kc`` (the smallest candidate score), hence ``‖q − r‖² ≥ ‖q*‖² − 2(ŝ_kc + E(q))``; the query is
proven when its float64 k-th candidate distance satisfies ``d_k² ≤`` that bound (with the float64
evaluation's own relative error, ``(D + 8)·2⁻⁵²``, charged against it). Exact ties with the k-th
distance cannot be proven and end in the float64 brute-force stage, whose distances equal brute
force's (indices of tied points may differ). :func:`score_error_bound` is tested against the
GEMM's actual errors. For inner products (``metric="ip"``) the same argument holds without
centring or norm column, with global maxima.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["exact_knn", "rerank", "score_error_bound", "select_top", "usable_cores"]

U32 = 2.0 ** -24
U64 = 2.0 ** -53
#: bytes of float64 temporaries per re-ranking step (and per thread)
RERANK_BYTES = 8 << 20
#: bytes of score blocks and their selection temporaries, for all threads together
BLOCK_BYTES = 192 << 20


def usable_cores(n_jobs: int | None = None) -> int:
    """``n_jobs`` if given, else the cores this process may run on (``os.sched_getaffinity``)."""
    if n_jobs is not None and n_jobs > 0:
        return int(n_jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def centre_of(R: np.ndarray) -> np.ndarray:
    """The centring point of every GEMM path: the coordinate-wise median of up to 4,096 evenly
    spaced rows (float64). Any fixed point keeps the bound valid; a robust one keeps the rounded
    centred values small when a few outliers would drag the mean far from the bulk."""
    step = max(1, len(R) // 4096)
    return np.median(np.asarray(R[::step], dtype=np.float64), axis=0)


def gamma(n: int, u: float) -> float:
    """Higham's ``γ_n = n·u / (1 − n·u)``: relative error bound of an n-term dot product."""
    return n * u / (1 - n * u)


@dataclass
class Side:
    """Rounded centred copy of one side of the GEMM and the exact sizes of its rounding errors."""

    A: np.ndarray          # (n, D [+1]) in the GEMM dtype; reference: last column t_r, queries: 1
    tn: np.ndarray         # ‖x̃‖ (float64)
    err: np.ndarray        # bound of ‖Δx‖ (float64)
    sq: np.ndarray         # ‖x − c‖² computed in float64 (a lower bound after ``sq_lo``)
    tail_max: float = 0.0  # largest |t_r| (reference only)


def prepare(X: np.ndarray, centre: np.ndarray | None, dtype: Any, role: str) -> Side:
    """Round ``X − centre`` to ``dtype`` and measure the rounding (role "ref" adds the norm column).

    Values beyond the dtype's range become inf here (silently); :func:`gemm_stage` then skips the
    stage and a float64 one answers.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _prepare(X, centre, dtype, role)


def _prepare(X: np.ndarray, centre: np.ndarray | None, dtype: Any, role: str) -> Side:
    n, D = X.shape
    extra = centre is not None
    A = np.empty((n, D + extra), dtype)
    tn, err, sq = np.empty(n), np.empty(n), np.empty(n)
    tail_max = 0.0
    step = max(1, (1 << 20) // max(D, 1))  # rows per chunk: ≤ 8 MB per float64 temporary
    for s in range(0, n, step):
        x = X[s:s + step].astype(np.float64)
        if extra:
            x -= centre
        xr = x.astype(dtype)
        A[s:s + step, :D] = xr
        xr64 = xr.astype(np.float64)
        d = x - xr64
        nx = np.einsum("ij,ij->i", x, x)
        sq[s:s + step] = nx
        r2 = np.einsum("ij,ij->i", xr64, xr64)
        tn[s:s + step] = np.sqrt(r2)
        err[s:s + step] = np.sqrt(np.einsum("ij,ij->i", d, d)) + (2 * U64 if extra else 0.0) * np.sqrt(nx)
        if extra and role == "ref":
            A[s:s + step, D] = -0.5 * r2
            tail_max = max(tail_max, float(np.abs(A[s:s + step, D]).max(initial=0.0)))
        elif extra:
            A[s:s + step, D] = 1.0
    return Side(A, tn, err, sq, tail_max)


def score_error_bound(q_tn: Any, q_err: Any, M: Any, delta: Any, tail_max: Any, D: int,
                      u_acc: float, u_tail: float, n_terms: int | None = None) -> Any:
    """``E(q)``: bound of ``|s(q, r) − Ŝ(q, r)|`` over every r with ``‖r̃‖ ≤ M`` (see the module notes).

    Parameters
    ----------
    q_tn, q_err : array
        ``‖q̃‖`` and a bound of ``‖Δq‖`` per query.
    M, delta : float or array
        Bounds of ``‖r̃‖`` and ``‖Δr‖`` over the points that matter.
    tail_max : float or array
        Bound of ``|t_r|`` (0 for inner products).
    D : int
        Features.
    u_acc : float
        Unit roundoff of the GEMM's accumulation (and output).
    u_tail : float
        Unit roundoff of the stored norm column (0 for inner products).
    n_terms : int, optional
        Terms per dot product (default ``D + 1`` with a norm column, ``D`` without).
    """
    n = n_terms if n_terms is not None else D + (1 if u_tail else 0)
    g = gamma(n, u_acc)
    norm_col = (M * delta + 0.5 * delta * delta + (u_tail + gamma(D, U64)) * 0.5 * M * M) if u_tail else 0.0
    # last terms: products below 2⁻¹²⁶ flushed to zero, and inputs below it read as zero (FTZ/DAZ)
    return (g * (q_tn * M + tail_max) + q_tn * delta + q_err * (M + delta) + norm_col
            + n * 2.0 ** -126 + np.sqrt(n) * (q_tn + M) * 2.0 ** -126)


def certify(dk: np.ndarray, s_kc: np.ndarray, q: Side, idx: np.ndarray, ref: Side, D: int,
            u_acc: float, u_in: float, metric: str) -> np.ndarray:
    """Per query: True when no point outside the candidates can beat the k-th candidate.

    ``dk`` is the k-th candidate's float64 distance (or inner product for ``metric="ip"``),
    ``s_kc`` the smallest candidate score of the GEMM, ``idx`` the query rows of ``q``, ``u_acc``
    the GEMM's accumulation roundoff and ``u_in`` that of its rounded inputs and norm column.
    """
    slack = (D + 8) * 2.0 ** -52
    q_tn, q_err = q.tn[idx], q.err[idx]
    M_all, d_all = float(ref.tn.max()), float(ref.err.max())
    if metric == "ip":
        E = score_error_bound(q_tn, q_err, M_all, d_all, 0.0, D, u_acc, 0.0)
        vk = dk - slack * (q_tn + q_err) * (M_all + d_all)  # float64 inner product's own error
        return vk >= s_kc + E + slack * (np.abs(s_kc) + E)
    # only points with ‖r*‖ < ‖q*‖ + d_k can be nearer: cap the reference maxima there; their
    # ‖r̃‖ ≤ ‖r*‖(1 + 2u + 4·2⁻⁵³) and their rounding errors are at most (u + 2⁻⁵²)·‖r̃‖·(1 + 2u)
    # (see :func:`prepare`): one far outlier does not loosen every query's bound
    M = np.minimum(M_all, (q_tn + q_err + dk * (1 + slack)) * (1 + 2 * u_in + 4 * U64))
    delta = np.minimum(d_all, (u_in + 2 * U64) * (1 + 2 * u_in) * M)
    tail = np.minimum(ref.tail_max, 0.5 * M * M * (1 + 2 * u_in))
    E = score_error_bound(q_tn, q_err, M, delta, tail, D, u_acc, u_in)
    q_sq_lo = q.sq[idx] * (1 - slack)
    bound = q_sq_lo - 2.0 * (s_kc + E) - 4 * U64 * (q.sq[idx] + 2 * np.abs(s_kc) + 2 * E)
    return dk * dk * (1 + slack) <= bound


def select_top(S: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``kc`` largest entries of every row of ``S`` (unordered).

    Exact, and several times faster than ``argpartition`` on long rows: the kc-th largest of strided
    group maxima (up to 32 entries a group) is a lower bound ``t`` of each row's kc-th largest value, so the top kc
    lie among the few entries ``≥ t``; only those are partitioned. Rows of clustered or tied
    scores fall back to ``argpartition``.
    """
    b, n = S.shape
    if kc >= n:
        return np.broadcast_to(np.arange(n), (b, n)).copy(), S.copy()
    w = min(32, n // (4 * kc))  # group width: at least 4·kc groups
    if w < 4 or b == 0:
        return _partition_top(S, kc)
    groups = n // w
    cand = np.empty((b, kc), np.int64)
    vals = np.empty((b, kc), S.dtype)
    step = 64
    mask = np.empty((min(step, b), n), bool)
    for s in range(0, b, step):
        blk = S[s:s + step]
        r = len(blk)
        G = blk[:, : w * groups].reshape(r, w, groups).max(axis=1)
        rem = n - w * groups
        if rem:
            np.maximum(G[:, :rem], blk[:, w * groups:], out=G[:, :rem])
        t = np.partition(G, groups - kc, axis=1)[:, groups - kc]
        flat = np.flatnonzero(np.greater_equal(blk, t[:, None], out=mask[:r]))
        rows, cols = np.divmod(flat, n)
        counts = np.bincount(rows, minlength=r)
        width = int(counts.max())
        if width > 16 * kc + 256:  # many equal or clustered scores: the plain partition is cheaper
            cand[s:s + r], vals[s:s + r] = _partition_top(blk, kc)
            continue
        pos = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
        P = np.full((r, width), -np.inf, S.dtype)
        C = np.zeros((r, width), np.int64)
        P[rows, pos] = blk[rows, cols]
        C[rows, pos] = cols
        sel = np.argpartition(P, width - kc, axis=1)[:, width - kc:]
        cand[s:s + r] = np.take_along_axis(C, sel, 1)
        vals[s:s + r] = np.take_along_axis(P, sel, 1)
    return cand, vals


def _partition_top(S: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    n = S.shape[1]
    cand = np.argpartition(S, n - kc, axis=1)[:, n - kc:]
    return cand, np.take_along_axis(S, cand, 1)


def rerank(R: np.ndarray, Q: np.ndarray, cand: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances (or inner products) of each query to its candidates; the best k, sorted.

    Computed from direct differences of the caller's values (no cancellation), in steps of at
    most :data:`RERANK_BYTES` of temporaries whatever k and D.
    """
    m, kc = cand.shape
    D = R.shape[1]
    out_v = np.empty((m, k))
    out_i = np.empty((m, k), np.int64)
    step = max(1, min(m, RERANK_BYTES // (12 * kc * max(D, 1))))
    g = np.empty((step, kc, D), R.dtype)
    buf = np.empty((step, kc, D))
    for s in range(0, m, step):
        c = cand[s:s + step]
        r = len(c)
        np.take(R, c, axis=0, out=g[:r])
        Qb = Q[s:s + step].astype(np.float64, copy=False)
        if metric == "euclidean":
            np.subtract(g[:r], Qb[:, None, :], out=buf[:r])
            v = np.sqrt(np.einsum("ijk,ijk->ij", buf[:r], buf[:r]))
            order = np.argsort(v, axis=1, kind="stable")[:, :k]
        else:
            v = np.einsum("ijk,ik->ij", g[:r], Qb, dtype=np.float64)
            order = np.argsort(-v, axis=1, kind="stable")[:, :k]
        out_v[s:s + step] = np.take_along_axis(v, order, 1)
        out_i[s:s + step] = np.take_along_axis(c, order, 1)
    return out_v, out_i


def trim(cand: np.ndarray, vals: np.ndarray, k: int, q: Side, idx: np.ndarray, ref: Side, D: int,
         u: float, metric: str) -> np.ndarray:
    """The candidates that can still be among the k nearest, judged by their GEMM scores.

    A candidate's score is within ``E(q)`` of the truth, so one whose score trails the k-th best
    by more than ``2E(q)`` has k candidates provably nearer; the rest (the best ``w ≥ k`` by score,
    ``w`` the largest such count in the block) are re-ranked in float64.
    """
    kc = cand.shape[1]
    if kc <= k + 4:
        return cand
    s_k = -np.partition(-vals, k - 1, axis=1)[:, k - 1].astype(np.float64)  # k-th best score
    M_all, d_all = float(ref.tn.max()), float(ref.err.max())
    tail = ref.tail_max if metric == "euclidean" else 0.0
    E = score_error_bound(q.tn[idx], q.err[idx], M_all, d_all, tail, D, u, u if metric == "euclidean" else 0.0)
    E = 2.0 * E * (1 + (D + 8) * 2.0 ** -52) + 8 * U64 * np.abs(s_k)
    keep = vals.astype(np.float64) >= (s_k - 2.0 * E)[:, None]
    w = int(keep.sum(axis=1).max())
    if w >= kc - 2:
        return cand
    sel = np.argpartition(-vals, w - 1, axis=1)[:, :w]
    return np.take_along_axis(cand, sel, 1)


def parallel(fn: Any, starts: range, jobs: int) -> None:
    """Run ``fn(start)`` for every block, one BLAS thread per worker, inside a scoped thread limit."""
    from threadpoolctl import threadpool_limits

    if jobs == 1 or len(starts) == 1:
        with threadpool_limits(limits=jobs, user_api="blas"):
            for s in starts:
                fn(s)
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs) as pool:
        list(pool.map(fn, starts))


def gemm_stage(R: np.ndarray, Q: np.ndarray, k: int, kc: int, metric: str, dtype: Any, jobs: int,
               block_size: int | None, ref: Side | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Side]:
    """One candidate GEMM in ``dtype`` with float64 re-rank and the per-query proof."""
    n, D = R.shape
    kc = min(kc, n)
    centre = centre_of(R) if metric == "euclidean" else None
    if ref is None:
        ref = prepare(R, centre, dtype, "ref")
    self_graph = Q is R
    q = ref if self_graph else prepare(Q, centre, dtype, "query")
    u = U32 if np.dtype(dtype) == np.float32 else U64
    m = Q.shape[0]
    big = float(np.finfo(dtype).max) / (4 * (D + 2))
    if not (np.isfinite(ref.A).all() and np.isfinite(q.A).all()
            and float(ref.tn.max()) * max(float(ref.tn.max()), float(q.tn.max())) + ref.tail_max < big):
        # values this large would overflow the GEMM's dtype: nothing proven here, the next stage
        # (float64, then brute force) answers
        return np.zeros((m, k)), np.zeros((m, k), np.int64), np.zeros(m, bool), ref
    b = block_size or int(np.clip(BLOCK_BYTES // (8 * max(n, 1) * jobs), 8, 4096))
    b = max(1, min(b, -(-m // (2 * jobs)) if jobs > 1 else m))  # ≥ 2 blocks per thread: no straggler
    dist = np.empty((m, k))
    idx = np.empty((m, k), np.int64)
    ok = np.empty(m, bool)
    RT = ref.A.T
    local = threading.local()

    def run(s: int) -> None:
        e = min(s + b, m)
        if not hasattr(local, "S"):
            local.S = np.empty((b, n), dtype)
        blk = q.A[s:e]
        if self_graph and metric == "euclidean":  # the same rounded rows, times 1 for t_r
            blk = blk.copy()
            blk[:, D] = 1.0
        S = np.matmul(blk, RT, out=local.S[: e - s])
        cand, vals = select_top(S, kc)
        rows = np.arange(s, e)
        if kc < n:
            cand = trim(cand, vals, k, q, rows, ref, D, u, metric)
        dist[s:e], idx[s:e] = rerank(R, Q[s:e], cand, k, metric)
        if kc >= n:
            ok[s:e] = True
            return
        s_kc = vals.min(axis=1).astype(np.float64)
        ok[s:e] = certify(dist[s:e, -1], s_kc, q, rows, ref, D, u, u, metric)

    parallel(run, range(0, m, b), jobs)
    return dist, idx, ok, ref


def direct_stage(R: np.ndarray, Q: np.ndarray, k: int, metric: str, jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 brute force by direct differences: the reference answer, for the few unproven queries."""
    m, D = Q.shape
    n = R.shape[0]
    dist = np.empty((m, k))
    idx = np.empty((m, k), np.int64)
    R64 = R.astype(np.float64, copy=False)
    step = max(1, RERANK_BYTES // (8 * n * max(D, 1)))
    chunk = max(1, RERANK_BYTES // (8 * max(D, 1)))

    def run(s: int) -> None:
        for t in range(s, min(s + step, m)):
            q = Q[t].astype(np.float64)
            v = np.empty(n)
            for c in range(0, n, chunk):
                diff = R64[c:c + chunk] - q
                v[c:c + chunk] = np.einsum("ij,ij->i", diff, diff) if metric == "euclidean" else R64[c:c + chunk] @ q
            if metric == "euclidean":
                o = np.argsort(v, kind="stable")[:k]
                dist[t], idx[t] = np.sqrt(v[o]), o
            else:
                o = np.argsort(-v, kind="stable")[:k]
                dist[t], idx[t] = v[o], o

    parallel(run, range(0, m, step), jobs)
    return dist, idx


def exact_knn(R: np.ndarray, Q: np.ndarray, k: int, *, metric: str = "euclidean", n_jobs: int | None = None,
              block_size: int | None = None, first: tuple | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Proven exact top-k of ``Q`` in ``R``; ``Q is R`` for the self graph (self included in k).

    Parameters
    ----------
    R, Q : ndarray
        Reference points and queries (float32 or float64, same columns).
    k : int
        Neighbours per query.
    metric : {"euclidean", "ip"}
    n_jobs, block_size
        Threads (default: the usable cores) and queries per GEMM block.
    first : tuple (dist, idx, ok), optional
        A first stage computed elsewhere (certified bfloat16, PCA-pruned): only the rows it did
        not prove are searched here.

    Returns
    -------
    dist, idx : ndarray of shape (m, k)
        Distances ascending (inner products descending), float64, and row numbers.
    stages : dict
        Queries settled by each stage (``"first"``, ``"float32"``, ``"float32-wide"``,
        ``"float64"``, ``"brute-float64"``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    >>> d, i, stages = exact_knn(X, X, 3)
    >>> bool((i[:, 0] == np.arange(300)).all()), stages["float32"]
    (True, 300)
    """
    jobs = usable_cores(n_jobs)
    n, m = R.shape[0], Q.shape[0]
    kc0 = min(n, k + max(8, k // 4))
    plan = [("float32", np.float32, kc0), ("float32-wide", np.float32, min(n, 4 * kc0 + 64)),
            ("float64", np.float64, kc0), ("float64-wide", np.float64, min(n, 4 * kc0 + 64))]
    stages: dict[str, int] = {}
    if first is not None:
        dist, idx, ok = first
        stages["first"] = int(ok.sum())
    else:
        dist, idx, ok = np.empty((m, k)), np.empty((m, k), np.int64), np.zeros(m, bool)
    ref_cache: dict = {}
    for name, dtype, kc in plan:
        todo = np.flatnonzero(~ok)
        if not len(todo):
            break
        sub = Q if len(todo) == m else Q[todo]
        d, i, good, ref = gemm_stage(R, sub, k, kc, metric, dtype, jobs, block_size,
                                     ref_cache.get(np.dtype(dtype).name))
        ref_cache[np.dtype(dtype).name] = ref
        dist[todo], idx[todo], ok[todo] = d, i, good
        stages[name] = int(good.sum())
    todo = np.flatnonzero(~ok)
    if len(todo):
        dist[todo], idx[todo] = direct_stage(R, Q[todo], k, metric, jobs)
        stages["brute-float64"] = len(todo)
    return dist, idx, stages
