"""Where layer activations come from, for Python users and ``lowdim layers`` alike.

- :func:`load_torch_factory` builds your own model from ``"module:factory"`` (seeded, so a randomly
  initialised model is the same on every run) and loads ``.safetensors``/``.pt`` weights safely;
- :func:`torch_model_activations` runs it over the rows of an array file and captures its layers;
- :func:`load_saved_activations` reads activations you saved (one tensor per layer, no code runs);
- :func:`load_labels` reads one label per row.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["load_labels", "load_saved_activations", "load_torch_factory", "load_weights",
           "torch_model_activations"]


def load_labels(path: str | os.PathLike | None) -> np.ndarray | None:
    """One label per row from a ``.npy`` file (None passes through)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"labels file {str(p)!r} does not exist")
    try:
        return np.load(p, allow_pickle=False).reshape(-1)
    except (ValueError, OSError) as exc:
        raise LowdimError(f"labels file {str(p)!r} is not a .npy array: {exc}") from None


def load_saved_activations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{layer name: (rows, features)}`` from a ``.safetensors`` or ``.npz`` file."""
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"activations file {str(p)!r} does not exist")
    try:
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            arrays = load_file(str(p))
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        else:
            raise LowdimError(f"activations file {str(p)!r} must be .safetensors or .npz (one tensor per layer)")
    except LowdimError:
        raise
    except Exception as exc:
        raise LowdimError(f"could not read {str(p)!r}: {type(exc).__name__}: {exc}") from None
    if not arrays:
        raise LowdimError(f"activations file {str(p)!r} holds no tensors")
    return {k: v.reshape(len(v), -1) for k, v in arrays.items()}


def load_torch_factory(spec: str, *, seed: int = 0) -> Any:
    """Call ``factory()`` of ``"module:factory"`` (the current folder is importable) under ``seed``.

    ``torch.manual_seed(seed)`` is set first, so a factory that initialises randomly builds the
    same model on every run.
    """
    torch = require("torch", "torch")
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise LowdimError(f"torch model {spec!r} must look like module:factory (e.g. mynet:build)")
    mod_name, fn_name = spec.split(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise LowdimError(f"cannot import {spec!r}: {exc}") from None
    torch.manual_seed(seed)
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise LowdimError(f"{spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: Any, path: str | os.PathLike) -> Any:
    """Load a state dict from ``.safetensors`` or ``.pt``/``.pth`` (``weights_only``: no pickled code)."""
    torch = require("torch", "torch")
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"weights file {str(p)!r} does not exist")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        if type(exc).__name__ == "UnpicklingError":
            raise LowdimError(f"weights {str(p)!r} hold pickled objects other than tensors; lowdim loads "
                              "weights only (torch.load(weights_only=True)), so nothing in it was run. Save "
                              "model.state_dict() with torch.save, or use .safetensors") from None
        raise LowdimError(f"could not read weights {str(p)!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict):
        raise LowdimError(f"weights {str(p)!r} hold a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LowdimError(f"weights {str(p)!r} do not fit the model: {first}") from None
    return model


def torch_model_activations(spec: str, inputs: str | os.PathLike, *, layers: list[str] | str = "*",
                            weights: str | os.PathLike | None = None, pool: str = "mean",
                            batch_size: int = 32, max_samples: int = 2000, random_state: int = 0,
                            labels: np.ndarray | None = None) -> Any:
    """Build ``spec`` (see :func:`load_torch_factory`), run it over the rows of ``inputs``, capture layers.

    Returns the :class:`~lowdim.representations.capture.Activations` of
    :func:`~lowdim.representations.capture_activations`, with ``labels`` (one per input row)
    aligned to the rows kept by its seeded subsample.
    """
    from lowdim.io import load_points
    from lowdim.representations.capture import capture_activations

    torch = require("torch", "torch")
    model = load_torch_factory(spec, seed=random_state)
    if weights is not None:
        load_weights(model, weights)
    X = torch.as_tensor(load_points(inputs), dtype=torch.float32)
    if labels is not None and len(labels) != len(X):
        raise LowdimError(f"labels have {len(labels)} entries but the input has {len(X)} rows; give one label per row")
    rows = torch.arange(len(X))  # row numbers ride along as labels so a subsample keeps its labels aligned
    batches = [(X[i:i + batch_size], rows[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    acts = capture_activations(model, batches, layers=layers, pool=pool, max_samples=max_samples,
                               random_state=random_state)
    acts.labels = None if labels is None else labels[acts.labels]
    return acts
