"""SVFit: train only the top-r singular values of each frozen weight (arXiv 2409.05926).

W = U_r diag(s) V_rᵀ + W_rest with U_r, V_r, W_rest frozen from the SVD of the pretrained weight
and s (r numbers per module) trainable, initialised at the pretrained singular values, so the
model is unchanged at the start. A probe of "how far does re-weighting existing directions get";
r per module comes from a profile's energy rank (:func:`ranks_from_profile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["SVFitLinear", "apply_svfit", "ranks_from_profile"]


class SVFitLinear(nn.Module):
    """A Linear whose top-r singular values train: x ↦ (U_r diag(s) V_rᵀ + W_rest) x + b."""

    def __init__(self, base: Any, r: int) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise LowdimError(f"SVFit wraps nn.Linear modules, got {type(base).__name__}")
        W = base.weight.detach()
        r = int(min(r, *W.shape))
        if r < 1:
            raise LowdimError(f"r={r} must be a positive integer")
        U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        self.register_buffer("U", U[:, :r].to(W.dtype))
        self.register_buffer("Vh", Vh[:r].to(W.dtype))
        self.register_buffer("rest", (W.double() - (U[:, :r] * s[:r]) @ Vh[:r]).to(W.dtype))
        self.s = nn.Parameter(s[:r].to(W.dtype).clone())
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.r = r

    def forward(self, x: Any) -> Any:
        y = ((x @ self.Vh.T) * self.s) @ self.U.T + x @ self.rest.T
        return y + self.bias if self.bias is not None else y


def apply_svfit(model: Any, ranks: int | dict[str, int] = 8, targets: str | Sequence[str] = "all-linear") -> list[str]:
    """Replace target Linears by :class:`SVFitLinear` (in place) and freeze everything else.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    >>> x = torch.randn(4, 6); before = net(x)
    >>> apply_svfit(net, 2)
    ['0', '2']
    >>> bool(torch.allclose(net(x), before, atol=1e-5)), sum(p.numel() for p in net.parameters() if p.requires_grad)
    (True, 4)
    """
    from lowdim.lowrank.profile import find_targets

    if isinstance(ranks, dict):
        names = [n for n, r in ranks.items() if r > 0]
    else:
        names = find_targets(model, targets)
        ranks = dict.fromkeys(names, int(ranks))
    mods = dict(model.named_modules())
    for p in model.parameters():
        p.requires_grad_(False)
    for n in names:
        parent, _, leaf = n.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, SVFitLinear(mods[n], ranks[n]))
    return names


def ranks_from_profile(profile: Any, key: str = "energy_rank_90") -> dict[str, int]:
    """``{module: r}`` from a profile's weight statistic (default the 90 % energy rank)."""
    out = {ms.name: int(ms.weight.get(key, 0)) for ms in profile.modules}
    if not any(out.values()):
        raise LowdimError(f"the profile has no weight {key!r} values; profile with what=('weights', ...)")
    return out
