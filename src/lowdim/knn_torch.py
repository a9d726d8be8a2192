"""Exact k-NN in torch (CUDA tensors or ``device="cuda"``; CPU tensors with ``backend="torch"``).

The same proven pipeline as :mod:`lowdim.knn_exact`, on the tensor's device: candidates from a
float32 GEMM (TF32 switched off for the call, since it would round the inputs to 10 bits), float64
re-rank by direct differences, the per-query proof of :func:`lowdim.knn_exact.certify`, then more
candidates, a float64 GEMM and float64 brute force for the queries still unproven.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from lowdim.knn_exact import RERANK_BYTES, U32, U64, Side, certify

__all__ = ["torch_knn"]


@contextmanager
def _no_tf32(torch: Any):
    old = torch.backends.cuda.matmul.allow_tf32
    old_prec = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
        torch.set_float32_matmul_precision(old_prec)


def _prepare(torch: Any, X64: Any, dtype: Any, role: str, euclid: bool) -> tuple[Any, Side]:
    Xr = X64.to(dtype)
    d = X64 - Xr.double()
    err = d.square().sum(1).sqrt()
    sq = X64.square().sum(1)
    if euclid:
        err = err + 2 * U64 * sq.sqrt()
    r2 = Xr.double().square().sum(1)
    tail_max = 0.0
    if euclid:
        col = (-0.5 * r2).to(dtype) if role == "ref" else torch.ones_like(r2, dtype=dtype)
        if role == "ref":
            tail_max = float(col.double().abs().max())
        Xr = torch.cat([Xr, col[:, None]], 1)
    side = Side(A=None, tn=r2.sqrt().cpu().numpy(), err=err.cpu().numpy(), sq=sq.cpu().numpy(),
                tail_max=tail_max)
    return Xr, side


def _rerank(torch: Any, R64: Any, Q64: Any, cand: Any, k: int, euclid: bool) -> tuple[Any, Any]:
    m, kc = cand.shape
    step = max(1, 8 * RERANK_BYTES // (16 * kc * max(R64.shape[1], 1)))  # torch: fewer, larger steps
    vs, ids = [], []
    for s in range(0, m, step):
        c = cand[s:s + step]
        if euclid:
            v = (R64[c] - Q64[s:s + step, None, :]).square().sum(-1).sqrt()
            v, o = torch.sort(v, dim=1, stable=True)
        else:
            v = torch.einsum("ijk,ik->ij", R64[c], Q64[s:s + step])
            v, o = torch.sort(v, dim=1, descending=True, stable=True)
        vs.append(v[:, :k])
        ids.append(torch.gather(c, 1, o[:, :k]))
    return torch.cat(vs), torch.cat(ids)


def _stage(torch: Any, R64: Any, Q64: Any, k: int, kc: int, euclid: bool, dtype: Any, centre: Any,
           cache: dict) -> tuple[Any, Any, np.ndarray]:
    n, D = R64.shape
    key = str(dtype)
    if key not in cache:
        cache[key] = _prepare(torch, R64 - centre if euclid else R64, dtype, "ref", euclid)
    Ra, ref = cache[key]
    Qa, q = _prepare(torch, Q64 - centre if euclid else Q64, dtype, "query", euclid)
    u = U32 if dtype == torch.float32 else U64
    big = float(torch.finfo(dtype).max) / (4 * (D + 2))
    if not (bool(torch.isfinite(Ra).all()) and bool(torch.isfinite(Qa).all())
            and float(ref.tn.max()) * max(float(ref.tn.max()), float(q.tn.max())) + ref.tail_max < big):
        m = Q64.shape[0]  # would overflow this dtype: the next stage answers (see knn_exact.gemm_stage)
        z = torch.zeros((m, k), dtype=torch.float64, device=R64.device)
        return z, z.long(), np.zeros(m, bool)
    dev = R64.device
    b = int(np.clip(256_000_000 // max(n, 1), 16, 65536)) if dev.type == "cuda" else int(
        np.clip(16_000_000 // max(n, 1), 16, 4096))
    dist, idx, ok = [], [], []
    metric = "euclidean" if euclid else "ip"
    for s in range(0, Q64.shape[0], b):
        S = Qa[s:s + b] @ Ra.T
        top = torch.topk(S, kc, dim=1)
        del S
        v, i = _rerank(torch, R64, Q64[s:s + b], top.indices, k, euclid)
        dist.append(v)
        idx.append(i)
        if kc >= n:
            ok.append(np.ones(len(v), bool))
            continue
        rows = np.arange(s, s + len(v))
        s_kc = top.values[:, -1].double().cpu().numpy()
        ok.append(certify(v[:, -1].cpu().numpy(), s_kc, q, rows, ref, D, u, u, metric))
    return torch.cat(dist), torch.cat(idx), np.concatenate(ok)


def _brute(torch: Any, R64: Any, Q64: Any, k: int, euclid: bool) -> tuple[Any, Any]:
    n, D = R64.shape
    chunk = max(1, RERANK_BYTES // (8 * n * max(D, 1)))
    vs, ids = [], []
    for s in range(0, Q64.shape[0], chunk):
        q = Q64[s:s + chunk]
        v = ((R64[None] - q[:, None, :]).square().sum(-1) if euclid else q @ R64.T)
        v, o = torch.sort(v, dim=1, descending=not euclid, stable=True)
        vs.append(v[:, :k].sqrt() if euclid else v[:, :k])
        ids.append(o[:, :k])
    return torch.cat(vs), torch.cat(ids)


def torch_knn(R: Any, Q: Any, k: int, metric: str, device: str | None) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """Proven exact top-k of ``Q`` in ``R`` on the tensors' (or ``device``'s) device."""
    from lowdim.errors import require

    torch = require("torch", "torch")
    dev = torch.device(device) if device else (R.device if isinstance(R, torch.Tensor) else torch.device("cpu"))
    R64 = torch.as_tensor(R, device=dev).double()
    Q64 = R64 if Q is R else torch.as_tensor(Q, device=dev).double()
    euclid = metric == "euclidean"
    n, m = R64.shape[0], Q64.shape[0]
    centre = R64[::max(1, n // 4096)].median(0).values if euclid else None  # as knn_exact.centre_of
    kc0 = min(n, k + max(8, k // 4))
    wide = min(n, 4 * kc0 + 64)
    plan = [("float32", torch.float32, kc0), ("float32-wide", torch.float32, wide),
            ("float64", torch.float64, kc0), ("float64-wide", torch.float64, wide)]
    dist = torch.empty((m, k), dtype=torch.float64, device=dev)
    idx = torch.empty((m, k), dtype=torch.int64, device=dev)
    ok = np.zeros(m, bool)
    stages: dict[str, int] = {}
    cache: dict = {}
    with _no_tf32(torch):
        for name, dtype, kc in plan:
            todo = np.flatnonzero(~ok)
            if not len(todo):
                break
            t = torch.as_tensor(todo, device=dev)
            d, i, good = _stage(torch, R64, Q64[t], k, kc, euclid, dtype, centre, cache)
            dist[t], idx[t] = d, i
            ok[todo] = good
            stages[name] = int(good.sum())
        todo = np.flatnonzero(~ok)
        if len(todo):
            t = torch.as_tensor(todo, device=dev)
            dist[t], idx[t] = _brute(torch, R64, Q64[t], k, euclid)
            stages["brute-float64"] = len(todo)
    return dist.cpu().numpy(), idx.cpu().numpy(), f"exact-torch-{dev.type}", stages
