"""DCT-AdamW: Adam in ``r`` columns of a fixed orthonormal DCT basis, chosen by gradient alignment.

Modoranu, Safaryan, Schultheis, Ryabinin, Chumachenko, Alistarh, "FFT-based Dynamic Subspace
Selection for Low-Rank Adaptive Optimization of Large Language Models" (Trion / DCT-AdamW),
arXiv 2505.17967 (ICLR 2026); reference code IST-DASLab/ISTA-DASLab-Optimizers, ``fft_low_rank``.

For a 2-D parameter ``W`` (``n × m``) with gradient ``G`` the projection side is the smaller
dimension ``k = min(n, m)`` (right when ``n ≥ m``). ``Q`` is the orthonormal DCT-II basis of size
``k`` (column ``j`` is the ``j``-th cosine, ``QᵀQ = I``), so ``G Q`` is the DCT of every row of
``G``. Every ``update_interval`` steps the ``r`` columns with the largest ℓ1 norm of ``G Q``
(right side; rows of ``Qᵀ G`` on the left side) are selected — a sort, no SVD — and Adam runs on
the ``n × r`` (or ``r × m``) projected gradient ``g = G Q_I``; the update is mapped back with
``Q_Iᵀ``. On a refresh the moments are rotated into the new columns with ``R = Q_prevᵀ Q_crt``
(``v`` through ``|v R|``), as in the paper's algorithm; ``rotate=False`` keeps them as they are.
Optional error feedback (``error_feedback=True``) adds the discarded part ``G − g Q_Iᵀ`` to the
next gradient (full-size state; off by default as in the reference).

``Q`` depends only on its size, so it is **cached per size** (and dtype/device) in the optimizer
and shared by all parameters of that size. The reference builds one ``Q`` from the first
parameter it meets and reuses it for every parameter, which is wrong whenever parameters differ
in their smaller dimension; this port does not copy that.

Parameters that are 1-D, whose smaller dimension is ``≤ rank``, or that sit in a parameter group
with ``"rank": 0`` get plain AdamW (a group's ``"rank"`` overrides the optimizer's). The state
holds ``m`` and ``v`` of the projected shape and the ``r`` selected column indices (int64) per
matrix, plus the shared ``Q`` matrices (counted once, under ``optimizer.state['dct_bases']``).

Examples
--------
>>> import torch
>>> from lowdim.lowrank.dct_adamw import DCTAdamW, dct_basis
>>> Q = dct_basis(8)
>>> bool(torch.allclose(Q.T @ Q, torch.eye(8), atol=1e-6))
True
>>> w = torch.nn.Parameter(torch.randn(32, 16))
>>> opt = DCTAdamW([w], lr=1e-2, rank=4)
>>> w.grad = torch.randn(32, 16); opt.step()
>>> tuple(opt.state[w]["exp_avg"].shape), tuple(opt.state[w]["index"].shape)
((32, 4), (4,))
"""

from __future__ import annotations

import math
from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["DCTAdamW", "dct_basis"]

torch = require("torch", "torch")


def dct_basis(n: int, *, dtype: Any = None, device: Any = None) -> Any:
    """Orthonormal DCT-II basis as columns: ``Q[i, j] = c_j cos(π (2i + 1) j / (2n))``.

    ``c_0 = √(1/n)``, ``c_j = √(2/n)``; ``QᵀQ = I``, and ``x @ Q`` is the orthonormal DCT-II of
    the rows of ``x`` (what ``scipy.fft.dct(x, type=2, norm="ortho", axis=-1)`` computes).
    """
    if int(n) < 1:
        raise LowdimError(f"n={n} must be a positive integer")
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    Q = torch.cos(math.pi * (2 * i + 1) * j / (2 * n)) * math.sqrt(2.0 / n)
    Q[:, 0] /= math.sqrt(2.0)
    return Q.to(dtype=dtype or torch.get_default_dtype(), device=device)


class DCTAdamW(torch.optim.Optimizer):
    """AdamW whose matrix moments live in ``rank`` dynamically chosen DCT columns.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate.
    rank : int
        Number ``r`` of DCT columns per matrix.
    update_interval : int
        Steps between column re-selections (``T_u``); the first step always selects.
    betas, eps, weight_decay
        As in :class:`torch.optim.AdamW` (decoupled weight decay).
    rotate : bool
        Rotate the moments into the new columns on a refresh (paper's algorithm).
    error_feedback : bool
        Keep the discarded gradient part and add it to the next gradient.
    norm : float
        ℓp norm used to rank columns (1 in the paper).
    """

    def __init__(self, params: Any, *, lr: float = 1e-3, rank: int, update_interval: int = 200,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, rotate: bool = True, error_feedback: bool = False,
                 norm: float = 1.0) -> None:
        if int(rank) < 1:
            raise LowdimError(f"rank={rank} must be a positive integer")
        if int(update_interval) < 1:
            raise LowdimError(f"update_interval={update_interval} must be >= 1")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.rank, self.update_interval = int(rank), int(update_interval)
        self.rotate, self.error_feedback, self.norm = bool(rotate), bool(error_feedback), float(norm)
        self._bases: dict[tuple[int, Any, Any], Any] = {}
        self.state["dct_bases"] = self._bases  # counted once by optimizer_state_bytes

    def basis(self, n: int, dtype: Any, device: Any) -> Any:
        """The cached DCT basis of size ``n`` (built on first use for that size)."""
        key = (int(n), dtype, str(device))
        if key not in self._bases:
            self._bases[key] = dct_basis(n, dtype=dtype, device=device)
        return self._bases[key]

    @staticmethod
    def _low_rank(p: Any, rank: int) -> bool:
        return rank > 0 and p.ndim == 2 and min(p.shape) > rank

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            rank = int(group.get("rank", self.rank))
            for p in group["params"]:
                if p.grad is None:
                    continue
                if wd:
                    p.mul_(1 - lr * wd)
                st = self.state[p]
                if self._low_rank(p, rank):
                    self._matrix_step(p, st, rank, lr, b1, b2, eps)
                else:
                    self._adam_step(p, st, p.grad, lr, b1, b2, eps)
        return loss

    def _adam_step(self, p: Any, st: dict, g: Any, lr: float, b1: float, b2: float,
                   eps: float) -> None:
        if "step" not in st:
            st["step"] = 0
            st["exp_avg"] = torch.zeros_like(g)
            st["exp_avg_sq"] = torch.zeros_like(g)
        st["step"] += 1
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        bc1, bc2 = 1 - b1 ** st["step"], 1 - b2 ** st["step"]
        upd = (m / bc1) / ((v / bc2).sqrt_() + eps)
        if upd.shape == p.shape:
            p.add_(upd, alpha=-lr)
        else:  # projected update, mapped back by the caller
            st["_update"] = upd

    def _matrix_step(self, p: Any, st: dict, rank: int, lr: float, b1: float, b2: float,
                     eps: float) -> None:
        G = p.grad
        n, m = p.shape
        right = n >= m
        Q = self.basis(min(n, m), G.dtype, G.device)
        if self.error_feedback:
            if "error" not in st:
                st["error"] = torch.zeros_like(G)
            G = G + st["error"]
        step = st.get("step", 0)
        refresh = step % self.update_interval == 0
        if refresh:
            S = G @ Q if right else Q.T @ G
            score = S.norm(p=self.norm, dim=0 if right else 1)
            idx = torch.topk(score, rank, sorted=False).indices.sort().values
            if step > 0 and self.rotate:
                R = Q[:, st["index"]].T @ Q[:, idx]   # (r, r): old coordinates -> new
                for key in ("exp_avg", "exp_avg_sq"):
                    rot = st[key] @ R if right else R.T @ st[key]
                    st[key] = rot.abs_() if key == "exp_avg_sq" else rot
            st["index"] = idx
            g = S[:, idx] if right else S[idx, :]
        else:
            idx = st["index"]
            g = G @ Q[:, idx] if right else Q[:, idx].T @ G
        if self.error_feedback:
            st["error"] = G - (g @ Q[:, idx].T if right else Q[:, idx] @ g)
        self._adam_step(p, st, g, lr, b1, b2, eps)
        u = st.pop("_update")
        p.add_(u @ Q[:, idx].T if right else Q[:, idx] @ u, alpha=-lr)
