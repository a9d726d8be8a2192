"""Which codecs are worth evaluating at a budget, pruned by the PCA spectrum, the ID and the corpus size.

Budgets are real memory per vector at ``n_vectors``: a candidate is only tried where its fixed state
(PCA axes, codebooks, rotations) leaves room for codes. See :mod:`lowdim.compress.frontier`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MIN_VARIANCE_KEPT", "candidate_names", "smallest_budget"]

MIN_VARIANCE_KEPT = 0.6


def smallest_budget(dimension: float) -> int:
    """Budget below which recall usually falls fast: one bit per intrinsic direction (≥ 2 bytes).

    A heuristic on a TwoNN estimate, not a bound: :func:`recommend` serves smaller budgets too and
    reports the recall measured there.
    """
    return max(2, math.ceil(dimension / 8))


def _fixed_estimate(name: str, D: int, d: int) -> float:
    """Fixed bytes a candidate will store (planning only; reports use the fitted codec's bytes)."""
    q = name.split("+")[-1]
    red = 2 * D * d + 4 * D if "+" in name and name.startswith("pca") else 0
    if q.startswith("faiss:RaBitQ"):
        return red + 4 * D + 2048
    if q.startswith("faiss:"):
        return red + 4 * D * D + 4 * 256 * D + 2048
    per_dim = {"int8": 8, "int4": 8, "fp8-e4m3": 4, "binary": 12}.get(q, 0)
    return red + per_dim * d + 1024


def candidate_names(D: int, spectrum: np.ndarray, dimension: float, budgets: list[int], *,
                    faiss: bool = True, prefix_energy: float | None = None,
                    n_vectors: int | None = None) -> list[str]:
    """Codec names worth evaluating at these budgets (bytes per vector), pruned by the data.

    Parameters
    ----------
    D : int
        Embedding width.
    spectrum : ndarray of shape (D,)
        Cumulative variance fraction of the principal axes.
    dimension : float
        Intrinsic dimension of the corpus.
    budgets : list of int
    faiss : bool
        Whether FAISS product quantization may be used.
    prefix_energy : float, optional
        Variance fraction held by the first coordinates at the truncation width, divided by
        the PCA fraction at the same width; truncation is tried when it is ≥ 0.95.
    n_vectors : int, optional
        Corpus size: budgets are then real memory per vector (codes + fixed state / n), and a
        candidate is only tried where its fixed state leaves room for codes.
    """
    names: list[str] = []
    n = n_vectors

    def fits(name: str, code: float, d: int, B: float) -> bool:
        return code + (0 if n is None else _fixed_estimate(name, D, d) / n) <= B

    full = {"fp16": 2 * D, "int8": D, "fp8-e4m3": D, "int4": -(-D // 2), "binary": -(-D // 8)}
    for name, b in full.items():
        if any(fits(name, b, D, B) for B in budgets):
            names.append(name)
    for B in sorted(set(budgets), reverse=True):
        if n is not None and B <= D:  # codes and kept axes chosen together for this n
            names.append(f"pca+alloc{B}@{n}")
            if 8 * B >= D:  # raw coordinates: no axes to store, for when axes cost too much
                names.append(f"alloc{B}@{n}")
        elif B < D:  # above 8 bits/dimension there is nothing left to allocate
            names.append(f"pca+alloc{B}")
        # PCA truncation + rotated int4 at the width that fills B; never below the ID
        if n is None:
            d = 2 * B
        else:  # d/2 code bytes plus d float16 axes of D values, per vector
            d = 2 * int((B - (4 * D + 1024) / n) / (0.5 + (2 * D + 8) / n) / 2)
        if dimension <= d < D and spectrum[d - 1] >= MIN_VARIANCE_KEPT:
            names.append(f"pca{d}-rot+int4")
            if prefix_energy is not None and prefix_energy >= 0.95:
                names.append(f"trunc{d}+int4")
        # RaBitQ (Gao & Long 2024): a rotation estimator with almost no fixed state
        if faiss:
            fitting = [b for b in range(1, 9) if fits(f"faiss:RaBitQ{b}", _rabitq_bytes(D, b), D, B)]
            if fitting:
                names.append("faiss:RaBitQ" + (str(max(fitting)) if max(fitting) > 1 else ""))
        # product quantization only below one bit per ambient dimension
        if faiss and B <= D // 8:
            m = int(B - (0 if n is None else _fixed_estimate("faiss:", D, 0) / n))
            if m >= 4:
                names.append(f"faiss:OPQ{m}_{m * max(1, D // m)},PQ{m}np")
    seen: set[str] = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def _rabitq_bytes(D: int, bits: int) -> int:
    """Code bytes of FAISS RaBitQ: packed bits plus its per-vector correction factors."""
    return -(-D * bits // 8) + (8 if bits == 1 else 20)


def _bytes_of(name: str, D: int) -> int:
    """Bytes per vector of a candidate name, without fitting (as the grid builds them)."""
    q = name.split("+")[-1]
    red = name.split("+")[0] if "+" in name else ""
    d = D
    if red and any(ch.isdigit() for ch in red):
        import re

        d = int(re.search(r"\d+", red).group())
    if q.startswith("alloc"):
        return int(q[5:].split("@")[0])
    if q.startswith("faiss:RaBitQ"):
        return _rabitq_bytes(d, int(q[len("faiss:RaBitQ"):] or 1))
    if q.startswith("faiss:"):
        import re

        return int(re.search(r"PQ(\d+)", q).group(1))
    per = {"fp16": 16, "bf16": 16, "fp8-e4m3": 8, "fp8-e5m2": 8, "int8": 8, "int4": 4, "int2": 2, "int1": 1,
           "binary": 1, "binary-hamming": 1, "fp32": 32}[q]
    return -(-d * per // 8)
