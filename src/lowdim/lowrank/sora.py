"""SoRA: LoRA with a sparse gate that learns each module's rank (Ding et al., EMNLP 2023).

Each target ``nn.Linear`` gets ΔW x = B · diag(g) · A x · (α / r) with A (r × n, Kaiming-uniform),
B (m × r, zeros) and the gate g (r, ones), as in the reference code (TsinghuaC3I/SoRA). A and B
train with the user's optimizer; g trains in its own :class:`GateOptimizer`: an Adam step, then
the L1 proximal operator (soft-thresholding) g ← sign(g)·max(|g| − lr·λ, 0), which puts exact
zeros into g. A zero gate makes its rank-one component inert; :func:`export_lora` folds g into A,
drops the zero components and writes a plain PEFT LoRA with the learned ``rank_pattern`` whose
outputs equal the gated model's.

Pitfall (reported in issue 14): the reference divides the L1 term by the total number of gates, so
the same λ prunes very differently at different model sizes (with its constants a 16-gate toy
over-prunes). Here ``lam`` is the strength **per gate**: the threshold each gate sees is lr·λ
whatever the size. Because Adam's step on a gate is about lr in size whatever its gradient, λ ≈ 1
is where pruning starts (measured on :mod:`lowdim.lowrank.digits_bed`, r = 8, 80 epochs: λ = 0.5
and 0.8 kept all 24 ranks, λ = 1 kept 22, λ = 1.5 kept 18 at a 5-point accuracy cost).
A zeroed gate can revive (its gradient can push it back out of the dead zone), so count the zeros
at the end (:func:`sora_ranks`), not when they first appear.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["GateOptimizer", "SoRALinear", "apply_sora", "export_lora", "gate_parameters", "sora_ranks"]


class SoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus the gated low-rank update B·diag(g)·A·(α/r)."""

    def __init__(self, base: Any, r: int, alpha: float | None = None) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise LowdimError(f"SoRA wraps nn.Linear modules, got {type(base).__name__}")
        if r < 1:
            raise LowdimError(f"r={r} must be a positive integer")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.r = int(r)
        self.alpha = float(alpha if alpha is not None else r)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        self.gate = nn.Parameter(torch.ones(r, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def forward(self, x: Any) -> Any:
        z = torch.nn.functional.linear(x, self.lora_A) * self.gate
        return self.base(x) + torch.nn.functional.linear(z, self.lora_B) * self.scaling


def apply_sora(model: Any, targets: str | Sequence[str] | dict[str, int] = "all-linear", *, r: int = 8,
               alpha: float | None = None) -> list[str]:
    """Replace the target Linear modules of ``model`` by :class:`SoRALinear` (in place).

    Every other parameter is frozen. ``targets`` may be a ``{name: r}`` dict (e.g. a
    :class:`RankPlan`'s nonzero ranks). ``alpha`` defaults to r (scaling 1).

    Returns
    -------
    list of str
        The wrapped module names.
    """
    from lowdim.lowrank.profile import find_targets

    if isinstance(targets, dict):
        ranks = {n: int(k) for n, k in targets.items() if int(k) > 0}
        names = list(ranks)
    else:
        names = find_targets(model, targets)
        ranks = dict.fromkeys(names, int(r))
    mods = dict(model.named_modules())
    missing = [n for n in names if n not in mods]
    if missing:
        raise LowdimError(f"modules {missing[:5]} are not in {type(model).__name__}")
    for p in model.parameters():
        p.requires_grad_(False)
    for n in names:
        parent, _, leaf = n.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        setattr(holder, leaf, SoRALinear(mods[n], ranks[n], alpha if alpha is not None else ranks[n]))
    return names


def _sora_modules(model: Any) -> dict[str, SoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, SoRALinear)}


def gate_parameters(model: Any) -> list[Any]:
    """The gates (train them with :class:`GateOptimizer`, the rest with any optimizer)."""
    return [m.gate for m in _sora_modules(model).values()]


class GateOptimizer:
    """Adam on the gates followed by the L1 proximal step with strength ``lam`` per gate.

    Parameters
    ----------
    gates : list of Parameter
    lr : float, default=1e-3
    lam : float, default=1e-3
        Per-gate L1 strength λ: after each step every gate is soft-thresholded by ``lr · lam``.

    Examples
    --------
    >>> g = torch.nn.Parameter(torch.tensor([1.0, 0.001, -0.5]))
    >>> g.grad = torch.zeros(3)
    >>> opt = GateOptimizer([g], lr=0.1, lam=0.02)
    >>> opt.step(); [round(v, 6) for v in g.data.tolist()]  # zero gradient: only the shrinkage by 0.1 * 0.02
    [0.998, 0.0, -0.498]
    """

    def __init__(self, gates: Sequence[Any], *, lr: float = 1e-3, lam: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999)) -> None:
        gates = list(gates)
        if not gates:
            raise LowdimError("no gates to optimise; call apply_sora(model, ...) first")
        if lam < 0 or lr <= 0:
            raise LowdimError(f"lr={lr} must be positive and lam={lam} non-negative")
        self.gates, self.lr, self.lam = gates, float(lr), float(lam)
        self.adam = torch.optim.Adam(gates, lr=lr, betas=betas)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.adam.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        if any(g.grad is not None and bool(g.grad.abs().sum() > 0) for g in self.gates):
            self.adam.step()
        t = self.lr * self.lam
        for g in self.gates:
            g.copy_(torch.sign(g) * torch.clamp(g.abs() - t, min=0.0))


def sora_ranks(model: Any) -> dict[str, int]:
    """Nonzero gates per SoRA module: the learned ranks (count them at the end of training)."""
    return {n: int((m.gate.detach() != 0).sum()) for n, m in _sora_modules(model).items()}


def export_lora(model: Any) -> tuple[Any, Any]:
    """A plain PEFT LoRA model equal to the gated model, and the :class:`RankPlan` of learned ranks.

    The gate and the scaling are folded into A (A' = diag(g)·A·α/r, scaling 1), zero components
    are dropped, and modules with no surviving component get no adapter. The SoRA model is not
    changed (a deep copy is converted).

    Returns
    -------
    (peft.PeftModel, RankPlan)
    """
    peft = require("peft", "lowrank")
    from lowdim.lowrank.plan import RankPlan

    sora = _sora_modules(model)
    if not sora:
        raise LowdimError(f"{type(model).__name__} has no SoRA modules; call apply_sora(model, ...) first")
    base = copy.deepcopy(model)
    ranks, shapes, kept = {}, {}, {}
    for n, m in _sora_modules(base).items():
        idx = torch.nonzero(m.gate.detach() != 0).flatten()
        ranks[n], shapes[n] = len(idx), (m.base.out_features, m.base.in_features)
        kept[n] = ((m.lora_A.detach()[idx] * (m.gate.detach()[idx] * m.scaling)[:, None]),
                   m.lora_B.detach()[:, idx])
        parent, _, leaf = n.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, leaf, m.base)
    plan = RankPlan(ranks=ranks, shapes=shapes, signal="sora gates", rule="learned")
    if not plan.target_modules:
        raise LowdimError("every SoRA gate is zero: the learned update is empty (lower lam)")
    for p in base.parameters():
        p.requires_grad_(False)
    pm = peft.get_peft_model(base, plan.to_lora_config(base, alpha_per_rank=1.0))
    with torch.no_grad():
        for n in plan.target_modules:
            layer = pm.base_model.model.get_submodule(n)
            A, B = kept[n]
            layer.lora_A["default"].weight.copy_(A)
            layer.lora_B["default"].weight.copy_(B)
    plan.validate(pm)
    return pm, plan
