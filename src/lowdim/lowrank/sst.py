"""Sparse Spectral Training (SST).

Zhao, Zhang, Li, Liu, Cannistraci, "Sparse Spectral Training and Inference on Euclidean and
Hyperbolic Neural Networks", arXiv 2405.15481 (ICLR 2025 workshop SLLM).

Each linear weight is kept in spectral form ``W = U diag(σ) Vᵀ`` taken from the SVD of the
ordinary initial weight, so the function at initialisation is unchanged (the paper's "zero
distortion"). Training proceeds in rounds of ``round_steps`` optimizer steps:

- **all** singular values ``σ`` are trained every step with their ordinary gradient
  ``∂L/∂σᵢ = uᵢᵀ G vᵢ`` (``G = ∂L/∂W``) and projected onto ``σ ≥ 0`` after each step;
- only ``r`` singular-vector pairs, sampled at the start of the round **without replacement with
  probability ∝ σ** (multinomial), are trained, with the *enhanced* gradient that leaves out the
  factor ``σᵢ``: ``∂̃L/∂uᵢ = G vᵢ``, ``∂̃L/∂vᵢ = Gᵀ uᵢ``; the other vectors are frozen buffers, so
  the optimizer holds state for ``r (m + n) + min(m, n)`` numbers per layer;
- at the end of each round the trained vectors are written back and, every ``resvd_every``
  rounds, ``W`` is re-factorised by a fresh SVD (``U, σ, V`` become orthonormal again and the
  function is unchanged up to rounding); the optimizer state of the sampled vectors is reset for
  the next round (and of ``σ`` after a re-SVD, whose order changes).

Use :func:`sst_factory` as the bed's ``linear_factory`` and :class:`SSTScheduler` as its
``on_step`` hook (:func:`sst_on_step` builds both).

Examples
--------
>>> import torch
>>> from lowdim.lowrank.sst import SSTLinear
>>> dense = torch.nn.Linear(16, 8)
>>> layer = SSTLinear.from_linear(dense, rank=2)
>>> x = torch.randn(4, 16)
>>> bool(torch.allclose(layer(x), dense(x), atol=1e-5))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["SSTLinear", "SSTScheduler", "sst_factory", "sst_on_step"]

torch = require("torch", "torch")
nn = torch.nn


class _SpectralProduct(torch.autograd.Function):
    """``W = U diag(s) Vh`` whose backward gives the σ-free (enhanced) gradient to U and Vh."""

    @staticmethod
    def forward(ctx: Any, U: Any, s: Any, Vh: Any) -> Any:
        ctx.save_for_backward(U, s, Vh)
        return (U * s) @ Vh

    @staticmethod
    def backward(ctx: Any, G: Any) -> tuple[Any, Any, Any]:
        U, s, Vh = ctx.saved_tensors
        UtG = U.T @ G                                   # (k, n)
        gU = G @ Vh.T if ctx.needs_input_grad[0] else None   # enhanced: no factor s
        gs = (UtG * Vh).sum(1) if ctx.needs_input_grad[1] else None
        gVh = UtG if ctx.needs_input_grad[2] else None        # enhanced: no factor s
        return gU, gs, gVh


class SSTLinear(nn.Module):
    """Linear layer in spectral form with ``rank`` trainable singular-vector pairs per round.

    Build it with :meth:`from_linear` (SVD of an existing weight). Buffers ``U`` (out×k),
    ``Vh`` (k×in) hold all singular vectors; parameters ``s`` (k), ``U_act`` (out×r),
    ``Vh_act`` (r×in) and ``bias`` are trained; ``index`` (r) names the active pairs.
    """

    def __init__(self, U: Any, s: Any, Vh: Any, bias: Any, *, rank: int) -> None:
        super().__init__()
        k = s.numel()
        if not 1 <= int(rank) <= k:
            raise LowdimError(f"rank={rank} must be in [1, min(in, out)={k}]")
        self.rank = int(rank)
        self.out_features, self.in_features = U.shape[0], Vh.shape[1]
        self.register_buffer("U", U.clone())
        self.register_buffer("Vh", Vh.clone())
        self.s = nn.Parameter(s.clone())
        self.register_buffer("index", torch.arange(self.rank))
        self.U_act = nn.Parameter(U[:, :self.rank].clone())
        self.Vh_act = nn.Parameter(Vh[:self.rank].clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: Any, *, rank: int) -> SSTLinear:
        """Spectral form of ``linear.weight`` from its SVD (float64, so the function is kept)."""
        W = linear.weight.detach()
        U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        return cls(U.to(W.dtype), s.to(W.dtype), Vh.to(W.dtype), linear.bias, rank=rank)

    def weight(self) -> Any:
        """The current dense weight ``U diag(σ) Vᵀ`` (active pairs taken from the parameters)."""
        U = self.U.index_copy(1, self.index, self.U_act)
        Vh = self.Vh.index_copy(0, self.index, self.Vh_act)
        return _SpectralProduct.apply(U, self.s, Vh)

    def forward(self, x: Any) -> Any:
        return nn.functional.linear(x, self.weight(), self.bias)

    @torch.no_grad()
    def commit(self) -> None:
        """Write the active vectors back into ``U`` and ``Vh``."""
        self.U.index_copy_(1, self.index, self.U_act)
        self.Vh.index_copy_(0, self.index, self.Vh_act)

    @torch.no_grad()
    def resvd(self) -> None:
        """Re-factorise ``W`` by SVD: orthonormal ``U, V`` again, same function."""
        self.commit()
        W = (self.U.double() * self.s.double()) @ self.Vh.double()
        U, s, Vh = torch.linalg.svd(W, full_matrices=False)
        self.U.copy_(U)
        self.Vh.copy_(Vh)
        self.s.copy_(s)
        self.U_act.copy_(self.U.index_select(1, self.index))
        self.Vh_act.copy_(self.Vh.index_select(0, self.index))

    @torch.no_grad()
    def resample(self, generator: Any = None) -> None:
        """Commit, then draw ``rank`` pairs without replacement with probability ∝ σ."""
        self.commit()
        w = self.s.detach().clamp_min(0).double().cpu() + 1e-12   # a CPU generator draws
        idx = torch.multinomial(w, self.rank, replacement=False, generator=generator).sort().values
        idx = idx.to(self.index.device)
        self.index.copy_(idx)
        self.U_act.copy_(self.U.index_select(1, idx))
        self.Vh_act.copy_(self.Vh.index_select(0, idx))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, k={self.s.numel()}")


def _reset_state(optimizer: Any, params: Iterable[Any]) -> None:
    for p in params:
        if p in optimizer.state:
            optimizer.state[p] = {}


class SSTScheduler:
    """Round bookkeeping for every :class:`SSTLinear` in a model: ``σ ≥ 0``, resample, re-SVD.

    Call it after every optimizer step as ``scheduler(step, model, optimizer)`` (the bed's
    ``on_step`` signature). The first round's pairs are sampled on the first call.
    """

    def __init__(self, *, round_steps: int = 50, resvd_every: int = 1, seed: int = 0) -> None:
        if int(round_steps) < 1 or int(resvd_every) < 1:
            raise LowdimError(f"round_steps={round_steps}, resvd_every={resvd_every} must be >= 1")
        self.round_steps, self.resvd_every = int(round_steps), int(resvd_every)
        self.generator = torch.Generator().manual_seed(seed)
        self.rounds = 0

    def __call__(self, step: int, model: Any, optimizer: Any) -> None:
        layers = [m for m in model.modules() if isinstance(m, SSTLinear)]
        with torch.no_grad():
            for m in layers:
                m.s.clamp_(min=0.0)
        if (step + 1) % self.round_steps:
            return
        self.rounds += 1
        resvd = self.rounds % self.resvd_every == 0
        for m in layers:
            if resvd:
                m.resvd()
                _reset_state(optimizer, [m.s])
            m.resample(self.generator)
            _reset_state(optimizer, [m.U_act, m.Vh_act])


def sst_factory(*, rank: int, seed: int = 0) -> Callable[[int, int, str], Any]:
    """A ``linear_factory`` building ``nn.Linear`` (default init) and converting it to SST.

    The first round's ``rank`` pairs are sampled ∝ σ from a generator seeded by ``seed``.
    """
    g = torch.Generator().manual_seed(seed)

    def make(i: int, o: int, name: str) -> Any:
        layer = SSTLinear.from_linear(nn.Linear(i, o), rank=min(rank, i, o))
        layer.resample(g)
        return layer

    return make


def sst_on_step(*, round_steps: int = 50, resvd_every: int = 1, seed: int = 0) -> SSTScheduler:
    """The ``on_step`` hook for the bed (an :class:`SSTScheduler`)."""
    return SSTScheduler(round_steps=round_steps, resvd_every=resvd_every, seed=seed)
