"""LOST-style low-rank + channel-sparse layers, and the plain ``W = B A`` baseline (ablation).

LOST: Li, Yin, Shen, Xu, Xu, Huang, Wang, Liu, Wang, "LOST: Low-rank and Sparse Pre-training for
Large Language Models", arXiv 2508.02668. LOST takes the SVD of each initial weight
``W₀ = U Σ Vᵀ``, keeps the dominant ``r`` components as the trainable low-rank factors and builds a
*channel-wise* sparse component from the remaining singular components. This module implements
that reading as an **ablation**, to separate the effect of the SVD initialisation from the effect
of the sparse part:

- ``B = U_r Σ_r^{1/2}``, ``A = Σ_r^{1/2} V_rᵀ`` (``init="svd"``), or Gaussian factors scaled so
  ``Var((BA)_ij)`` equals ``nn.Linear``'s default ``1/(3·in)`` (``init="random"``);
- residual ``E = W₀ − B A = Σ_{i>r} σᵢ uᵢ vᵢᵀ`` (the residual spectrum); the ``c = round(δ·in)``
  input channels (columns) with the largest ``‖E[:, j]‖₂`` form the sparse part ``S = E[:, J]``,
  trained densely on those columns; ``δ = 0`` gives a pure ``W = B A`` layer.

The exact choices of the official code (channel axis, any mixing weights between the two parts)
were not available here; they are documented choices, not the paper's verified settings.

Examples
--------
>>> import torch
>>> from lowdim.lowrank.lost import LOSTLinear
>>> dense = torch.nn.Linear(16, 8)
>>> full = LOSTLinear.from_linear(dense, rank=8, density=0.0)   # rank = min(in, out): exact
>>> x = torch.randn(3, 16)
>>> bool(torch.allclose(full(x), dense(x), atol=1e-5))
True
>>> LOSTLinear.from_linear(dense, rank=2, density=0.25).channels.numel()
4
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["LOSTLinear", "lost_factory", "lowrank_factory"]

torch = require("torch", "torch")
nn = torch.nn


class LOSTLinear(nn.Module):
    """``y = x (B A + S_J)ᵀ + b``: rank-``r`` factors plus dense columns ``J`` (channel sparse).

    Build with :meth:`from_linear`. Parameters ``B`` (out×r), ``A`` (r×in), ``S`` (out×c) and
    ``bias``; buffer ``channels`` (c column indices, fixed).
    """

    def __init__(self, B: Any, A: Any, S: Any, channels: Any, bias: Any) -> None:
        super().__init__()
        self.out_features, self.in_features = B.shape[0], A.shape[1]
        self.rank = A.shape[0]
        self.B, self.A = nn.Parameter(B.clone()), nn.Parameter(A.clone())
        self.S = nn.Parameter(S.clone())
        self.register_buffer("channels", channels.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: Any, *, rank: int, density: float = 0.03, init: str = "svd",
                    generator: Any = None) -> LOSTLinear:
        """Factor ``linear.weight`` into low-rank + channel-sparse parts (see module docstring)."""
        W = linear.weight.detach()
        out, inp = W.shape
        if not 1 <= int(rank) <= min(out, inp):
            raise LowdimError(f"rank={rank} must be in [1, min(in, out)={min(out, inp)}]")
        if not 0.0 <= float(density) < 1.0:
            raise LowdimError(f"density={density} must be in [0, 1)")
        if init not in ("svd", "random"):
            raise LowdimError(f"init={init!r} is not allowed; use 'svd' or 'random'")
        r = int(rank)
        if init == "svd":
            U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
            root = s[:r].sqrt()
            B, A = U[:, :r] * root, root[:, None] * Vh[:r]
        else:
            A = torch.randn(r, inp, generator=generator, dtype=torch.float64) / math.sqrt(inp)
            B = torch.randn(out, r, generator=generator, dtype=torch.float64) / math.sqrt(3 * r)
        c = round(float(density) * inp)
        E = W.double() - B @ A
        J = torch.topk(E.norm(dim=0), c).indices.sort().values if c else torch.zeros(0, dtype=torch.long)
        S = E[:, J]
        if init == "random":
            S = torch.zeros_like(S)  # no residual spectrum to take it from
        f = W.dtype
        return cls(B.to(f), A.to(f), S.to(f), J, linear.bias)

    def weight(self) -> Any:
        """Effective dense weight ``B A + S`` (S placed in its columns)."""
        W = self.B @ self.A
        if self.channels.numel():
            W = W.index_add(1, self.channels, self.S)
        return W

    def forward(self, x: Any) -> Any:
        return nn.functional.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, channels={self.channels.numel()}")


def lost_factory(*, rank: int, density: float = 0.03, init: str = "svd",
                 seed: int = 0) -> Callable[[int, int, str], Any]:
    """A ``linear_factory``: ``nn.Linear`` (default init) converted by :meth:`LOSTLinear.from_linear`."""
    g = torch.Generator().manual_seed(seed)

    def make(i: int, o: int, name: str) -> Any:
        return LOSTLinear.from_linear(nn.Linear(i, o), rank=min(rank, i, o), density=density,
                                      init=init, generator=g)

    return make


def lowrank_factory(*, rank: int, init: str = "random", seed: int = 0) -> Callable[[int, int, str], Any]:
    """The pure ``W = B A`` baseline (``density = 0``), random or SVD-truncated init."""
    return lost_factory(rank=rank, density=0.0, init=init, seed=seed)
