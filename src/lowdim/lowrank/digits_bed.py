"""A seconds-scale pretrain → fine-tune bed: an MLP pretrained on sklearn digits, adapted to rotated digits.

Pretraining: MLP 64-128-128-10 (tanh), Adam, on the upright 8×8 digits (lowdim's ``digits`` split,
60/20/20, seed 0). Fine-tuning task: the same images rotated by ``angle`` degrees
(``scipy.ndimage.rotate``, bilinear, same size), same splits. Methods adapt the pretrained model
with only their own parameters trainable (the head is frozen too, so every method reaches the
task only through its adapter): :func:`run_method` trains LoRA (PEFT), SoRA, SVFit or full
fine-tuning with Adam and early stopping on validation accuracy and reports test accuracy,
trainable parameters and, for SoRA, the learned ranks.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")

__all__ = ["METHODS", "pretrained_mlp", "rotated_digits", "run_method"]

METHODS = ("full", "lora", "sora", "svfit")


@functools.lru_cache(maxsize=4)
def rotated_digits(angle: float = 45.0) -> Any:
    """``ClassificationData`` of the digits split with every image rotated by ``angle`` degrees."""
    from scipy.ndimage import rotate

    from lowdim.subspace.tasks.base import ClassificationData
    from lowdim.subspace.tasks.vision import load_data

    base = load_data("digits")

    def rot(split: tuple) -> tuple:
        X, y = split
        imgs = X.numpy().reshape(-1, 8, 8)
        out = np.stack([rotate(im, angle, reshape=False, order=1, mode="constant") for im in imgs])
        return torch.as_tensor(out.reshape(len(out), 64), dtype=torch.float32), y

    return ClassificationData(rot(base.train), rot(base.val), rot(base.test), n_classes=10)


@functools.lru_cache(maxsize=4)
def _pretrained_state(seed: int, epochs: int) -> tuple[dict, float]:
    from lowdim.subspace.tasks.base import accuracy, fit_classifier
    from lowdim.subspace.tasks.vision import load_data

    torch.manual_seed(seed)
    net = _mlp()
    data = load_data("digits")
    fit_classifier(net, data, lr=3e-3, seed=seed, epochs=epochs, patience=10)
    return {k: v.clone() for k, v in net.state_dict().items()}, accuracy(net, data.test)


def _mlp() -> Any:
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 10))


def pretrained_mlp(seed: int = 0, *, epochs: int = 60) -> tuple[Any, float]:
    """A fresh copy of the pretrained MLP and its test accuracy on upright digits (cached per process)."""
    state, acc = _pretrained_state(int(seed), int(epochs))
    net = _mlp()
    net.load_state_dict(state)
    return net, acc


def _fit(model: Any, data: Any, *, lr: float, epochs: int, seed: int, gate_opt: Any = None,
         batch_size: int = 64, patience: int = 8) -> float:
    """Adam (+ the SoRA gate optimizer) with early stopping; restores the best state; returns val acc."""
    from lowdim.subspace.tasks.base import accuracy

    params = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("gate")]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    X, y = data.train
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for a in range(0, len(y), batch_size):
            idx = order[a:a + batch_size]
            opt.zero_grad(set_to_none=True)
            if gate_opt is not None:
                gate_opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
            if gate_opt is not None:
                gate_opt.step()
        val = accuracy(model, data.val)
        if val > best:
            best, best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return best


def run_method(method: str, *, r: int = 8, seed: int = 0, angle: float = 45.0, epochs: int = 40,
               lr: float | None = None, lam: float = 0.1, plan: Any = None, svfit_ranks: Any = None) -> dict:
    """Adapt the pretrained MLP to rotated digits with one method.

    Parameters
    ----------
    method : {"full", "lora", "sora", "svfit"}
    r : int
        LoRA / SoRA rank per module (ignored with ``plan``).
    plan : RankPlan, optional
        LoRA with the plan's per-module ranks.
    lam : float
        SoRA's per-gate L1 strength.
    svfit_ranks : int or dict, optional
        SVFit's r per module (default ``r``).

    Returns
    -------
    dict
        ``{"method", "test_acc", "val_acc", "trainable_params", "seed", ...}`` (SoRA: ``ranks``,
        ``kept_fraction`` and the exported LoRA's max output difference ``export_max_abs_diff``).
    """
    from lowdim.subspace.tasks.base import accuracy

    if method not in METHODS:
        raise LowdimError(f"method={method!r}: choose from {METHODS}")
    data = rotated_digits(float(angle))
    torch.manual_seed(seed)
    net, _ = pretrained_mlp(0)
    info: dict[str, Any] = {}
    gate_opt = None
    if method == "full":
        model, lr = net, lr or 1e-3
    elif method == "lora":
        peft = require("peft", "lowrank")
        from lowdim.lowrank.plan import RankPlan

        if plan is None:
            plan = RankPlan(ranks=dict.fromkeys(("0", "2", "4"), int(r)),
                            shapes={"0": (128, 64), "2": (128, 128), "4": (10, 128)})
        model = peft.get_peft_model(net, plan.to_lora_config(net))
        plan.validate(model)
        lr = lr or 3e-3
        info["ranks"] = dict(plan.ranks)
    elif method == "sora":
        from lowdim.lowrank.sora import GateOptimizer, apply_sora, gate_parameters

        apply_sora(net, r=int(r))
        model, lr = net, lr or 3e-3
        gate_opt = GateOptimizer(gate_parameters(net), lr=lr, lam=lam)
    else:
        from lowdim.lowrank.svfit import apply_svfit

        apply_svfit(net, svfit_ranks if svfit_ranks is not None else int(r))
        model, lr = net, lr or 1e-2
    val = _fit(model, data, lr=lr, epochs=epochs, seed=seed, gate_opt=gate_opt)
    n_train = sum(int(p.numel()) for p in model.parameters() if p.requires_grad)
    if method == "sora":
        from lowdim.lowrank.sora import export_lora, sora_ranks

        ranks = sora_ranks(model)
        pm, _ = export_lora(model)
        X = data.test[0]
        with torch.no_grad():
            ref = model(X)
            diff = float((pm(X) - ref).abs().max())
        info.update(ranks=ranks, kept_fraction=sum(ranks.values()) / (3 * int(r)), export_max_abs_diff=diff,
                    export_max_rel_diff=diff / float(ref.abs().max()),
                    exported_params=sum(int(p.numel()) for n, p in pm.named_parameters() if "lora_" in n))
    return {"method": method, "test_acc": accuracy(model, data.test), "val_acc": val, "trainable_params": n_train,
            "seed": seed, "lr": lr, **info}
