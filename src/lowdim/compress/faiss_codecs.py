"""Product quantization, OPQ and RaBitQ through FAISS (optional extra ``lowdim[faiss]``).

We do not re-implement these: FAISS's standalone-codec API (``sa_encode`` / ``sa_decode``) gives
the codes, and its own asymmetric search scores one block of codes at a time.

- PQ (Jégou, Douze & Schmid 2011): ``"PQ{m}x{nbits}np"`` — the ``np`` variant skips the
  polysemous training that makes plain ``PQm`` about 20× slower to train, with the same codes.
- OPQ (Ge et al. 2013): ``"OPQ{m}_{d},PQ{m}x{nbits}np"`` — a learned rotation before PQ.
- RaBitQ (Gao & Long 2024): ``"RaBitQ{bits}"`` — rotation + bits per dimension + two corrective
  floats per vector (so ``d·bits/8 + 20`` bytes per vector, counted exactly here).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from lowdim.compress.quantizers import Quantizer
from lowdim.errors import LowdimError, require

__all__ = ["FaissQuantizer", "quiet_stderr"]

#: Alternating optimisation rounds of OPQ (FAISS's default is 50: minutes on 2 cores for 5k vectors).
OPQ_ITERATIONS = 20

_FACTORY = re.compile(r"^(OPQ\d+(_\d+)?,)?PQ\d+(x\d+)?(np|fs)?$|^RaBitQ\d*$")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C++ writes to stderr (FAISS k-means prints a warning per sub-quantizer on small sets)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, notebooks
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


class FaissQuantizer(Quantizer):
    """A FAISS codec given by an index-factory string.

    Parameters
    ----------
    factory : str
        ``"PQ48x8np"``, ``"PQ96x4np"``, ``"OPQ48_384,PQ48np"``, ``"RaBitQ4"`` …

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.random.default_rng(0).normal(size=(3000, 32)).astype(np.float32)
    >>> q = FaissQuantizer("PQ8x4np").fit(Y)
    >>> q.code_size
    4
    """

    kind = "faiss"

    def __init__(self, factory: str) -> None:
        if not isinstance(factory, str) or not _FACTORY.match(factory):
            raise LowdimError(f"FAISS codec {factory!r} is not supported; use PQ{{m}}x{{bits}}np, "
                              "OPQ{m}_{d},PQ{m}np or RaBitQ{bits}")
        self.factory = factory

    def fit(self, Y: np.ndarray, *, weights: np.ndarray | None = None,
            random_state: int | None = 0) -> FaissQuantizer:
        faiss = require("faiss", "faiss")
        d = Y.shape[1]
        self.dim_ = d
        try:
            index = faiss.index_factory(d, self.factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise LowdimError(f"FAISS rejected codec {self.factory!r} for {d}-dimensional vectors: "
                              f"{str(exc).splitlines()[-1]}; the number of sub-quantizers must divide "
                              "the dimension") from None
        _seed(faiss, index, random_state)
        threads = faiss.omp_get_max_threads()
        # one OpenMP thread: FAISS's k-means on small training sets runs several times faster
        # than with contended threads (measured: PQ96x8np on 5k×384, 15 s vs 72 s on 2 busy cores)
        faiss.omp_set_num_threads(1)
        from threadpoolctl import threadpool_limits

        try:
            # one BLAS thread too: OPQ's per-iteration SVD suffers from contended threads
            with quiet_stderr(), threadpool_limits(limits=1, user_api="blas"):
                index.train(np.ascontiguousarray(Y, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
        self.index_ = index
        return self

    @property
    def code_size(self) -> int:
        return int(self.index_.sa_code_size())

    def encode(self, Y: np.ndarray) -> np.ndarray:
        return self.index_.sa_encode(np.ascontiguousarray(Y, dtype=np.float32))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.index_.sa_decode(np.ascontiguousarray(codes))

    def topk(self, prepared: Any, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's own asymmetric search over one block of codes (ADC for PQ, RaBitQ estimator)."""
        faiss = require("faiss", "faiss")
        index = faiss.clone_index(self.index_)
        index.reset()
        base = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
        flat = np.ascontiguousarray(codes).ravel()
        base.codes.resize(0)
        faiss.copy_array_to_vector(flat, base.codes)
        base.ntotal = index.ntotal = codes.shape[0]
        vals, idx = index.search(prepared, min(k, codes.shape[0]))
        return vals, idx

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "factory": self.factory}

    def arrays(self) -> dict[str, np.ndarray]:
        faiss = require("faiss", "faiss")
        return {"index": faiss.serialize_index(self.index_)}

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> FaissQuantizer:
        faiss = require("faiss", "faiss")
        q = cls(str(spec["factory"]))
        q.dim_ = int(spec["dim"])
        blob = arrays.get("index")
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise LowdimError("codec file: the FAISS index bytes are missing or malformed")
        try:
            index = faiss.deserialize_index(blob)
        except Exception as exc:
            raise LowdimError(f"codec file: the FAISS index could not be read ({type(exc).__name__})") from None
        if index.d != q.dim_:
            raise LowdimError(f"codec file: FAISS index has dimension {index.d}, spec says {q.dim_}")
        q.index_ = index
        return q

    def label(self) -> str:
        return f"faiss:{self.factory}"


def _seed(faiss: Any, index: Any, random_state: int | None) -> None:
    """Seed the k-means of the PQ sub-quantizers: ``1234 + random_state``.

    1234 is FAISS's own default, so ``random_state=0`` reproduces what FAISS alone gives.
    """
    seed = 1234 + (0 if random_state is None else int(random_state))
    base = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    pq = getattr(base, "pq", None)
    if pq is not None:
        pq.cp.seed = seed
    if isinstance(index, faiss.IndexPreTransform):
        for i in range(index.chain.size()):
            vt = faiss.downcast_VectorTransform(index.chain.at(i))
            if isinstance(vt, faiss.OPQMatrix):
                vt.verbose = False
                vt.niter = OPQ_ITERATIONS
