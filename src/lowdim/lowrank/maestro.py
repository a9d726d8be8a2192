"""Maestro: ordered low-rank layers that learn their rank (Horváth et al., ICML 2024).

Each target Linear becomes W = U Vᵀ (U: m × R, V: n × R) and is trained with **ordered
dropout**: each step samples one Maestro layer and a width j ∈ {1, …, R} and also runs the model
with that layer truncated to its first j components, the truncated output distilled from the full
pass (softmax targets for classification; for regression, the data target). A **hierarchical
group lasso** Σ_b ‖(u_b…u_R, v_b…v_R)‖_F pushes the tail to zero, the **importance** of component
i is ‖uᵢ‖·‖vᵢ‖, and **progressive shrinking** masks the trailing components whose importance falls
below ``eps`` × the layer's largest. It serves both for training from scratch (random U, V) and for
compressing a trained model (U, V from the SVD of W, which reproduces it exactly at full width).

For linear maps the ordered-dropout objective is minimised by the nested truncated SVD, so a
linear autoencoder recovers PCA and a factorisation recovers the singular values as importances
(the paper's Theorem 3.1; lowdim's tests use it as an oracle). The issue reported that Adam broke
the ordering (principal angles up to 34°) while SGD, as in the reference notebook
(SamuelHorvath/Maestro-LoD), kept it; ``optimizer="sgd"`` is the default for that reason. With
:func:`nested_loss` (the exact expectation over widths) lowdim measured both recovering PCA on a
16-D planted spectrum (R = 4): SGD 0.71° after 2,000 full-batch steps (23.9° after 600), Adam
0.92° after 600 (``benchmarks/lowrank_targets.py maestro``); the one-width-per-step estimator of
:func:`od_loss` converges more slowly (9.4° after 1,200 SGD steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["MaestroLinear", "apply_maestro", "fit_maestro", "group_lasso", "importances", "maestro_ranks",
           "nested_loss", "od_loss"]


class MaestroLinear(nn.Module):
    """x ↦ U_{:k} V_{:k}ᵀ x + b with k = min(width, keep): ordered low-rank factors.

    ``width`` (None: all) is set by ordered dropout for one forward pass; ``keep`` is the rank
    left after progressive shrinking.
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None, *, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        R = int(rank if rank is not None else min(in_features, out_features))
        if R < 1:
            raise LowdimError(f"rank={rank} must be a positive integer")
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), R
        self.U = nn.Parameter(torch.randn(out_features, R, dtype=dtype) / math.sqrt(max(R, in_features)))
        self.V = nn.Parameter(torch.randn(in_features, R, dtype=dtype) / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype)) if bias else None
        self.width: int | None = None
        self.keep = R

    @classmethod
    def from_linear(cls, linear: Any, rank: int | None = None) -> MaestroLinear:
        """Factors from the SVD of a trained layer: U = U_s √s, V = V_s √s (exact at full rank)."""
        W = linear.weight.detach()
        R = min(W.shape) if rank is None else int(rank)
        new = cls(linear.in_features, linear.out_features, R, bias=linear.bias is not None, dtype=W.dtype)
        Us, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        r = torch.sqrt(s[:R])
        with torch.no_grad():
            new.U.copy_((Us[:, :R] * r).to(W.dtype))
            new.V.copy_((Vh[:R].T * r).to(W.dtype))
            if linear.bias is not None:
                new.bias.copy_(linear.bias.detach())
        return new.to(W.device)

    def active(self) -> int:
        return min(self.keep, self.width) if self.width is not None else self.keep

    def forward(self, x: Any) -> Any:
        k = self.active()
        y = (x @ self.V[:, :k]) @ self.U[:, :k].T
        return y + self.bias if self.bias is not None else y

    def importance(self) -> Any:
        """‖uᵢ‖·‖vᵢ‖ per component (masked components count as 0)."""
        imp = self.U.detach().norm(dim=0) * self.V.detach().norm(dim=0)
        imp[self.keep:] = 0
        return imp

    def shrink(self, eps: float) -> int:
        """Mask the trailing components with importance < eps × the largest; return the new rank."""
        imp = self.importance()
        big = torch.nonzero(imp >= eps * imp.max()).flatten()
        self.keep = int(big.max()) + 1 if len(big) else 1
        return self.keep


def nested_loss(layer: MaestroLinear, x: Any, y: Any) -> Any:
    """The ordered-dropout objective of one layer in expectation: mean over j of ‖y − prefix_j(x)‖².

    Exactly E_j[ loss at width j ] for j uniform on 1…keep (computed with one cumulative sum
    over the components instead of one sampled width), so it has the same minimiser — the nested
    truncated SVD / PCA for linear problems — with no sampling noise.
    """
    k = layer.keep
    c = x @ layer.V[:, :k]  # (batch, k) coordinates
    prefix = torch.cumsum(c[:, :, None] * layer.U[:, :k].T[None], dim=1)  # (batch, k, m): widths 1…k
    if layer.bias is not None:
        prefix = prefix + layer.bias
    return (y[:, None, :] - prefix).pow(2).sum(-1).mean()


def apply_maestro(model: Any, targets: str | Sequence[str] = "all-linear", *, rank: int | None = None,
                  init: str = "svd") -> list[str]:
    """Replace target Linear modules by :class:`MaestroLinear` (in place); ``init`` "svd" or "random"."""
    from lowdim.lowrank.profile import find_targets

    if init not in ("svd", "random"):
        raise LowdimError(f"init={init!r}: choose 'svd' (compress a trained model) or 'random' (from scratch)")
    names = find_targets(model, targets)
    mods = dict(model.named_modules())
    for n in names:
        lin = mods[n]
        if not isinstance(lin, nn.Linear):
            raise LowdimError(f"Maestro factorises nn.Linear; {n!r} is {type(lin).__name__}")
        new = (MaestroLinear.from_linear(lin, rank) if init == "svd" else
               MaestroLinear(lin.in_features, lin.out_features, rank, bias=lin.bias is not None,
                             dtype=lin.weight.dtype).to(lin.weight.device))
        parent, _, leaf = n.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, new)
    return names


def _layers(model: Any) -> dict[str, MaestroLinear]:
    if isinstance(model, MaestroLinear):
        return {"": model}
    return {n: m for n, m in model.named_modules() if isinstance(m, MaestroLinear)}


def importances(model: Any) -> dict[str, list[float]]:
    """``{layer: [‖uᵢ‖·‖vᵢ‖, …]}`` of every Maestro layer."""
    return {n: m.importance().tolist() for n, m in _layers(model).items()}


def maestro_ranks(model: Any) -> dict[str, int]:
    """Rank kept by each Maestro layer after shrinking."""
    return {n: int(m.keep) for n, m in _layers(model).items()}


def group_lasso(model: Any) -> Any:
    """Hierarchical group lasso Σ_layers Σ_b ‖(u_b…u_R, v_b…v_R)‖_F over the kept components."""
    total = 0.0
    for m in _layers(model).values():
        k = m.keep
        sq = m.U[:, :k].pow(2).sum(0) + m.V[:, :k].pow(2).sum(0)
        tails = torch.flip(torch.cumsum(torch.flip(sq, [0]), 0), [0])
        total = total + torch.sqrt(tails + 1e-12).sum()
    return total


def od_loss(model: Any, x: Any, full_out: Any, target: Any, loss_fn: Callable, *, generator: Any,
            distill: bool = True) -> Any:
    """One ordered-dropout term: a random Maestro layer truncated to a random width j.

    With ``distill`` the truncated softmax is fitted to the full pass's (detached) softmax
    (cross-entropy with soft targets); otherwise ``loss_fn(truncated output, target)``.
    """
    layers = list(_layers(model).values())
    m = layers[int(torch.randint(len(layers), (1,), generator=generator))]
    m.width = int(torch.randint(1, m.keep + 1, (1,), generator=generator))
    try:
        out = model(x)
    finally:
        m.width = None
    if distill:
        p = torch.softmax(full_out.detach(), dim=-1)
        return -(p * torch.log_softmax(out, dim=-1)).sum(-1).mean()
    return loss_fn(out, target)


def fit_maestro(model: Any, batches: Iterable[tuple[Any, Any]], *, loss_fn: Callable | None = None,
                lr: float = 0.01, optimizer: str = "sgd", momentum: float = 0.0, lam: float = 0.0,
                distill: bool = True, shrink_every: int | None = None, eps: float = 1e-3,
                seed: int = 0) -> dict[str, Any]:
    """Train with loss(full) + ordered-dropout term + λ·group lasso, shrinking as it goes.

    Parameters
    ----------
    model : nn.Module with Maestro layers (or one :class:`MaestroLinear`)
    batches : iterable of (x, y)
        Consumed once (pass as many steps as you want to train).
    loss_fn : callable, default cross-entropy
    optimizer : {"sgd", "adam"}, default="sgd"
    lam : float, default=0
        Strength of the hierarchical group lasso.
    distill : bool, default=True
        Truncated pass fitted to the full pass's softmax (classification); False: to ``y``.
    shrink_every, eps
        Every ``shrink_every`` steps, mask trailing components below ``eps`` × the largest importance.

    Returns
    -------
    dict
        ``{"steps", "loss", "ranks", "importances"}``.
    """
    if optimizer not in ("sgd", "adam"):
        raise LowdimError(f"optimizer={optimizer!r}: choose 'sgd' (the reference) or 'adam'")
    if not _layers(model):
        raise LowdimError(f"{type(model).__name__} has no Maestro layers; call apply_maestro(model) first")
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=lr, momentum=momentum) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=lr))
    gen = torch.Generator().manual_seed(int(seed))
    step, last = 0, float("nan")
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        full = model(x)
        loss = loss_fn(full, y) + od_loss(model, x, full, y, loss_fn, generator=gen, distill=distill)
        if lam:
            loss = loss + lam * group_lasso(model)
        if not torch.isfinite(loss):
            raise LowdimError(f"the Maestro loss became {float(loss.detach())} at step {step}; lower lr={lr}")
        loss.backward()
        opt.step()
        step += 1
        last = float(loss.detach())
        if shrink_every and step % shrink_every == 0:
            for m in _layers(model).values():
                m.shrink(eps)
    return {"steps": step, "loss": last, "ranks": maestro_ranks(model), "importances": importances(model)}
