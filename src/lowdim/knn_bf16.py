"""Exact Euclidean k-NN on CPUs with bfloat16 dot-product instructions (AVX512-BF16, AMX).

A bfloat16 GEMM runs 2–3× faster than a float32 one on such CPUs, but rounds every coordinate to
8 significant bits. We use it only to *propose* candidates and then *certify* the answer:

1. centre the data on a robust centre (:func:`lowdim.knn_exact.centre_of`) and round to bfloat16: ``x̃ = bf16(x − c)``,
   keeping the exact rounding error ``δx = (x − c) − x̃`` (float64);
2. scores ``ŝ(q, r) = q̃·r̃ − ½‖r‖²`` from one bfloat16 GEMM (the norm term is carried in two
   extra bfloat16 columns, hi + lo), top-``kc`` candidates per query by ``torch.topk``;
3. float64 distances (direct differences) to *every* candidate, sorted: the query's k-th distance
   ``d_k`` (:func:`lowdim.knn_exact.rerank`; nothing is pre-ranked away);
4. for every point outside the candidates, ``q·r − ½‖r‖² ≤ f(ŝ_kc) + E(q)`` where ``ŝ_kc`` is the
   smallest candidate score, ``f(x) = x + 2⁻⁸|x|`` covers the bfloat16 rounding of the GEMM's
   output, and ``E(q) = ‖q̃‖·max‖δr‖ + ‖δq‖·max‖r̃‖ + ‖δq‖·max‖δr‖ + max|½‖r‖² − hi − lo| + γ·(…)``
   covers the inputs' rounding and float32 accumulation (γ = (D + 2)·2⁻²⁴, Higham's bound). Since
   ``‖q − r‖² = ‖q − c‖² − 2(q·r − ½‖r‖²)`` (centred), no outside point can be nearer than
   ``d_k`` when ``d_k² ≤ ‖q − c‖² − 2(f(ŝ_kc) + E(q))``;
5. queries that fail the test are searched again by :func:`lowdim.knn_exact.exact_knn`.

The result is the exact k-NN (up to ties at the k-th distance), at bfloat16 speed when the data
have enough contrast between the k-th and the kc-th neighbour, which is the common case.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np

from lowdim.knn_exact import centre_of, rerank

__all__ = ["bf16_fast", "bf16_knn", "score_error_bound"]

_U_BF16 = 2.0 ** -9  # unit roundoff of bfloat16 (round to nearest)


@lru_cache(maxsize=1)
def bf16_fast() -> bool:
    """True when torch is importable and the CPU has native bfloat16 dot products.

    ``LOWDIM_BF16=0`` / ``=1`` in the environment forces the answer.
    """
    env = os.environ.get("LOWDIM_BF16")
    if env in ("0", "1"):
        return env == "1"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    if " avx512_bf16" not in flags and " amx_bf16" not in flags:
        return False
    import importlib.util

    return importlib.util.find_spec("torch") is not None  # found, not imported: imports cost seconds


def _prepare(X: np.ndarray, centre: np.ndarray, tail: str, torch: Any) -> tuple:
    """bf16 of the centred rows with two extra columns, plus exact norms and error norms."""
    n, D = X.shape
    out = torch.empty((n, D + 2), dtype=torch.bfloat16)
    sq = np.empty(n)
    err = np.empty(n)
    rtn = np.empty(n)
    tail_err = np.zeros(n)
    step = max(1, (4 << 20) // max(D, 1))  # rows per float64 chunk: ≤ 32 MB of temporaries
    for s in range(0, n, step):
        xc = X[s:s + step].astype(np.float64) - centre
        xb = torch.from_numpy(xc.astype(np.float32)).to(torch.bfloat16)
        xb64 = xb.to(torch.float64).numpy()
        sq[s:s + step] = np.einsum("ij,ij->i", xc, xc)
        d = xc - xb64
        # rounding to bf16 (exact) plus the float64 centring, ≤ 2⁻⁵³‖x − c‖ (charged twice for safety)
        err[s:s + step] = np.sqrt(np.einsum("ij,ij->i", d, d)) + 2.0 ** -52 * np.sqrt(sq[s:s + step])
        rtn[s:s + step] = np.sqrt(np.einsum("ij,ij->i", xb64, xb64))
        out[s:s + step, :D] = xb
        if tail == "norm":  # −½‖r‖² = hi + lo in bfloat16
            v = torch.from_numpy(-0.5 * sq[s:s + step])
            hi = v.to(torch.bfloat16)
            lo = (v - hi.to(torch.float64)).to(torch.bfloat16)
            out[s:s + step, D] = hi
            out[s:s + step, D + 1] = lo
            # hi + lo's residual, plus the float64 sum of squares' own error (D + 2)·2⁻⁵³·|v|
            tail_err[s:s + step] = (np.abs(v.numpy() - hi.to(torch.float64).numpy() - lo.to(torch.float64).numpy())
                                    + (D + 2) * 2.0 ** -53 * np.abs(v.numpy()))
        else:  # query side: the two columns multiply hi and lo by exactly 1
            out[s:s + step, D:] = 1.0
    return out, sq, err, rtn, tail_err


def score_error_bound(q_tn: np.ndarray, q_err: np.ndarray, max_err: float, max_tn: float, max_tail: float,
                      max_half: float, D: int) -> np.ndarray:
    """Per-query bound of ``|(q·r − ½‖r‖²) − fp32-accumulated (q̃·r̃ + hi + lo)|`` over every r.

    Inputs' rounding: ``q·r − q̃·r̃ = q̃·δr + δq·r̃ + δq·δr`` (Cauchy–Schwarz on each term); the
    norm columns' residual ``max_tail``; float32 accumulation of D + 2 exact products:
    ``γ·Σ|terms|`` with ``γ = n·2⁻²⁴ / (1 − n·2⁻²⁴)`` (Higham, Thm 3.1), plus products flushed to
    zero below 2⁻¹²⁶ by the bf16 dot-product instructions, and inputs below 2⁻¹²⁶ that they read as
    zero: each lost product is at most ``|q_i|·2⁻¹²⁶`` (or ``|r_i|·2⁻¹²⁶``), ``√n·(‖q̃‖ + max‖r̃‖)·2⁻¹²⁶`` in all.
    """
    n = D + 2
    gamma = n * 2.0 ** -24 / (1 - n * 2.0 ** -24)
    return (q_tn * max_err + q_err * max_tn + q_err * max_err + max_tail
            + gamma * (q_tn * max_tn + max_half) + n * 2.0 ** -126
            + np.sqrt(n) * (q_tn + max_tn) * 2.0 ** -126)  # inputs below 2⁻¹²⁶ read as zero (DAZ)


def bf16_knn(R: np.ndarray, Q: np.ndarray, k: int, *, block_size: int | None = None,
             margin: int | None = None, n_jobs: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Euclidean k-NN of ``Q`` in ``R`` with certified bfloat16 candidates.

    Parameters
    ----------
    R, Q : ndarray of shape (n, D), (m, D)
        Reference points and queries (``Q is R`` for the self graph; the caller drops self).
    k : int
        Neighbours per query (self included when ``Q is R``).
    block_size : int, optional
        Queries per GEMM block (default: a ~256 MB bfloat16 score block).
    margin : int, optional
        Extra candidates per query beyond ``k`` (default ``max(8, k)``).
    n_jobs : int, optional
        torch threads for the call (default: the usable cores); the caller's setting is restored.

    Returns
    -------
    distances : ndarray of shape (m, k), float64, ascending
    indices : ndarray of shape (m, k)
    certified : ndarray of bool, shape (m,)
        Rows for which the bound proved the answer exact. The others hold the best candidates
        found and must be searched again exactly (:func:`lowdim.neighbors.knn_search` does).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(2000, 64))
    >>> d, i, ok = bf16_knn(X, X, 5)
    >>> bool(ok.all()), bool((i[:, 0] == np.arange(2000)).all())
    (True, True)
    """
    import torch

    from lowdim.knn_exact import usable_cores

    old_threads = torch.get_num_threads()
    torch.set_num_threads(usable_cores(n_jobs))
    try:
        return _bf16_knn(torch, R, Q, k, block_size, margin)
    finally:
        torch.set_num_threads(old_threads)


def _bf16_knn(torch: Any, R: np.ndarray, Q: np.ndarray, k: int, block_size: int | None,
              margin: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, D = R.shape
    kc = min(n, k + (max(8, k) if margin is None else int(margin)))
    centre = centre_of(R)
    Rb, r_sq, r_err, r_tn, r_tail = _prepare(R, centre, "norm", torch)
    if Q is R:
        Qb = Rb.clone()
        Qb[:, D:] = 1.0
        q_sq, q_err, q_tn = r_sq, r_err, r_tn
    else:
        Qb, q_sq, q_err, q_tn, _ = _prepare(Q, centre, "one", torch)
    max_err, max_tn = float(r_err.max()), float(r_tn.max())
    max_tail = float(r_tail.max())
    max_half = float(0.5 * r_sq.max()) * (1 + 2.0 ** -7)  # |hi| + |lo| ≤ ½‖r‖² (1 + 2u)
    # bound of |(q·r − ½‖r‖²) − (q̃·r̃ + hi + lo)| for every r, per query, plus fp32 accumulation
    E = score_error_bound(q_tn, q_err, max_err, max_tn, max_tail, max_half, D)
    m = Q.shape[0]
    b = int(block_size or np.clip(128_000_000 // max(n, 1), 64, 4096))
    dist = np.empty((m, k))
    idx = np.empty((m, k), np.int64)
    ok = np.empty(m, bool)
    RbT = Rb.T
    for s in range(0, m, b):
        e = min(s + b, m)
        S = Qb[s:e] @ RbT
        top = torch.topk(S, kc, dim=1, sorted=False)
        del S
        cand = top.indices.numpy()
        s_kc = top.values.min(dim=1).values.to(torch.float64).numpy()
        # float64 distances to every candidate: no pre-rank drops a point the bound has not covered
        dist[s:e], idx[s:e] = rerank(R, Q[s:e], cand, k, "euclidean")
        f = s_kc + (2 * _U_BF16 / (1 - _U_BF16)) * np.abs(s_kc)
        bound_sq = q_sq[s:e] - 2.0 * (f + E[s:e])
        dk2 = dist[s:e, -1] ** 2
        # float64 evaluation of ‖q − c‖², d_k and the bound: relative (D + 8)·2⁻⁵² each
        slack = (D + 8) * 2.0 ** -52
        bound_sq -= slack * (q_sq[s:e] + 2 * np.abs(f) + 2 * E[s:e])
        ok[s:e] = dk2 * (1 + slack) <= bound_sq if kc < n else True
    return dist, idx, ok

