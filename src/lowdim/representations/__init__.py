"""Dimensionality of neural representations: per-layer and local ID, DSE/DSMI, label sharpness.

Capture activations of a PyTorch or Hugging Face model (:func:`capture_activations`,
:func:`capture_hidden_states`), measure each layer (:func:`layer_report` → :class:`LayerReport`),
and record the measurements over training (:class:`RepresentationCallback`,
:class:`HFRepresentationCallback`). torch and transformers are imported only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Activations": "lowdim.representations.capture",
    "capture_activations": "lowdim.representations.capture",
    "capture_hidden_states": "lowdim.representations.capture",
    "match_layers": "lowdim.representations.capture",
    "diffusion_spectral_entropy": "lowdim.representations.dse",
    "diffusion_spectral_mutual_information": "lowdim.representations.dse",
    "shannon_entropy": "lowdim.representations.dse",
    "label_sharpness": "lowdim.representations.sharpness",
    "LayerReport": "lowdim.representations.layers",
    "layer_report": "lowdim.representations.layers",
    "measure_layer": "lowdim.representations.layers",
    "effective_rank": "lowdim.representations.layers",
    "participation_ratio": "lowdim.representations.layers",
    "RepresentationCallback": "lowdim.representations.callbacks",
    "HFRepresentationCallback": "lowdim.representations.callbacks",
    "load_hf_model": "lowdim.representations.hf",
    "hf_layer_report": "lowdim.representations.hf",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lowdim.representations' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
