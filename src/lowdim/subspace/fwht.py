"""Fast Walsh–Hadamard transform (FWHT) as a custom autograd function.

The unnormalised Walsh–Hadamard matrix in Sylvester order is symmetric and satisfies
``H_n @ H_n = n I``, so the transform is its own transpose: the backward pass is the same
transform applied to the incoming gradient, and nothing is saved for backward.

Instead of ``log2(n)`` butterfly stages (each a full pass over memory), ``H_n`` is factored as a
Kronecker product ``H_n = H_{f1} ⊗ H_{f2} ⊗ … ⊗ H_{fm}`` of small Hadamard matrices
(``f_i ≤ 64``); reshaping a length-``n`` vector to ``(f1, …, fm)`` turns the transform into ``m``
small dense matrix products, one per axis. These run as batched GEMMs at full BLAS / tensor-core
speed on CPU and GPU, with ``m`` (usually 2–3) passes over memory instead of ``log2(n)``.

References
----------
Fino & Algazi (1976), "Unified matrix treatment of the fast Walsh–Hadamard transform",
IEEE Trans. Computers C-25(11).
"""

from __future__ import annotations

from typing import Any

from lowdim.errors import require

torch = require("torch", "torch")

__all__ = ["fwht", "fwht_add", "hadamard_factors"]

_MAX_FACTOR = 64
_CACHE: dict[tuple[int, Any, Any], Any] = {}


def hadamard_factors(n: int) -> list[int]:
    """Split a power of two ``n`` into near-equal power-of-two factors, each ≤ 64."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"FWHT length must be a power of two, got {n}")
    k = n.bit_length() - 1
    m = max(1, -(-k // 6))  # number of factors, each at most 2**6
    base, extra = divmod(k, m)
    return [2 ** (base + (1 if i < extra else 0)) for i in range(m)]


def _hadamard(f: int, dtype: Any, device: Any) -> Any:
    key = (f, dtype, str(device))
    H = _CACHE.get(key)
    if H is None:
        H = torch.ones(1, 1, dtype=torch.float64)
        while H.shape[0] < f:
            H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
        H = H.to(dtype=dtype, device=device)
        _CACHE[key] = H
    return H


def _fwht_raw(x: Any, add: Any = None) -> Any:
    """Unnormalised FWHT along the last axis (any leading batch shape); ``+ add`` fused if given.

    ``add`` (same number of elements as ``x``) is added inside the last GEMM (``addmm`` with
    ``beta=1``), which saves one pass over memory when the transform feeds a sum.
    """
    n = x.shape[-1]
    factors = hadamard_factors(n)
    batch = x.shape[:-1]
    y = x.reshape(-1, n)
    rows = y.shape[0]
    left, right = rows, n
    for f in factors:
        right //= f
        H = _hadamard(f, x.dtype, x.device)
        if right == 1:  # last axis: one GEMM with H on the right
            y2 = y.reshape(-1, f)
            y = (torch.addmm(add.reshape(-1, f), y2, H) if add is not None else y2 @ H).reshape(rows, n)
        else:  # middle axis: H @ (left, f, right), a batched GEMM
            y = torch.matmul(H, y.reshape(left, f, right)).reshape(rows, n)
        left *= f
    return y.reshape(*batch, n)


class _FWHT(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any, add: Any) -> Any:
        ctx.add_grad = add is not None and add.requires_grad
        return _fwht_raw(x, add)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        g = g.contiguous()
        return _fwht_raw(g), (g if ctx.add_grad else None)


def fwht_add(x: Any, add: Any) -> Any:
    """``fwht(x) + add`` with the addition fused into the transform's last GEMM."""
    return _FWHT.apply(x, add)


def fwht(x: Any) -> Any:
    """Unnormalised Walsh–Hadamard transform of ``x`` along its last axis.

    Parameters
    ----------
    x : torch.Tensor of shape (..., n)
        ``n`` a power of two; float32 or float64.

    Returns
    -------
    torch.Tensor
        ``x @ H_n`` where ``H_n`` is the Sylvester-order Hadamard matrix
        (``scipy.linalg.hadamard(n)``). Differentiable: the gradient is ``g @ H_n``.

    Examples
    --------
    >>> import torch
    >>> fwht(torch.tensor([1.0, 0.0, 0.0, 0.0])).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    return _FWHT.apply(x, None)
