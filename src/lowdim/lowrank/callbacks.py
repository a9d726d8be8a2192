"""Training callbacks: AdaLoRA's every-step allocation, for plain loops and the HF Trainer.

AdaLoRA (Zhang et al., ICLR 2023) only prunes when ``update_and_allocate(global_step)`` runs after
every optimizer step (peft issues #1801, #432: "AdaLoRA didn't prune"); the Hugging Face Trainer
does not call it. :class:`AdaLoRACallback` does, and reads the final rank pattern into a
:class:`~lowdim.lowrank.plan.RankPlan`. ``HFAdaLoRACallback`` is the same as a
``transformers.TrainerCallback`` (built on first access). Gradient spectra for GaLore:
:class:`~lowdim.lowrank.galore.GradientSpectrumCallback`.
"""

from __future__ import annotations

from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["AdaLoRACallback", "HFAdaLoRACallback", "adalora_ranks"]  # noqa: F822 (built on first access)


def _tuner(model: Any) -> Any:
    tuner = getattr(model, "base_model", model)
    if not hasattr(tuner, "update_and_allocate"):
        raise LowdimError(f"{type(model).__name__} is not an AdaLoRA PEFT model (no update_and_allocate); "
                          "build it with get_peft_model(model, plan.to_adalora_config(total_step=...))")
    return tuner


def adalora_ranks(model: Any, adapter: str = "default") -> dict[str, int]:
    """Ranks AdaLoRA keeps now: nonzero entries of each module's singular-value vector E."""
    require("peft", "lowrank")
    from peft.tuners.adalora import AdaLoraLayer

    out = {}
    for k, mod in model.named_modules():
        if isinstance(mod, AdaLoraLayer) and adapter in mod.lora_E:
            for pre in ("base_model.model.", "base_model."):
                if k.startswith(pre):
                    k = k[len(pre):]
                    break
            out[k] = int((mod.lora_E[adapter].detach() != 0).sum())
    return out


class AdaLoRACallback:
    """Call ``cb(model, step)`` after ``optimizer.step()`` and before ``zero_grad()``, every step."""

    def __init__(self) -> None:
        self.calls = 0
        self.last_step: int | None = None

    def __call__(self, model: Any, step: int) -> None:
        _tuner(model).update_and_allocate(int(step))
        self.calls += 1
        self.last_step = int(step)

    def plan(self, model: Any) -> Any:
        """The learned ranks as a :class:`RankPlan` (shapes from the adapted modules)."""
        from lowdim.lowrank.plan import RankPlan

        ranks = adalora_ranks(model)
        shapes = {}
        for k, mod in model.named_modules():
            base = getattr(mod, "base_layer", None)
            for pre in ("base_model.model.", "base_model."):
                if k.startswith(pre):
                    k = k[len(pre):]
                    break
            if k in ranks and base is not None:
                shapes[k] = (int(base.out_features), int(base.in_features))
        return RankPlan(ranks=ranks, shapes=shapes, signal="adalora importance", rule="learned")


def _make_hf_class() -> type:
    transformers = require("transformers", "hf")

    class HFAdaLoRACallback(transformers.TrainerCallback):
        """Calls ``update_and_allocate(global_step)`` at every optimizer step of ``Trainer.train``."""

        def __init__(self) -> None:
            self.recorder = AdaLoRACallback()

        def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            # after optimizer.step(), before zero_grad(): where AdaLoRA needs the gradients
            if model is not None:
                self.recorder(model, state.global_step)

    return HFAdaLoRACallback


def __getattr__(name: str) -> Any:
    if name == "HFAdaLoRACallback":
        cls = _make_hf_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
