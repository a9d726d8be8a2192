"""``SubspaceModel``: train any ``nn.Module`` in the random subspace θ = θ₀ + P z.

Li et al. (2018), "Measuring the Intrinsic Dimension of Objective Landscapes" (ICLR), train
only ``z ∈ R^d``; Aghajanyan, Zettlemoyer & Gupta (2021), "Intrinsic Dimensionality Explains
the Effectiveness of Language Model Fine-Tuning" (ACL), add structure-aware SAID:
θ_i = θ₀_i + λ_i (P z)_i with one learned scale λ_i per parameter tensor, counted inside d.

The wrapped module is never modified: its parameters are not deleted or re-attached. Each
forward computes the flat vector θ = θ₀ + P z once, views it into tensors and runs the module
through :func:`torch.func.functional_call`. θ₀ (and the module's buffers and frozen
parameters) are buffers of the wrapper; ``z`` (and ``lam`` with SAID) are its only parameters,
so ``state_dict``, ``.to()``, ``.train()/.eval()``, optimisers and weight tying work as usual.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lowdim.errors import LowdimError, require
from lowdim.subspace.projections import (
    DEFAULT_MAX_DENSE_BYTES,
    PROJECTIONS,
    PerTensorProjection,
    make_projection,
)
from lowdim.validation import check_choice, check_int

torch = require("torch", "torch")

__all__ = ["SubspaceModel", "trainable_parameters"]


def trainable_parameters(module: Any) -> list[tuple[str, Any]]:
    """The ``(name, parameter)`` pairs a subspace model trains, validated.

    Raises a :class:`LowdimError` for a non-module, a module without trainable parameters, or
    a non-floating-point parameter.
    """
    if not isinstance(module, torch.nn.Module):
        raise LowdimError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    for name, p in module.named_parameters():
        if not p.is_floating_point():
            raise LowdimError(
                f"parameter {name!r} has dtype {p.dtype} (shape {tuple(p.shape)}); subspace training "
                "needs floating-point parameters: register integer tensors as buffers instead"
            )
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        raise LowdimError(
            f"{type(module).__name__} has no trainable parameters (none with requires_grad=True); "
            "unfreeze the parameters the subspace should train"
        )
    return params


class SubspaceModel(torch.nn.Module):
    """Wrap ``module`` so that only a ``d``-dimensional ``z`` is trained.

    Parameters
    ----------
    module : torch.nn.Module
        The model; its trainable parameters at wrap time are θ₀ (copied into a buffer).
        Parameters with ``requires_grad=False`` stay frozen.
    d : int
        Intrinsic dimension to train in, ``1 ≤ d ≤ D`` (D = number of trainable parameters).
        With ``said=True`` it counts the per-tensor scales too: ``len(z) = d − n_tensors``.
    projection : {"fastfood", "dense", "sparse", "task_vectors"}, default="fastfood"
        See :mod:`lowdim.subspace.projections`. Columns have unit norm over the whole network.
        ``"task_vectors"`` is aTLAS (Zhang et al. 2024, :mod:`lowdim.subspace.task_vectors`):
        ``z`` holds one coefficient per (task vector, parameter tensor); needs ``basis``.
    said : bool, default=False
        Structure-aware intrinsic dimension (Aghajanyan et al. 2021): θ_i = θ₀_i + λ_i (P z)_i,
        one λ per parameter tensor, initialised to 1.
    seed : int, default=0
        Seed of the projection; ``(seed, projection, D, d)`` define ``P`` completely.
    normalize : {"network", "tensor"}, default="network"
        Unit-norm columns over the whole network (Li et al.'s convention), or one independent
        projection per tensor with unit-norm columns in each (:class:`PerTensorProjection`).
    max_dense_bytes : int
        Memory limit of a dense projection.
    theta0_source : str, default=""
        Free text saved with exports (e.g. ``"pretrained all-MiniLM-L6-v2"``).
    basis : array-like of shape (T, D), optional
        The task vectors of ``projection="task_vectors"`` (flattened like θ₀), e.g. from
        :func:`lowdim.subspace.task_vectors.build_task_vectors`; then ``d ≤ T · n_tensors``.

    Attributes
    ----------
    z : torch.nn.Parameter of shape (d_z,)
        The trained coordinates, initialised to zero (so the model starts exactly at θ₀).
    lam : torch.nn.Parameter of shape (n_tensors,) or None
        SAID scales.
    theta0 : buffer of shape (padded_length,)
        θ₀, flattened, followed by zeros up to the projection's output length (Fastfood pads D
        to a multiple of its block size; keeping θ₀ that long avoids a copy per step).
    n_params_ : int
        D.
    compression_ratio_ : float
        D / d.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    >>> sm = SubspaceModel(net, 20, seed=0)
    >>> x = torch.randn(5, 8)
    >>> torch.equal(sm(x), net(x))  # z = 0 is exactly θ₀
    True
    >>> [n for n, _ in sm.named_parameters()], sm.n_params_
    (['z'], 195)
    """

    def __init__(self, module: Any, d: int, *, projection: str = "fastfood", said: bool = False,
                 seed: int = 0, normalize: str = "network", max_dense_bytes: int = DEFAULT_MAX_DENSE_BYTES,
                 theta0_source: str = "", basis: Any = None) -> None:
        super().__init__()
        check_choice("projection", projection, PROJECTIONS)
        check_choice("normalize", normalize, ("network", "tensor"))
        params = trainable_parameters(module)
        D = sum(p.numel() for _, p in params)
        n_tensors = len(params)
        low = n_tensors + 1 if said else 1
        d = check_int("d", d, low=low, high=D,
                      fix=(f"the module has D={D} trainable parameters"
                           + (f" in {n_tensors} tensors; with said=True d counts one scale per tensor"
                              if said else "") + "; pick d in that range"))
        seed = check_int("seed", seed, low=0)
        if projection == "task_vectors" and (said or normalize != "network"):
            raise LowdimError(f"projection='task_vectors' already has one coefficient per (task vector, tensor); "
                              f"got said={said!r}, normalize={normalize!r}: use said=False, normalize='network'")
        object.__setattr__(self, "_module", module)  # not a submodule: its parameters stay its own
        self.d, self.said, self.seed, self.projection_kind = d, bool(said), seed, projection
        self.theta0_source = str(theta0_source)
        self.n_params_ = D
        self.compression_ratio_ = D / d
        self._names = [n for n, _ in params]
        self._shapes = [tuple(p.shape) for _, p in params]
        self._dtypes = [p.dtype for _, p in params]
        self._sizes = [p.numel() for _, p in params]
        flat_dtype = torch.float64 if all(p.dtype == torch.float64 for _, p in params) else torch.float32
        d_z = d - n_tensors if said else d
        self.d_z = d_z
        self.normalize = normalize
        if normalize == "tensor":
            self.projection = PerTensorProjection(projection, [p.numel() for _, p in params], d_z, seed=seed,
                                                  max_dense_bytes=max_dense_bytes)
        else:
            self.projection = make_projection(projection, D, d_z, seed=seed, max_dense_bytes=max_dense_bytes,
                                              basis=basis, blocks=self._sizes if basis is not None else None)
        self.projection.to(flat_dtype)
        L = self.projection.padded_length  # θ₀ is zero-padded to the projection's output length
        with torch.no_grad():
            theta0 = torch.zeros(L, dtype=flat_dtype)
            torch.cat([p.detach().reshape(-1).to(flat_dtype) for _, p in params], out=theta0[:D])
        self.register_buffer("theta0", theta0)
        self._split = [*self._sizes, L - D] if L > D else list(self._sizes)
        # frozen parameters and buffers of the module become our buffers, so they move with .to()
        self._extra: list[tuple[str, str]] = []
        trainable = set(self._names)
        persistent = {n for n, _ in module.named_buffers()} - _non_persistent(module)
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if name in trainable:
                continue
            key = "m__" + name.replace(".", "__")
            self.register_buffer(key, t.detach(), persistent=name in persistent or not _is_buffer(module, name))
            self._extra.append((name, key))
        self.z = torch.nn.Parameter(torch.zeros(d_z, dtype=flat_dtype))
        self.lam = torch.nn.Parameter(torch.ones(n_tensors, dtype=flat_dtype)) if said else None
        if said:
            index = torch.zeros(L, dtype=torch.long)  # entries past D: any λ (their gradient is 0)
            index[:D] = torch.repeat_interleave(torch.arange(n_tensors), torch.tensor(self._sizes))
            self.register_buffer("_tensor_index", index, persistent=False)

    # -------------------------------------------------------------------------------- plumbing
    @property
    def module(self) -> Any:
        """The wrapped module (unchanged; its own parameters still hold θ₀)."""
        return self._module

    def train(self, mode: bool = True) -> SubspaceModel:
        super().train(mode)
        self._module.train(mode)
        return self

    def extra_repr(self) -> str:
        return (f"module={type(self._module).__name__}, D={self.n_params_}, d={self.d}, "
                f"projection={self.projection_kind!r}, said={self.said}, seed={self.seed}")

    def _theta_padded(self) -> Any:
        if self.said:
            return self.theta0 + self.projection.forward_padded(self.z) * self.lam[self._tensor_index]
        return self.projection.forward_padded(self.z, add=self.theta0)

    def flat_theta(self) -> Any:
        """θ = θ₀ + P z (or θ₀ + λ ⊙ P z with SAID) as one flat tensor of length D."""
        return self._theta_padded()[: self.n_params_]

    def parameters_dict(self) -> dict[str, Any]:
        """Name → tensor of the current weights (views of one flat θ, computed once per call)."""
        chunks = torch.split(self._theta_padded(), self._split)  # backward: a single concatenation
        out = {}
        for name, shape, dt, t in zip(self._names, self._shapes, self._dtypes, chunks):
            t = t.view(shape)
            out[name] = t if t.dtype == dt else t.to(dt)
        for name, key in self._extra:
            out[name] = getattr(self, key)
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        from torch.func import functional_call

        return functional_call(self._module, self.parameters_dict(), args, kwargs)

    def materialize(self) -> Any:
        """Copy the current weights into the wrapped module's own parameters and return it."""
        with torch.no_grad():
            weights = self.parameters_dict()
            for name, p in self._module.named_parameters():
                if name in weights:
                    p.copy_(weights[name].to(p.device))
        return self._module

    def theta0_digest(self) -> str:
        """SHA-256 of θ₀ (float32 bytes): identifies the starting point in exports."""
        theta0 = self.theta0[: self.n_params_].detach().float().cpu()
        return hashlib.sha256(theta0.numpy().tobytes()).hexdigest()

    def spec(self) -> dict[str, Any]:
        """Everything that defines P and θ's layout (saved with exports)."""
        return {"d": self.d, "d_z": self.d_z, "D": self.n_params_, "projection": self.projection_kind,
                "normalize": self.normalize, "said": self.said, "seed": self.seed, "n_tensors": len(self._names),
                "theta0_source": self.theta0_source, "theta0_sha256": self.theta0_digest(),
                "compression_ratio": self.compression_ratio_,
                **({"n_task_vectors": self.projection.n_vectors, "basis_scale": self.projection.scale,
                    "basis_sha256": self.projection.basis_sha256} if self.projection_kind == "task_vectors" else {})}


def _non_persistent(module: Any) -> set[str]:
    out = set()
    for prefix, m in module.named_modules():
        for b in getattr(m, "_non_persistent_buffers_set", ()):
            out.add(f"{prefix}.{b}" if prefix else b)
    return out


def _is_buffer(module: Any, name: str) -> bool:
    return name in dict(module.named_buffers())
