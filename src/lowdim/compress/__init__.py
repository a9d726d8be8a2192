"""Embedding compression under a memory budget.

A :class:`Codec` is a reducer (PCA, rotation, random projection, prefix truncation) composed with a
quantizer (float16/bfloat16/float8, calibrated int8/int4, binary, bit allocation, FAISS PQ/OPQ/
RaBitQ). :func:`frontier` evaluates a grid pruned by the PCA spectrum and the intrinsic dimension
and returns the memory-vs-recall Pareto front; :func:`recommend` picks a codec for a budget. Memory
is real memory at the corpus size: codes plus every fixed array (``Codec.memory_bytes(n)``).

Examples
--------
>>> import numpy as np
>>> from lowdim.compress import recommend
>>> rng = np.random.default_rng(0)
>>> X = (rng.normal(size=(1500, 8)) @ rng.normal(size=(8, 64))).astype(np.float32)
>>> rec = recommend(X, ratio=16, faiss=False)
>>> rec.report.memory_per_vector <= 4 * 64 / 16    # codes + PCA axes + scales, at n = 1500
True
>>> rec.codec.memory_bytes(1500) == 1500 * rec.codec.code_bytes + rec.codec.fixed_bytes
True
"""

from lowdim.compress.codec import Codec
from lowdim.compress.evaluate import CodecReport, evaluate, ground_truth
from lowdim.compress.frontier import Frontier, Recommendation, frontier, pareto_front, recommend

__all__ = ["Codec", "CodecReport", "Frontier", "Recommendation", "evaluate", "frontier", "ground_truth",
           "pareto_front", "recommend"]
