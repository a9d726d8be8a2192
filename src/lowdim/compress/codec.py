"""A codec is a reducer composed with a quantizer: fit, encode, decode, search, save, load."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.compress.quantizers import QUANTIZERS, Binary, BitAllocation, Float, Quantizer, Uniform
from lowdim.compress.reducers import (
    PCA,
    REDUCERS,
    Identity,
    RandomProjection,
    RandomRotation,
    Reducer,
    Truncate,
)
from lowdim.errors import LowdimError
from lowdim.validation import as_points, check_choice

__all__ = ["FORMAT", "Codec", "check_vectors"]

FORMAT = "lowdim-codec"
VERSION = 1
#: bytes set aside for the JSON spec when a budget-filling codec plans its fixed state
SPEC_ALLOWANCE = 3072


def check_vectors(X: Any, *, name: str, metric: str, dim: int | None = None,
                  min_samples: int = 1) -> np.ndarray:
    """Validate embeddings: 2-D, finite, the expected width; unit length under cosine.

    Under ``metric="cosine"`` zero vectors raise (they have no direction) and rows that are not
    unit length are normalised with a warning.
    """
    check_choice("metric", metric, ("ip", "cosine"))  # one place: every compress entry point checks here
    A = as_points(X, name=name, min_samples=min_samples, dtype=np.float32, allow_constant=True)
    if dim is not None and A.shape[1] != dim:
        raise LowdimError(f"{name} has {A.shape[1]} dimensions (shape {A.shape}) but the corpus/codec has "
                          f"{dim}; embed queries and corpus with the same model")
    if metric == "cosine":
        norms = np.linalg.norm(A, axis=1)
        zero = np.flatnonzero(norms == 0)
        if len(zero):
            raise LowdimError(f"{name} (shape {A.shape}) has {len(zero)} zero vectors (first at row {zero[0]}); "
                              "cosine similarity is undefined for them: drop those rows or use metric='ip'")
        off = np.abs(norms - 1) > 1e-3
        if off.any():
            warnings.warn(f"{name}: {int(off.sum())} of {len(A)} vectors are not unit length under "
                          "metric='cosine'; normalised them", UserWarning, stacklevel=3)
            A = A / norms[:, None].astype(np.float32)
    return A


class Codec:
    """Reducer ∘ quantizer with exact byte accounting and a one-file save format.

    Parameters
    ----------
    quantizer : Quantizer
        From :mod:`lowdim.compress.quantizers` or :mod:`lowdim.compress.faiss_codecs`.
    reducer : Reducer, optional
        From :mod:`lowdim.compress.reducers` (default: none).
    metric : {"ip", "cosine"}, default="ip"
        Inner product, or cosine (vectors normalised to unit length first).
    max_fit_samples : int, default=20000
        Rows sampled from the corpus to fit the reducer and calibrate the quantizer.

    Attributes
    ----------
    code_bytes : int
        Exact bytes of one encoded vector (also ``bytes_per_vector``).
    fixed_bytes : int
        Bytes stored once, in the dtype actually stored: PCA axes, scales, codebooks and the JSON
        spec (also ``overhead_bytes``). ``save`` writes these plus the ``.npz`` container's headers.

    Notes
    -----
    Memory for ``n`` vectors is ``memory_bytes(n) = n·code_bytes + fixed_bytes``; the compression
    ratio at ``n`` is ``n·4·D / memory_bytes(n)`` (:meth:`compression_ratio`), which approaches
    the per-vector asymptote ``4·D / code_bytes`` only when ``n·code_bytes ≫ fixed_bytes``. A PCA
    reducer followed by bit allocation stores only the axes that receive bits, in float16.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.compress import Codec
    >>> X = np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)
    >>> c = Codec.from_name("pca+alloc16").fit(X)
    >>> codes = c.encode(X)
    >>> codes.shape, c.code_bytes
    ((2000, 16), 16)
    >>> c.memory_bytes(2000) == 2000 * 16 + c.fixed_bytes
    True
    >>> scores, ids = c.search(X[:3], codes, k=5)
    >>> ids.shape
    (3, 5)
    """

    def __init__(self, quantizer: Quantizer, reducer: Reducer | None = None, *, metric: str = "ip",
                 max_fit_samples: int = 20000) -> None:
        self.quantizer = quantizer
        self.reducer = reducer if reducer is not None else Identity()
        self.metric = check_choice("metric", metric, ("ip", "cosine"))
        self.max_fit_samples = int(max_fit_samples)

    # -- construction from a short name -----------------------------------------------------
    @classmethod
    def from_name(cls, name: str, *, metric: str = "ip") -> Codec:
        """Build an unfitted codec from ``"[reducer+]quantizer"``.

        Reducers: ``pca`` (all axes), ``pca192``, ``pca192-rot``, ``pca192-bal24`` (PQ groups), ``rot``, ``rp192``, ``trunc192``.
        Quantizers: ``fp32 fp16 bf16 fp8-e4m3 fp8-e5m2 int8 int4 int2 int1 binary binary-hamming
        alloc96`` (bytes of code), ``alloc24@5000`` (24 bytes per vector of real memory for
        5,000 vectors: codes plus fixed state) and ``faiss:<factory>`` (e.g. ``faiss:PQ48x8np``).
        PCA axes are stored in float16; ``pca-f32``/``pca192-f32`` store float32.
        """
        parts = name.split("+")
        if len(parts) > 2 or not parts[-1]:
            raise LowdimError(f"codec name {name!r} is not of the form [reducer+]quantizer, e.g. 'pca192+int8'")
        red = _reducer_from_name(parts[0]) if len(parts) == 2 else Identity()
        return cls(_quantizer_from_name(parts[-1]), red, metric=metric)

    @property
    def name(self) -> str:
        r = self.reducer.label()
        return f"{r}+{self.quantizer.label()}" if r else self.quantizer.label()

    # -- fit / encode / decode ---------------------------------------------------------------
    def fit(self, X: Any, *, random_state: int | None = 0) -> Codec:
        """Fit the reducer and calibrate the quantizer on (a sample of) the corpus."""
        X = check_vectors(X, name="corpus", metric=self.metric, min_samples=2)
        rng = np.random.default_rng(random_state)
        S = X if len(X) <= self.max_fit_samples else X[np.sort(rng.choice(len(X), self.max_fit_samples, replace=False))]
        self.reducer.fit(S, random_state=random_state)
        Y = self.reducer.transform(S)
        # E[q_j²] per reduced dimension, with the (uncentred) corpus standing in for the queries
        weights = (self.reducer.transform_queries(S).astype(np.float64) ** 2).mean(axis=0)
        prunable = isinstance(self.quantizer, BitAllocation) and _prunable(self.reducer)
        if isinstance(self.quantizer, BitAllocation):
            const, per_axis = self.reducer.fixed_bytes_model()
            per_dim = BitAllocation.STATE_PER_DIM
            if prunable:  # a 0-bit axis is dropped with its quantizer state
                self.quantizer.fixed_cost = (const + SPEC_ALLOWANCE, per_axis + per_dim)
            else:
                self.quantizer.fixed_cost = (const + SPEC_ALLOWANCE + per_dim * Y.shape[1], 0)
        self.quantizer.fit(Y, weights=weights, random_state=random_state)
        if prunable:
            keep = self.quantizer.bits_ > 0
            if not keep.all():  # 0-bit axes score the centred mean, 0: drop them
                self.reducer.select(keep)
                self.quantizer.select(keep)
        self.dim_ = X.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "dim_"):
            raise LowdimError(f"codec {self.name!r} is not fitted; call fit(corpus) or Codec.load(path) first")

    def encode(self, X: Any, *, block_size: int = 65536) -> np.ndarray:
        """Encode vectors to uint8 codes of shape ``(n, bytes_per_vector)``."""
        self._check_fitted()
        X = check_vectors(X, name="vectors", metric=self.metric, dim=self.dim_)
        if isinstance(self.reducer, Identity):
            return self.quantizer.encode(X)
        out = np.empty((len(X), self.bytes_per_vector), np.uint8)
        for s in range(0, len(X), block_size):
            out[s:s + block_size] = self.quantizer.encode(self.reducer.transform(X[s:s + block_size]))
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate vectors (float32, input space) from codes."""
        self._check_fitted()
        return self.reducer.inverse_transform(self.quantizer.decode(self._check_codes(codes)))

    def _check_codes(self, codes: Any) -> np.ndarray:
        c = np.asarray(codes)
        if c.dtype != np.uint8 or c.ndim != 2 or c.shape[1] != self.bytes_per_vector:
            raise LowdimError(f"codes have shape {c.shape} and dtype {c.dtype}; codec {self.name!r} expects "
                              f"uint8 codes of shape (n, {self.bytes_per_vector}) from its encode()")
        return c

    # -- search ------------------------------------------------------------------------------
    def search(self, queries: Any, codes: np.ndarray, k: int = 10, *, block_size: int = 16384,
               rescore: Any = None, rescore_factor: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products of ``queries`` against encoded vectors.

        The corpus is scored block by block (``block_size`` codes at a time): never decoded to
        float32 as a whole. Scores are approximate inner products (exact ones with ``rescore``).

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
        codes : uint8 array of shape (n, bytes_per_vector)
        k : int
        rescore : array-like of shape (n, n_features), optional
            The original float32 vectors, typically ``np.load(path, mmap_mode="r")``: the best
            ``k * rescore_factor`` candidates are re-ranked with exact inner products read from
            it. **This keeps float32 vectors on disk** (only the candidate rows are read), so
            memory is the codes but storage is not reduced.
        rescore_factor : int, default=10

        Returns
        -------
        scores : float32 array (n_queries, k), descending
        indices : int64 array (n_queries, k)
        """
        self._check_fitted()
        codes = self._check_codes(codes)
        Q = check_vectors(queries, name="queries", metric=self.metric, dim=self.dim_)
        n = len(codes)
        if not 1 <= k <= n:
            raise LowdimError(f"k={k} must be between 1 and the number of encoded vectors ({n})")
        kk = min(n, k * rescore_factor) if rescore is not None else k
        Qt = self.reducer.transform_queries(Q)
        offset = self.reducer.query_offset(Q)
        vals = np.empty((len(Q), kk), np.float32)
        idx = np.empty((len(Q), kk), np.int64)
        for qs in range(0, len(Q), 2048):
            prep = self.quantizer.prepare_queries(Qt[qs:qs + 2048])
            v, i = _blocked_topk(self.quantizer, prep, codes, kk, block_size)
            vals[qs:qs + 2048], idx[qs:qs + 2048] = v, i
        vals += offset[:, None]
        if rescore is not None:
            return _rescore(Q, rescore, idx, k, self.dim_, n)
        return vals, idx

    # -- accounting --------------------------------------------------------------------------
    @property
    def bytes_per_vector(self) -> int:
        return int(self.quantizer.code_size)

    @property
    def code_bytes(self) -> int:
        """Bytes of one encoded vector."""
        return self.bytes_per_vector

    @property
    def fixed_bytes(self) -> int:
        """Bytes stored once: every array in its stored dtype plus the JSON spec (4 bytes a character)."""
        self._check_fitted()
        spec = np.array(json.dumps(self.spec()))
        return int(sum(a.nbytes for a in self._arrays().values()) + spec.nbytes)

    @property
    def overhead_bytes(self) -> int:
        return self.fixed_bytes

    def memory_bytes(self, n: int) -> int:
        """Bytes to hold ``n`` encoded vectors plus the codec's fixed state."""
        return int(n) * self.bytes_per_vector + self.fixed_bytes

    def compression_ratio(self, n: int | None = None) -> float:
        """``n·4·D / memory_bytes(n)``; without ``n`` the per-vector asymptote ``4·D / code_bytes``."""
        self._check_fitted()
        if n is None:
            return 4 * self.dim_ / self.bytes_per_vector
        return 4 * self.dim_ * int(n) / self.memory_bytes(n)

    def spec(self) -> dict[str, Any]:
        self._check_fitted()
        return {"format": FORMAT, "version": VERSION, "name": self.name, "metric": self.metric,
                "dim": self.dim_, "bytes_per_vector": self.bytes_per_vector,
                "compression_ratio": 4 * self.dim_ / self.bytes_per_vector,
                "reducer": self.reducer.spec(), "quantizer": self.quantizer.spec()}

    def _arrays(self) -> dict[str, np.ndarray]:
        a = {f"reducer__{k}": v for k, v in self.reducer.arrays().items()}
        a.update({f"quantizer__{k}": v for k, v in self.quantizer.arrays().items()})
        return a

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the codec to one ``.npz`` file (arrays + JSON spec), atomically."""
        from lowdim.io import atomic_path

        spec = self.spec()
        p = Path(path)
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, spec=np.array(json.dumps(spec)), **self._arrays())
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> Codec:
        """Read a codec file; everything is validated before a codec is returned.

        Raises
        ------
        LowdimError
            For a missing, truncated, corrupted or foreign file, or inconsistent contents.
        """
        p = Path(path)
        if not p.is_file():
            raise LowdimError(f"codec file {str(p)!r} not found; create one with Codec.save or `lowdim compress --out`")
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}  # reads every member: CRC errors surface here
        except Exception as exc:
            raise LowdimError(f"{str(p)!r} is not a readable lowdim codec file ({type(exc).__name__}: {exc}); "
                              "it may be truncated or corrupted: re-create it") from None
        spec_arr = data.pop("spec", None)
        if spec_arr is None or spec_arr.ndim != 0 or spec_arr.dtype.kind != "U":
            raise LowdimError(f"{str(p)!r} has no codec spec: it is not a {FORMAT} file (arrays: {', '.join(data) or 'none'})")
        try:
            spec = json.loads(str(spec_arr))
        except json.JSONDecodeError as exc:
            raise LowdimError(f"{str(p)!r}: the codec spec is not valid JSON ({exc})") from None
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise LowdimError(f"{str(p)!r} is not a {FORMAT} file (format={spec.get('format') if isinstance(spec, dict) else None!r})")
        if spec.get("version") != VERSION:
            raise LowdimError(f"{str(p)!r} has codec format version {spec.get('version')!r}; this lowdim reads version {VERSION}")
        try:
            return cls._from_state(spec, data)
        except LowdimError as exc:
            raise LowdimError(f"{str(p)!r}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise LowdimError(f"{str(p)!r}: malformed codec spec ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_state(cls, spec: dict[str, Any], data: dict[str, np.ndarray]) -> Codec:
        rs, qs = spec["reducer"], spec["quantizer"]
        rcls = REDUCERS.get(rs.get("kind"))
        if rcls is None:
            raise LowdimError(f"unknown reducer kind {rs.get('kind')!r}")
        kinds = dict(QUANTIZERS)
        if qs.get("kind") == "faiss":
            from lowdim.compress.faiss_codecs import FaissQuantizer

            kinds["faiss"] = FaissQuantizer
        qcls = kinds.get(qs.get("kind"))
        if qcls is None:
            raise LowdimError(f"unknown quantizer kind {qs.get('kind')!r}")
        sub = {"reducer": {}, "quantizer": {}}
        for k, v in data.items():
            head, _, tail = k.partition("__")
            if head not in sub or not tail:
                raise LowdimError(f"unexpected array {k!r}")
            sub[head][tail] = v
        red = rcls.from_state(rs, sub["reducer"])
        qua = qcls.from_state(qs, sub["quantizer"])
        dim = int(spec["dim"])
        if red.in_dim_ != dim or red.out_dim_ != qua.dim_:
            raise LowdimError(f"inconsistent dimensions: input {dim}, reducer {red.in_dim_}→{red.out_dim_}, "
                              f"quantizer {qua.dim_}")
        if qua.code_size != int(spec["bytes_per_vector"]):
            raise LowdimError(f"the quantizer gives {qua.code_size} bytes per vector, the spec says "
                              f"{spec['bytes_per_vector']}")
        codec = cls(qua, red, metric=spec["metric"])
        codec.dim_ = dim
        return codec

    def __repr__(self) -> str:
        fitted = f", {self.bytes_per_vector} B/vector" if hasattr(self, "dim_") else ", unfitted"
        return f"Codec({self.name!r}, metric={self.metric!r}{fitted})"


def _blocked_topk(quantizer: Quantizer, prep: Any, codes: np.ndarray, k: int,
                  block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Running top-k over blocks of codes; returns values sorted descending and row indices."""
    best_v = best_i = None
    for s in range(0, len(codes), block_size):
        v, i = quantizer.topk(prep, codes[s:s + block_size], k)
        i = i.astype(np.int64) + s
        if best_v is None:
            best_v, best_i = v.astype(np.float32), i
            continue
        cv, ci = np.concatenate([best_v, v], 1), np.concatenate([best_i, i], 1)
        kk = min(k, cv.shape[1])
        sel = np.argpartition(-cv, kk - 1, axis=1)[:, :kk]
        best_v, best_i = np.take_along_axis(cv, sel, 1), np.take_along_axis(ci, sel, 1)
    order = np.argsort(-best_v, axis=1, kind="stable")
    return np.take_along_axis(best_v, order, 1), np.take_along_axis(best_i, order, 1)


def _rescore(Q: np.ndarray, store: Any, cand: np.ndarray, k: int, dim: int,
             n: int) -> tuple[np.ndarray, np.ndarray]:
    if getattr(store, "shape", None) is None or store.shape != (n, dim):
        raise LowdimError(f"rescore vectors have shape {getattr(store, 'shape', None)}; expected ({n}, {dim}), "
                          "the float32 vectors the codes were made from, in the same order")
    out_v = np.empty((len(Q), k), np.float32)
    out_i = np.empty((len(Q), k), np.int64)
    for r in range(len(Q)):
        rows = np.sort(cand[r])
        s = np.asarray(store[rows], dtype=np.float32) @ Q[r]
        top = np.argsort(-s, kind="stable")[:k]
        out_v[r], out_i[r] = s[top], rows[top]
    return out_v, out_i


# -- names --------------------------------------------------------------------------------------
def _prunable(r: Reducer) -> bool:
    return isinstance(r, PCA) and not r.rotate and not r.balance


def _reducer_from_name(s: str) -> Reducer:
    f32 = s.endswith("-f32")
    if f32:
        s = s[:-4]
        if not s.startswith("pca"):
            raise LowdimError(f"reducer {s + '-f32'!r}: '-f32' (float32 axes) only follows pca")
    m = re.fullmatch(r"(pca|rp|trunc|rot)(\d*)(-rot|-bal(\d+))?", s)
    if not m or (m.group(1) in ("rp", "trunc") and not m.group(2)) or (m.group(1) == "rot" and m.group(2)):
        raise LowdimError(f"unknown reducer {s!r}; use pca, pca<d>, pca<d>-rot, pca<d>-bal<m>, rot, rp<d> or trunc<d>")
    kind, d = m.group(1), (int(m.group(2)) if m.group(2) else None)
    rot, bal = m.group(3) == "-rot", (int(m.group(4)) if m.group(4) else None)
    if m.group(3) and kind != "pca":
        raise LowdimError(f"reducer {s!r}: '-rot' and '-bal<m>' only follow pca")
    if kind == "pca":
        return PCA(d, rotate=rot, balance=bal, dtype="float32" if f32 else "float16")
    if kind == "rot":
        return RandomRotation()
    return RandomProjection(d) if kind == "rp" else Truncate(d)


def _quantizer_from_name(s: str) -> Quantizer:
    floats = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8-e4m3": "e4m3", "fp8-e5m2": "e5m2"}
    if s in floats:
        return Float(floats[s])
    if m := re.fullmatch(r"int([1248])", s):
        return Uniform(int(m.group(1)))
    if s in ("binary", "binary-hamming"):
        return Binary(symmetric=s.endswith("hamming"))
    if m := re.fullmatch(r"alloc(\d+)(?:@(\d+))?", s):
        return BitAllocation(int(m.group(1)), n_vectors=None if m.group(2) is None else int(m.group(2)))
    if s.startswith("faiss:"):
        from lowdim.compress.faiss_codecs import FaissQuantizer

        return FaissQuantizer(s[len("faiss:"):])
    raise LowdimError(f"unknown quantizer {s!r}; use fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, int8, int4, int2, "
                      "int1, binary, binary-hamming, alloc<bytes>[@<n>] or faiss:<factory>")
