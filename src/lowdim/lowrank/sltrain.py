"""SLTrain: a sparse plus low-rank linear layer for pretraining.

Han, Jawanpuria, Ramamurthy, Mishra, "SLTrain: a sparse plus low-rank approach for parameter and
memory efficient pretraining", NeurIPS 2024 (arXiv 2406.02214; reference code andyjm3/SLTrain).

The layer computes ``y = x ((α/r) B A + S)ᵀ + b`` with ``B ∈ R^{out×r}`` (zero at init),
``A ∈ R^{r×in}`` (Kaiming-uniform), and ``S`` sparse on a **fixed random support** of
``round(δ·out·in)`` entries drawn once at construction (uniform without replacement, sorted);
only the support's *values* are trained (uniform in ±1/√in at init), the support itself is a
buffer and never changes. The reference needs a C++ extension; here the sparse part is a
pure-PyTorch scatter of the values into a dense ``out×in`` matrix, which autograd differentiates
as a gather of the dense gradient at the support — the same gradient, at the memory of one dense
weight during the step (the reference's extension avoids that at scale; at toy scale it is
irrelevant).

Defaults follow the reference's pretraining scripts: ``δ = 0.03``, ``α = 32``.

Examples
--------
>>> import torch
>>> from lowdim.lowrank.sltrain import SLTrainLinear
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> layer = SLTrainLinear(64, 32, rank=8, density=0.03)
>>> layer.sparse_index.numel(), layer(torch.randn(5, 64)).shape
(61, torch.Size([5, 32]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["SLTrainLinear", "sltrain_factory"]

torch = require("torch", "torch")
nn = torch.nn


class SLTrainLinear(nn.Module):
    """``y = x ((α/r)·B A + S)ᵀ + b`` with ``S`` on a fixed random support of density ``δ``.

    Parameters
    ----------
    in_features, out_features : int
        Shape of the dense weight it replaces (``out × in``).
    rank : int
        Rank ``r`` of ``B A``.
    density : float
        Fraction ``δ`` of the ``out·in`` entries in the sparse support, in (0, 1).
    alpha : float
        Scale numerator: the low-rank term is multiplied by ``alpha / rank``.
    bias : bool
        Learn an additive bias.
    generator : torch.Generator, optional
        Source of the support and the initial values (default: torch's global generator).
    """

    def __init__(self, in_features: int, out_features: int, *, rank: int, density: float = 0.03,
                 alpha: float = 32.0, bias: bool = True,
                 generator: Any = None) -> None:
        super().__init__()
        if not 1 <= int(rank) <= min(in_features, out_features):
            raise LowdimError(f"rank={rank} must be in [1, min(in_features, out_features)="
                              f"{min(in_features, out_features)}]")
        if not 0.0 < float(density) < 1.0:
            raise LowdimError(f"density={density} must be in (0, 1); SLTrain uses 0.03")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.rank, self.density, self.alpha = int(rank), float(density), float(alpha)
        self.scaling = self.alpha / self.rank
        self.lora_A = nn.Parameter(torch.empty(self.rank, self.in_features))
        bound_a = 1.0 / math.sqrt(self.in_features)  # kaiming_uniform_(a=sqrt(5)) bound
        with torch.no_grad():
            self.lora_A.uniform_(-bound_a, bound_a, generator=generator)
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, self.rank))
        total = self.in_features * self.out_features
        nnz = max(1, round(self.density * total))
        idx = torch.randperm(total, generator=generator)[:nnz].sort().values
        self.register_buffer("sparse_index", idx)
        vals = torch.empty(nnz).uniform_(-bound_a, bound_a, generator=generator)
        self.sparse_value = nn.Parameter(vals)
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features).uniform_(
                -1 / math.sqrt(self.out_features), 1 / math.sqrt(self.out_features),
                generator=generator))
        else:
            self.register_parameter("bias", None)

    def sparse_weight(self) -> Any:
        """The dense ``out × in`` matrix of ``S`` (scatter of the values into the support)."""
        flat = torch.zeros(self.in_features * self.out_features, dtype=self.sparse_value.dtype,
                           device=self.sparse_value.device)
        flat = flat.scatter(0, self.sparse_index, self.sparse_value)
        return flat.view(self.out_features, self.in_features)

    def weight(self) -> Any:
        """The effective dense weight ``(α/r)·B A + S``."""
        return self.scaling * (self.lora_B @ self.lora_A) + self.sparse_weight()

    def forward(self, x: Any) -> Any:
        return nn.functional.linear(x, self.weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, density={self.density}, alpha={self.alpha}")


def sltrain_factory(*, rank: int, density: float = 0.03, alpha: float = 32.0,
                    seed: int = 0) -> Callable[[int, int, str], Any]:
    """A ``linear_factory(in, out, name)`` for :class:`~lowdim.lowrank.charlm.CharLMBed`.

    Each layer's support comes from its own generator seeded by ``seed`` and the layer's
    position, so the supports are reproducible and differ between layers.
    """
    count = [0]

    def make(i: int, o: int, name: str) -> Any:
        g = torch.Generator().manual_seed(seed * 100_003 + count[0])
        count[0] += 1
        return SLTrainLinear(i, o, rank=min(rank, i, o), density=density, alpha=alpha,
                             generator=g)

    return make
