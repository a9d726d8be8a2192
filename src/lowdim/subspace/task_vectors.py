"""aTLAS: a structured subspace spanned by the parameter blocks of task vectors.

Zhang, Albert, Rodriguez-Opazo, van den Hengel & Abbasnejad (2024), "Knowledge Composition using
Task Vectors with Learned Anisotropic Scaling" (NeurIPS; reference code fredzzhang/atlas): with
task vectors τ_t = θ_t − θ₀ (a model fine-tuned on task t minus the shared start θ₀), train only

    θ = θ₀ + Σ_t Σ_p λ_{t,p} τ_t[p],

one coefficient per (task vector, parameter block), all initialised at zero (so the model starts
at θ₀). A *parameter block* is one parameter tensor of the module, as in the reference.

Here the blocks of the task vectors are the columns of a structured projection ``P`` of shape
D × (T·B) (T task vectors, B blocks), so :class:`~lowdim.subspace.SubspaceModel` and
:func:`~lowdim.subspace.find_d90` use it like the random projections:
``SubspaceModel(module, d, projection="task_vectors", basis=tau)``. Coordinate ``j`` of ``z`` is
λ_{t,p} with ``t = j // B`` and ``p = j % B`` (task-major), so a model with ``d < T·B`` trains
the blocks of the first ``⌊d/B⌋`` task vectors and the first ``d mod B`` blocks of the next one.

``scale="unit"`` (default) divides every column τ_t[p] by its norm, so that columns have unit
norm like Li et al.'s random projections and one learning rate serves both (it changes λ's
scale, not the subspace); ``scale="raw"`` keeps the reference's raw task vectors (λ = 1 is the
fine-tuned block). A block where τ_t is zero gives a zero column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")

__all__ = ["TaskVectorProjection", "build_task_vectors", "flat_parameters"]

SCALES = ("unit", "raw")


def flat_parameters(module: Any) -> Any:
    """The trainable parameters of ``module`` as one flat float32 vector (SubspaceModel's order)."""
    from lowdim.subspace.model import trainable_parameters

    return torch.cat([p.detach().reshape(-1).float().cpu() for _, p in trainable_parameters(module)])


class TaskVectorProjection(torch.nn.Module):
    """``P z = Σ_{t,p} z_{t,p} τ_t[p]``: the aTLAS basis as a projection ``R^d → R^D``.

    Parameters
    ----------
    basis : array-like of shape (T, D)
        Task vectors, flattened in the module's trainable-parameter order (see
        :func:`flat_parameters`; :func:`build_task_vectors` makes them).
    blocks : sequence of int
        Sizes of the parameter blocks (tensors); they must sum to D.
    d : int
        Number of coefficients trained, ``1 ≤ d ≤ T·len(blocks)`` (task-major order).
    scale : {"unit", "raw"}, default="unit"
        Unit-norm columns, or the raw task-vector blocks of the reference.

    Examples
    --------
    >>> import torch
    >>> tau = torch.tensor([[1.0, 2.0, 0.0, 3.0], [0.0, 1.0, 1.0, 0.0]])
    >>> P = TaskVectorProjection(tau, [2, 2], 4, scale="raw")
    >>> P(torch.tensor([1.0, 0.0, 0.0, 2.0]))  # block 0 of τ₀ plus 2 × block 1 of τ₁
    tensor([1., 2., 2., 0.])
    """

    kind = "task_vectors"

    def __init__(self, basis: Any, blocks: Sequence[int], d: int, *, scale: str = "unit", seed: int = 0) -> None:
        super().__init__()
        from lowdim.validation import check_choice, check_int

        check_choice("scale", scale, SCALES)
        B = torch.as_tensor(basis).detach().to("cpu", torch.float32)
        if B.ndim == 1:
            B = B[None]
        sizes = [int(s) for s in blocks]
        if B.ndim != 2 or B.shape[0] < 1 or not sizes or min(sizes) < 1 or B.shape[1] != sum(sizes):
            raise LowdimError(
                f"basis must have shape (n_task_vectors, D) with D = {sum(sizes)} (the module's trainable "
                f"parameters in {len(sizes)} blocks), got shape {tuple(B.shape)}; flatten each task vector "
                "with lowdim.subspace.task_vectors.flat_parameters (or use build_task_vectors)")
        if not bool(torch.isfinite(B).all()):
            raise LowdimError("basis (the task vectors) contains NaN or infinite values")
        import hashlib

        self.basis_sha256 = hashlib.sha256(B.contiguous().numpy().tobytes()).hexdigest()  # as given (float32)
        T, n_blocks = B.shape[0], len(sizes)
        d = check_int("d", d, low=1, high=T * n_blocks,
                      fix=f"{T} task vectors × {n_blocks} parameter blocks give {T * n_blocks} coefficients")
        self.D, self.d, self.seed, self.scale = int(B.shape[1]), d, int(seed), scale
        self.n_vectors, self.n_blocks, self.padded_length = T, n_blocks, int(B.shape[1])
        self.blocks = sizes
        if scale == "unit":
            chunks = torch.split(B, sizes, dim=1)
            norms = torch.stack([c.norm(dim=1) for c in chunks], dim=1)  # (T, n_blocks)
            inv = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-30), torch.zeros_like(norms))
            B = torch.cat([c * inv[:, i:i + 1] for i, c in enumerate(chunks)], dim=1)
        self.register_buffer("basis", B.contiguous(), persistent=False)

    def extra_repr(self) -> str:
        return f"D={self.D}, d={self.d}, n_vectors={self.n_vectors}, n_blocks={self.n_blocks}, scale={self.scale!r}"

    def coefficients(self, z: Any) -> Any:
        """λ as a (T, n_blocks) matrix: ``z`` in task-major order, zeros past ``d``."""
        full = torch.nn.functional.pad(z, (0, self.n_vectors * self.n_blocks - self.d))
        return full.view(self.n_vectors, self.n_blocks)

    def forward_padded(self, z: Any, add: Any = None) -> Any:
        lam = self.coefficients(z).to(self.basis.dtype)
        chunks = torch.split(self.basis, self.blocks, dim=1)
        y = torch.cat([lam[:, i] @ c for i, c in enumerate(chunks)])
        y = y.to(z.dtype)
        return y if add is None else add + y

    def forward(self, z: Any) -> Any:
        return self.forward_padded(z)

    def matrix(self) -> Any:
        """``P`` (D × d), for tests and small models."""
        eye = torch.eye(self.d, dtype=self.basis.dtype, device=self.basis.device)
        with torch.no_grad():
            return torch.stack([self(eye[j]) for j in range(self.d)], dim=1)


def build_task_vectors(tasks: Sequence[Any], *, init_seed: int = 0, seed: int = 0,
                       lr: float | None = None) -> Any:
    """Fine-tune θ₀ on each task and return the task vectors τ_t = θ_t − θ₀, shape (T, D).

    Every task must build the same architecture (``task.model_fn(init_seed)`` is θ₀ for all of
    them); each is trained in full with its own ``train_fn`` at ``lr`` (default: the task's first
    baseline learning rate).

    Parameters
    ----------
    tasks : sequence of :class:`~lowdim.subspace.tasks.Task`
    init_seed : int
        Seed of θ₀ — use the same one in :func:`~lowdim.subspace.find_d90`.
    seed : int
        Data-order seed of the fine-tuning runs.
    lr : float, optional

    Returns
    -------
    torch.Tensor of shape (len(tasks), D), float32
    """
    from lowdim.subspace.tasks import Task

    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise LowdimError("tasks must be a non-empty sequence of lowdim.subspace.tasks.Task objects")
    theta0 = flat_parameters(tasks[0].model_fn(int(init_seed)))
    out = []
    for task in tasks:
        model = task.model_fn(int(init_seed))
        start = flat_parameters(model)
        if start.shape != theta0.shape or not torch.equal(start, theta0):
            raise LowdimError(f"task {task.name!r} builds a different θ₀ (shape {tuple(start.shape)} vs "
                              f"{tuple(theta0.shape)}); task vectors need one shared starting point")
        torch.manual_seed(int(seed))
        task.train_fn(model, lr=float(lr if lr is not None else task.baseline_lrs[0]), seed=int(seed))
        out.append(flat_parameters(model) - theta0)
    return torch.stack(out)
