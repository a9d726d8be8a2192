"""Random projections ``P: R^d -> R^D`` with unit-norm columns, fully defined by (D, d, seed).

Three families, after Li et al. (2018), "Measuring the Intrinsic Dimension of Objective
Landscapes" (ICLR), Section 2 and Appendix S7:

- :class:`DenseProjection` — i.i.d. Gaussian, materialised chunk-wise from the seed; memory
  ``4·D·d`` bytes, refused above ``max_bytes``.
- :class:`SparseProjection` — Gaussian entries at density ``1/√D`` (Li, Hastie & Church 2006,
  "Very sparse random projections"), stored as CSR for ``P`` and ``Pᵀ``.
- :class:`FastfoodProjection` — stacked Fastfood blocks ``V_b = H G_b Π_b H B_b``
  (Le, Sarlós & Smola 2013, "Fastfood — approximating kernel expansions in loglinear time"),
  ``O(D log d)`` time and ``O(D)`` memory; the default.

Every projection is an ``nn.Module`` whose random state lives in *non-persistent* buffers: it
moves with ``.to(device)`` but is not written to ``state_dict`` — it is regenerated from the seed
(always on the CPU with numpy/torch CPU generators, so the same seed gives the same ``P`` on
every device). Columns are scaled to unit Euclidean norm over all ``D`` rows (Li et al.'s
convention, over the whole network).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require
from lowdim.subspace.fwht import fwht, fwht_add

torch = require("torch", "torch")

__all__ = ["PROJECTIONS", "RANDOM_PROJECTIONS", "DenseProjection", "FastfoodProjection", "PerTensorProjection", "SparseProjection",
           "make_projection"]

#: projection kinds; "task_vectors" (aTLAS, :mod:`lowdim.subspace.task_vectors`) needs ``basis`` and ``blocks``
RANDOM_PROJECTIONS = ("fastfood", "dense", "sparse")  # fully defined by (D, d, seed)
PROJECTIONS = (*RANDOM_PROJECTIONS, "task_vectors")
DEFAULT_MAX_DENSE_BYTES = 2 * 1024**3


class _Projection(torch.nn.Module):
    """Base class: ``forward(z)`` maps ``z`` of shape (d,) to ``P z`` of shape (D,)."""

    kind = "?"

    def __init__(self, D: int, d: int, seed: int) -> None:
        super().__init__()
        self.D, self.d, self.seed = int(D), int(d), int(seed)
        self.padded_length = self.D

    def forward(self, z: Any) -> Any:
        return self.forward_padded(z)[: self.D]

    def forward_padded(self, z: Any, add: Any = None) -> Any:
        """``P z (+ add)`` as a vector of length ``padded_length`` ≥ D (entries past D are junk).

        Callers that slice the result anyway (a model splitting θ into tensors) avoid a copy.
        """
        y = self._project(z)
        return y if add is None else add + y

    def extra_repr(self) -> str:
        return f"D={self.D}, d={self.d}, seed={self.seed}"

    @property
    def device(self) -> Any:
        return next(iter(self.buffers())).device

    def matrix(self) -> Any:
        """Materialise ``P`` (D × d) by projecting the unit vectors; for tests and small D."""
        eye = torch.eye(self.d, device=self.device)
        with torch.no_grad():
            return torch.stack([self(eye[j]) for j in range(self.d)], dim=1)


def make_projection(kind: str, D: int, d: int, *, seed: int = 0,
                    max_dense_bytes: int = DEFAULT_MAX_DENSE_BYTES, allow_wide: bool = False,
                    basis: Any = None, blocks: Any = None) -> _Projection:
    """Build a projection by name (``"fastfood"``, ``"dense"``, ``"sparse"`` or ``"task_vectors"``).

    ``"task_vectors"`` is aTLAS's structured basis (:class:`~lowdim.subspace.task_vectors.TaskVectorProjection`):
    it needs ``basis`` (T × D task vectors) and ``blocks`` (parameter-block sizes).

    ``allow_wide=True`` accepts ``d > D`` (a block of a per-tensor projection for a tensor
    smaller than d: its columns still have unit norm, they just cannot be orthogonal).

    Examples
    --------
    >>> P = make_projection("fastfood", 1000, 16, seed=0)
    >>> M = P.matrix()
    >>> tuple(M.shape), bool(abs(M.norm(dim=0) - 1).max() < 1e-5)
    ((1000, 16), True)
    """
    from lowdim.validation import check_choice, check_int

    check_choice("projection", kind, PROJECTIONS)
    D = check_int("D (number of trainable parameters)", D, low=1)
    d = check_int("d", d, low=1, high=None if allow_wide else D,
                  fix="d cannot exceed the number of trainable parameters")
    check_int("seed", seed, low=0)
    if kind == "task_vectors":
        if basis is None or blocks is None:
            raise LowdimError("projection='task_vectors' needs basis= (task vectors, shape (T, D)) and blocks= "
                              "(parameter-block sizes); build them with lowdim.subspace.task_vectors.build_task_vectors")
        from lowdim.subspace.task_vectors import TaskVectorProjection

        return TaskVectorProjection(basis, blocks, d, seed=seed)
    if kind == "dense":
        return DenseProjection(D, d, seed=seed, max_bytes=max_dense_bytes)
    if kind == "sparse":
        return SparseProjection(D, d, seed=seed)
    return FastfoodProjection(D, d, seed=seed)


class DenseProjection(_Projection):
    """Gaussian ``P`` with unit-norm columns, generated in row chunks from ``seed``.

    Raises a :class:`LowdimError` recommending ``projection="fastfood"`` when ``4·D·d`` bytes
    exceed ``max_bytes`` (default 2 GiB).
    """

    kind = "dense"

    def __init__(self, D: int, d: int, *, seed: int = 0, max_bytes: int = DEFAULT_MAX_DENSE_BYTES) -> None:
        need = 4 * int(D) * int(d)
        if need > max_bytes:
            raise LowdimError(
                f"a dense projection for D={D} parameters and d={d} needs {need / 2**30:.2f} GiB "
                f"(limit max_dense_bytes={max_bytes / 2**30:.2f} GiB); use projection='fastfood' "
                "(O(D) memory) or 'sparse', or raise max_dense_bytes"
            )
        super().__init__(D, d, seed)
        gen = torch.Generator().manual_seed(self.seed)
        P = torch.empty(D, d)
        chunk = max(1, (1 << 22) // d)
        for a in range(0, D, chunk):
            P[a:a + chunk] = torch.randn(min(chunk, D - a), d, generator=gen)
        P /= P.norm(dim=0, keepdim=True)
        self.register_buffer("P", P, persistent=False)

    def _project(self, z: Any) -> Any:
        return self.P @ z


class SparseProjection(_Projection):
    """Very sparse Gaussian ``P`` (density ``1/√D``, at least one entry per column), unit columns.

    Stored as row-sorted coordinate triplets; ``P z`` is one ``index_add``.
    """

    kind = "sparse"

    def __init__(self, D: int, d: int, *, seed: int = 0) -> None:
        super().__init__(D, d, seed)
        rng = np.random.default_rng(self.seed)
        k = np.maximum(rng.binomial(D, 1.0 / math.sqrt(D), size=d), 1)
        rows = rng.integers(0, D, size=int(k.sum()))
        cols = np.repeat(np.arange(d), k)
        vals = rng.standard_normal(int(k.sum()))
        # merge repeated positions (their values add up) and sort row-major
        key, inv = np.unique(rows * np.int64(d) + cols, return_inverse=True)
        vals = np.bincount(inv, weights=vals, minlength=key.size)
        rows, cols = key // d, key % d
        norms = np.sqrt(np.bincount(cols, weights=vals * vals, minlength=d))
        vals = vals / norms[cols]
        self.nnz = int(vals.size)
        self.register_buffer("rows", torch.from_numpy(rows), persistent=False)
        self.register_buffer("cols", torch.from_numpy(cols), persistent=False)
        self.register_buffer("vals", torch.from_numpy(vals).float(), persistent=False)

    def _project(self, z: Any) -> Any:
        # P z as a scatter of nnz products; autograd's backward is the matching gather-add (Pᵀ g)
        contrib = self.vals.to(z.dtype) * z.index_select(0, self.cols)
        return torch.zeros(self.D, dtype=z.dtype, device=z.device).index_add_(0, self.rows, contrib)


class _Spread(torch.autograd.Function):
    """``y[b, i] = u[perm[b, i]]``: block b holds its own permutation of the length-n vector u.

    The backward un-permutes each block (a scatter without collisions) and sums over blocks.
    """

    @staticmethod
    def forward(ctx: Any, u: Any, perm: Any) -> Any:
        ctx.perm = perm
        return u.index_select(0, perm.reshape(-1)).view(perm.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        out = torch.empty_like(g)
        out.scatter_(1, ctx.perm, g)
        return out.sum(0), None


class FastfoodProjection(_Projection):
    """Stacked Fastfood blocks with exact unit-norm columns.

    ``z`` (scaled by the column normalisation, padded to ``n = 2^⌈log2 d⌉``) goes through
    ``ceil(D / n)`` blocks ``V_b = H G_b Π_b H B`` (``B`` random signs, ``Π_b`` a random
    permutation, ``G_b`` Gaussian, ``H`` the Walsh–Hadamard matrix), one per slice of ``n``
    output coordinates, all batched into one ``(n_blocks, n)`` tensor; the output is the first
    ``D`` entries. ``B`` is shared by the blocks: it only flips the signs of z's coordinates
    (column signs of P, which leaves the distribution of the Gram matrix ``PᵀP`` unchanged), and
    sharing it lets ``H B z`` be computed once on the n-vector instead of once per block — a
    whole D-sized transform saved in the forward and in the backward pass. Each column of a full block has squared norm exactly ``n·‖G_b‖²``; the rows of
    the truncated last block are measured exactly (or, when ``d·n > 2^26``, by their expectation),
    so columns have unit norm. The FWHT is :func:`lowdim.subspace.fwht.fwht` (GEMM-factored,
    self-adjoint custom autograd function). Le et al.'s extra row scaling ``S`` is replaced by
    this exact column normalisation.
    """

    kind = "fastfood"

    def __init__(self, D: int, d: int, *, seed: int = 0) -> None:
        super().__init__(D, d, seed)
        n = 1 << max(0, (d - 1).bit_length())
        nb = -(-D // n)
        self.n, self.n_blocks = n, nb
        self.padded_length = n * nb
        gen = torch.Generator().manual_seed(self.seed)
        B = torch.randint(0, 2, (n,), generator=gen).mul_(2).sub_(1).float()
        G = torch.randn(nb, n, generator=gen)
        perm = torch.argsort(torch.rand(nb, n, generator=gen), dim=1)
        self.register_buffer("B", B, persistent=False)
        self.register_buffer("G", G, persistent=False)
        self.register_buffer("perm", perm, persistent=False)
        # exact column norms: full blocks contribute n·|G_b|^2; the last block's first r rows
        gsq = (G.double() ** 2).sum(dim=1) * n
        r = D - (nb - 1) * n
        norm2 = torch.full((d,), float(gsq[:-1].sum()) if nb > 1 else 0.0, dtype=torch.float64)
        if r == n:
            norm2 += float(gsq[-1])
        elif d * n <= 1 << 26:
            norm2 += self._last_block_partial(r)
        else:
            norm2 += float(gsq[-1]) * r / n
        self.register_buffer("scale", (1.0 / norm2.sqrt()).float(), persistent=False)

    def _last_block_partial(self, r: int) -> Any:
        d, n = self.d, self.n
        out = torch.empty(d, dtype=torch.float64)
        step = max(1, (1 << 22) // n)
        with torch.no_grad():
            for a in range(0, d, step):
                b = min(d, a + step)
                X = torch.zeros(b - a, n, dtype=torch.float64)
                X[torch.arange(b - a), torch.arange(a, b)] = 1.0
                X = fwht(X * self.B.double())
                X = torch.gather(X, 1, self.perm[-1].expand(b - a, n)) * self.G[-1].double()
                X = fwht(X)[:, :r]
                out[a:b] = (X * X).sum(dim=1)
        return out

    def _project(self, z: Any) -> Any:
        return self.forward_padded(z)

    def forward_padded(self, z: Any, add: Any = None) -> Any:
        x = z * self.scale
        if self.n > self.d:
            x = torch.nn.functional.pad(x, (0, self.n - self.d))
        u = fwht(self.B * x)  # H B z: one n-vector shared by all blocks
        y = _Spread.apply(u, self.perm) * self.G
        if add is not None:  # θ₀ + P z inside the last GEMM of the transform
            return fwht_add(y, add.view(self.n_blocks, self.n)).reshape(-1)
        return fwht(y).reshape(-1)


class PerTensorProjection(_Projection):
    """One independent projection per parameter tensor, each with unit-norm columns.

    The option "per-tensor blocks" of Li et al.'s convention: tensor i gets ``θ_i = θ₀_i + P_i z``
    with ``‖P_i e_j‖ = 1`` (so a column of the stacked P has norm √(number of tensors)). Every
    tensor still sees all of z, also a tensor smaller than d. Block i uses seed
    ``seed · 1,000,003 + i``.
    """

    def __init__(self, kind: str, sizes: list[int], d: int, *, seed: int = 0,
                 max_dense_bytes: int = DEFAULT_MAX_DENSE_BYTES) -> None:
        super().__init__(sum(sizes), d, seed)
        self.kind = kind
        self.blocks = torch.nn.ModuleList([
            make_projection(kind, n, d, seed=self.seed * 1_000_003 + i, max_dense_bytes=max_dense_bytes,
                            allow_wide=True) for i, n in enumerate(sizes)])

    def forward_padded(self, z: Any, add: Any = None) -> Any:
        y = torch.cat([b(z) for b in self.blocks])
        return y if add is None else add + y
