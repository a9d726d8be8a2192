"""LR²VQ: low-rank representations of weight subvectors, then k-means codebooks.

Zhu, Zhou, Zhong, "Learning Low-Rank Representations for Model Compression" (LR²VQ),
arXiv 2211.11397 (2022). Each weight matrix (``out × in``) is cut into subvectors of ``m``
consecutive input weights (``out·in/m`` rows of length ``m``). Plain vector quantisation (PQ, the
baseline) clusters those rows with k-means: ``log2 k`` bits per ``m`` weights plus a ``k × m``
codebook. LR²VQ first represents every subvector as ``w = z P + μ`` with a low-rank
representation ``z ∈ R^d̃`` and a per-layer projection ``P ∈ R^{d̃×m}``, trains the model in that
form on the task loss, then clusters the ``z`` in ``d̃`` dimensions and fine-tunes codebook and
projection with the codes fixed. ``m`` (and ``k``) fix the compression; ``d̃`` trades
low-rank error against clustering error and is chosen before fine-tuning — here from the
measured intrinsic dimension of the subvector cloud (:func:`lowdim.estimate`), rounded up.

The pipeline on a torch model (every ``nn.Linear`` with enough subvectors; the others are kept
dense and counted at the storage dtype):

1. :func:`to_lrr` — replace layers by :class:`LRRLinear` (PCA of the subvectors from
   ``lowdim.compress``'s :class:`~lowdim.compress.reducers.PCA`; ``d̃`` from the ID); train.
2. :func:`quantize` — k-means (scikit-learn, k-means++) on ``z`` (LR²VQ) or on the raw subvectors
   (PQ) → :class:`VQLinear`; fine-tune (codebook, projection, bias are the parameters).
3. :func:`storage` — round what is stored to float16 and count every byte: packed codes
   (``lowdim.compress.quantizers.pack_bits``), codebooks, projections, means, biases, dense layers.

Examples
--------
>>> import numpy as np, torch
>>> from lowdim.lowrank.lr2vq import quantize, storage
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
>>> rep = quantize(net, m=8, k=16, min_subvectors=64)
>>> [r["layer"] for r in rep]
['0']
>>> s = storage(net)
>>> s["compressed_layers"], round(s["bits_per_weight"], 2)
(1, 3.58)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["LRRLinear", "VQLinear", "choose_dim", "quantize", "storage", "subvectors", "to_lrr"]

torch = require("torch", "torch")
nn = torch.nn


def subvectors(W: Any, m: int) -> np.ndarray:
    """Rows of ``m`` consecutive input weights: ``(out·in/m, m)`` float64 array."""
    W = np.asarray(W.detach().cpu().numpy() if hasattr(W, "detach") else W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] % int(m):
        raise LowdimError(f"subvector size m={m} must divide the input width of a weight of shape "
                          f"{W.shape}; choose m among the divisors of {W.shape[-1]}")
    return W.reshape(-1, int(m))


def choose_dim(X: np.ndarray, *, method: str = "auto", random_state: int | None = 0) -> tuple[int, Any]:
    """``d̃ = ceil(ID)`` of the subvector cloud, clipped to ``[1, m]``; returns ``(d̃, IDResult)``."""
    from lowdim import estimate

    res = estimate(np.asarray(X, dtype=np.float64), method=method, random_state=random_state)
    d = int(np.clip(math.ceil(float(res.dimension) - 1e-9), 1, X.shape[1]))
    return d, res


class LRRLinear(nn.Module):
    """``W = reshape(Z P + μ)``: trainable representations ``Z`` (n_sub × d̃), projection ``P``."""

    def __init__(self, Z: Any, P: Any, mu: Any, bias: Any, shape: tuple[int, int]) -> None:
        super().__init__()
        self.shape = (int(shape[0]), int(shape[1]))
        self.Z, self.P = nn.Parameter(Z.clone()), nn.Parameter(P.clone())
        self.register_buffer("mu", mu.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    def weight(self) -> Any:
        return (self.Z @ self.P + self.mu).reshape(self.shape)

    def forward(self, x: Any) -> Any:
        return nn.functional.linear(x, self.weight(), self.bias)


class VQLinear(nn.Module):
    """``W = reshape(C[codes] P + μ)`` (LR²VQ) or ``reshape(C[codes])`` (PQ, ``P is None``).

    ``codes`` is a fixed buffer; ``codebook``, ``P`` and ``bias`` are trainable.
    """

    def __init__(self, codes: Any, codebook: Any, P: Any, mu: Any, bias: Any,
                 shape: tuple[int, int]) -> None:
        super().__init__()
        self.shape = (int(shape[0]), int(shape[1]))
        self.register_buffer("codes", codes.clone())
        self.codebook = nn.Parameter(codebook.clone())
        self.P = None if P is None else nn.Parameter(P.clone())
        self.register_buffer("mu", None if mu is None else mu.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    @property
    def k(self) -> int:
        return self.codebook.shape[0]

    def weight(self) -> Any:
        Y = self.codebook[self.codes]
        if self.P is not None:
            Y = Y @ self.P + self.mu
        return Y.reshape(self.shape)

    def forward(self, x: Any) -> Any:
        return nn.functional.linear(x, self.weight(), self.bias)

    def stored(self, dtype: str = "float16") -> dict[str, np.ndarray]:
        """The arrays a file must hold: packed codes plus the float arrays in ``dtype``."""
        from lowdim.compress.quantizers import pack_bits

        bits = next(b for b in (1, 2, 4, 8) if 2 ** b >= self.k) if self.k <= 256 else 16
        c = self.codes.cpu().numpy()
        codes = (pack_bits(c[None, :].astype(np.uint8), bits) if bits <= 8 else c.astype(np.uint16))
        out = {"codes": codes, "codebook": self.codebook.detach().cpu().numpy().astype(dtype)}
        if self.P is not None:
            out["P"] = self.P.detach().cpu().numpy().astype(dtype)
            out["mu"] = self.mu.cpu().numpy().astype(dtype)
        if self.bias is not None:
            out["bias"] = self.bias.detach().cpu().numpy().astype(dtype)
        return out


def _linears(model: Any, m: int, min_subvectors: int) -> list[tuple[str, Any]]:
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, LRRLinear)):
            shape = mod.weight.shape if isinstance(mod, nn.Linear) else mod.shape
            if shape[1] % m == 0 and shape[0] * shape[1] // m >= min_subvectors:
                out.append((name, mod))
    return out


def _replace(model: Any, name: str, new: Any) -> None:
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], new)


def to_lrr(model: Any, *, m: int, d_tilde: int | str = "id", min_subvectors: int = 1024,
           method: str = "auto", random_state: int | None = 0) -> list[dict[str, Any]]:
    """Replace each eligible ``nn.Linear`` by an :class:`LRRLinear` (in place); per-layer report.

    ``d_tilde="id"`` takes ``ceil`` of the subvector cloud's ID (estimator ``method``); an int
    fixes it. The initial ``Z, P, μ`` are the PCA of the subvectors (``lowdim.compress``), so the
    layer starts at the best rank-``d̃`` approximation of its subvectors.
    """
    from lowdim.compress.reducers import PCA

    report = []
    for name, lin in _linears(model, int(m), min_subvectors):
        if not isinstance(lin, nn.Linear):
            continue
        X = subvectors(lin.weight, m)
        if d_tilde == "id":
            d, res = choose_dim(X, method=method, random_state=random_state)
            info = {"id": float(res.dimension), "id_method": res.method}
        elif isinstance(d_tilde, (int, np.integer)) and 1 <= int(d_tilde) <= m:
            d, info = int(d_tilde), {}
        else:
            raise LowdimError(f"d_tilde={d_tilde!r} must be 'id' or an integer in [1, m={m}]")
        pca = PCA(d, dtype="float32").fit(X.astype(np.float32), random_state=random_state)
        Z = torch.as_tensor(pca.transform(X), dtype=lin.weight.dtype)
        P = torch.as_tensor(pca.matrix_.T.copy(), dtype=lin.weight.dtype)
        mu = torch.as_tensor(pca.mean_, dtype=lin.weight.dtype)
        err = float(np.sum((Z.double().numpy() @ P.double().numpy() + pca.mean_ - X) ** 2) / np.sum(X ** 2))
        _replace(model, name, LRRLinear(Z, P, mu, lin.bias, tuple(lin.weight.shape)))
        report.append({"layer": name, "m": int(m), "d_tilde": d, "n_subvectors": len(X),
                       "relative_lowrank_error": err, **info})
    return report


def quantize(model: Any, *, m: int, k: int, min_subvectors: int | None = None,
             random_state: int | None = 0, n_init: int = 1) -> list[dict[str, Any]]:
    """k-means codebooks (in place): :class:`LRRLinear` → LR²VQ, ``nn.Linear`` → PQ.

    Layers with fewer than ``min_subvectors`` (default ``4 k``) subvectors stay as they are.
    """
    from sklearn.cluster import KMeans

    if not 2 <= int(k) <= 65536:
        raise LowdimError(f"k={k} must be in [2, 65536] clusters")
    report = []
    for name, lin in _linears(model, int(m), 4 * int(k) if min_subvectors is None else min_subvectors):
        if isinstance(lin, LRRLinear):
            Y, P, mu, shape = lin.Z.detach().double().cpu().numpy(), lin.P.detach(), lin.mu, lin.shape
        else:
            Y, P, mu, shape = subvectors(lin.weight, m), None, None, tuple(lin.weight.shape)
        km = KMeans(n_clusters=int(k), n_init=n_init, random_state=random_state).fit(Y)
        codes = torch.as_tensor(km.labels_, dtype=torch.long)
        C = torch.as_tensor(km.cluster_centers_, dtype=torch.float32)
        _replace(model, name, VQLinear(codes, C, P, mu, lin.bias, shape))
        report.append({"layer": name, "kind": "lr2vq" if P is not None else "pq", "k": int(k),
                       "dim": Y.shape[1], "relative_cluster_error": float(km.inertia_ / np.sum(Y ** 2))})
    return report


def storage(model: Any, *, dtype: str = "float16", round_model: bool = True) -> dict[str, Any]:
    """Bytes of everything stored, per weight of the original matrices.

    With ``round_model`` the float arrays of the model are rounded to ``dtype`` in place, so the
    accuracy measured afterwards is that of what is stored. Dense ``nn.Linear`` layers (and any
    other parameters) count at ``dtype``; :class:`LRRLinear` layers are not a storage format and
    are refused.
    """
    item = np.dtype(dtype).itemsize
    total, weights, n_vq = 0, 0, 0
    counted: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, LRRLinear):
            raise LowdimError("storage(): the model still holds LRRLinear layers; call quantize() first")
        if isinstance(mod, VQLinear):
            n_vq += 1
            weights += mod.shape[0] * mod.shape[1]
            total += sum(a.nbytes for a in mod.stored(dtype).values())
            counted.update(id(p) for p in mod.parameters())
        elif isinstance(mod, nn.Linear):
            weights += mod.weight.numel()
    for p in model.parameters():
        if id(p) not in counted:
            total += p.numel() * item
    if round_model:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(getattr(torch, dtype)).to(p.dtype))
            for mod in model.modules():
                if isinstance(mod, VQLinear) and mod.mu is not None:
                    mod.mu.copy_(mod.mu.to(getattr(torch, dtype)).to(mod.mu.dtype))
    return {"bytes": int(total), "weights": int(weights), "compressed_layers": n_vq,
            "bits_per_weight": 8.0 * total / max(1, weights), "dtype": dtype}
