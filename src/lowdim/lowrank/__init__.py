"""Low-rank training that uses measured dimension: profile → plan → train → report.

- :func:`profile` / :class:`SpectralProfile` — per-module weight spectra (effective, stable, energy
  and Marchenko–Pastur ranks), input-activation ID with interval, gradient and update spectra.
- :func:`allocate` / :class:`RankPlan` — integer ranks under a parameter (or rank) budget, exported
  to ``peft.LoraConfig`` / ``AdaLoraConfig`` / GaLore parameter groups, and ``validate(model)``.
- Training with learned rank: SoRA (:mod:`lowdim.lowrank.sora`), Maestro
  (:mod:`lowdim.lowrank.maestro`), SVFit (:mod:`lowdim.lowrank.svfit`), AdaLoRA and GaLore wrappers
  (:mod:`lowdim.lowrank.callbacks`, :mod:`lowdim.lowrank.galore`).

Needs the ``torch`` extra; PEFT export and the GaLore backend need the ``lowrank`` extra
(``pip install "lowdim[lowrank]"``). Everything here is imported lazily: ``import lowdim`` and
``import lowdim.lowrank`` load neither torch nor peft.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it; imported on first use. Colleagues add their methods here by a
# one-line entry (one file per method).
_LAZY: dict[str, str] = {
    "SpectralProfile": "lowdim.lowrank.profile",
    "profile": "lowdim.lowrank.profile",
    "RankPlan": "lowdim.lowrank.plan",
    "allocate": "lowdim.lowrank.plan",
    "GradientSpectrumCallback": "lowdim.lowrank.galore",
    "galore_optimizer": "lowdim.lowrank.galore",
    "apply_sora": "lowdim.lowrank.sora",
    "export_lora": "lowdim.lowrank.sora",
    "apply_maestro": "lowdim.lowrank.maestro",
    "apply_svfit": "lowdim.lowrank.svfit",
    "AdaLoRACallback": "lowdim.lowrank.callbacks",
    # part 2 (issue 15): pretraining bed and parameterisations (LR²VQ: lowdim.lowrank.lr2vq)
    "CharLMBed": "lowdim.lowrank.charlm",
    "SLTrainLinear": "lowdim.lowrank.sltrain",
    "SSTLinear": "lowdim.lowrank.sst",
    "DCTAdamW": "lowdim.lowrank.dct_adamw",
    "LOSTLinear": "lowdim.lowrank.lost",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim.lowrank' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
