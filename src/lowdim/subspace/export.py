"""Save a trained :class:`SubspaceModel` as ``z`` (+ λ) and its spec; reload it exactly.

A subspace model is fully defined by θ₀, the projection's ``(kind, D, d, seed)`` and ``z``
(Li et al. 2018 note that a model trained in d dimensions is stored in d numbers plus a seed).
The safetensors file holds ``z`` (and ``lam`` with SAID) as tensors and the spec — seed,
projection, D, d, SAID, θ₀ source and θ₀'s SHA-256 — as string metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lowdim.errors import LowdimError

__all__ = ["load_subspace", "read_spec", "save_subspace"]


def save_subspace(model: Any, path: str | os.PathLike) -> dict:
    """Write ``model``'s ``z`` (+ λ) and spec to a ``.safetensors`` file, atomically.

    Returns
    -------
    dict
        The spec written (``compression_ratio`` = D / d included).
    """
    from safetensors.torch import save_file

    from lowdim.io import atomic_path
    from lowdim.subspace.model import SubspaceModel

    if not isinstance(model, SubspaceModel):
        raise LowdimError(f"save_subspace needs a SubspaceModel, got {type(model).__name__}")
    p = Path(path)
    if p.suffix != ".safetensors":
        raise LowdimError(f"export file {str(p)!r} must end in .safetensors")
    tensors = {"z": model.z.detach().cpu().contiguous()}
    if model.lam is not None:
        tensors["lam"] = model.lam.detach().cpu().contiguous()
    spec = model.spec()
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp), metadata={"lowdim.subspace": json.dumps(spec)})
    return spec


def read_spec(path: str | os.PathLike) -> dict:
    """The spec stored in an exported file."""
    from safetensors import safe_open

    p = Path(path)
    if not p.exists():
        raise LowdimError(f"file not found: {str(p)!r}")
    with safe_open(str(p), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "lowdim.subspace" not in meta:
        raise LowdimError(f"{str(p)!r} is not a lowdim subspace export (no 'lowdim.subspace' metadata)")
    return json.loads(meta["lowdim.subspace"])


def load_subspace(path: str | os.PathLike, module: Any, *, device: Any = None,
                  check_theta0: bool = True, basis: Any = None) -> Any:
    """Rebuild the :class:`SubspaceModel` saved at ``path`` around ``module`` (at θ₀).

    Parameters
    ----------
    path : path-like
    module : torch.nn.Module
        The same architecture at the same θ₀ as when saved (e.g. the same pretrained weights or
        the same initialisation seed).
    device : optional
        Where to put the model.
    check_theta0 : bool, default=True
        Refuse when θ₀'s SHA-256 differs from the saved one.
    basis : array-like of shape (T, D), optional
        Only for ``projection="task_vectors"`` (aTLAS) exports, which store the coefficients but
        not the task vectors: the same basis the model was trained with (checked by SHA-256).

    Examples
    --------
    >>> import torch, tempfile, os
    >>> from lowdim.subspace import SubspaceModel
    >>> net = torch.nn.Linear(4, 3)
    >>> sm = SubspaceModel(net, 5, seed=1); _ = sm.z.data.normal_()
    >>> p = os.path.join(tempfile.mkdtemp(), "m.safetensors"); spec = save_subspace(sm, p)
    >>> torch.equal(load_subspace(p, net).flat_theta(), sm.flat_theta())
    True
    """
    from safetensors.torch import load_file

    from lowdim.subspace.model import SubspaceModel

    spec = read_spec(path)
    if spec["projection"] == "task_vectors" and basis is None:
        raise LowdimError(f"{str(path)!r} holds aTLAS coefficients over {spec.get('n_task_vectors', '?')} task "
                          "vectors, which the file does not store: pass basis= (the same task vectors, e.g. "
                          "from build_task_vectors with the same tasks and seeds)")
    if spec["projection"] != "task_vectors" and basis is not None:
        raise LowdimError(f"basis= is only for task_vectors exports; {str(path)!r} uses the "
                          f"{spec['projection']!r} projection, which is regenerated from its seed: drop basis=")
    model = SubspaceModel(module, spec["d"], projection=spec["projection"], said=spec["said"],
                          seed=spec["seed"], normalize=spec.get("normalize", "network"),
                          theta0_source=spec.get("theta0_source", ""), basis=basis)
    if basis is not None and model.projection.basis_sha256 != spec.get("basis_sha256"):
        raise LowdimError(f"the basis passed differs from the task vectors {str(path)!r} was trained with "
                          "(SHA-256 of the float32 basis); pass the same task vectors in the same order")
    if model.n_params_ != spec["D"]:
        raise LowdimError(f"{str(path)!r} was saved for D={spec['D']} trainable parameters; this module "
                          f"has {model.n_params_}: pass the same architecture")
    if check_theta0 and model.theta0_digest() != spec["theta0_sha256"]:
        raise LowdimError(f"θ₀ of this module differs from the one {str(path)!r} was trained from "
                          f"(source: {spec.get('theta0_source') or 'unrecorded'}); load the same initial "
                          "weights, or pass check_theta0=False")
    tensors = load_file(str(path))
    import torch

    with torch.no_grad():
        model.z.copy_(tensors["z"])
        if model.lam is not None:
            model.lam.copy_(tensors["lam"])
    return model.to(device) if device is not None else model
