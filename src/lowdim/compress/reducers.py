"""Reducers: linear maps applied before quantization (PCA, rotation, random projection, prefix).

A reducer maps corpus vectors with :meth:`Reducer.transform` and queries with
:meth:`Reducer.transform_queries`; the codec adds :meth:`Reducer.query_offset` to every score.
For every reducer here ``transform_queries(q) · transform(x) + query_offset(q)`` approximates
``q · x``, so inner-product rankings are preserved up to the discarded energy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from lowdim.errors import LowdimError

__all__ = ["PCA", "REDUCERS", "Identity", "RandomProjection", "RandomRotation", "Reducer", "Truncate",
           "random_orthogonal"]


def random_orthogonal(n: int, random_state: int | None = 0) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian with the sign fix of Mezzadri 2007)."""
    rng = np.random.default_rng(random_state)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


class Reducer(ABC):
    """Base class: ``fit(X)`` then ``transform`` / ``transform_queries`` / ``inverse_transform``."""

    kind: ClassVar[str] = ""
    in_dim_: int
    out_dim_: int

    @abstractmethod
    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> Reducer:
        """Learn the map from (a sample of) the corpus."""

    @abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Corpus vectors to reduced float32 vectors."""

    def transform_queries(self, Q: np.ndarray) -> np.ndarray:
        """Queries to the reduced space (same as :meth:`transform` unless the reducer centres)."""
        return self.transform(Q)

    def query_offset(self, Q: np.ndarray) -> np.ndarray:
        """Per-query constant added to every score (zero unless the corpus was centred)."""
        return np.zeros(len(Q), np.float32)

    @abstractmethod
    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """Reduced vectors back to the input space (least-squares where not invertible)."""

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "in_dim": self.in_dim_, "out_dim": self.out_dim_}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def fixed_bytes_model(self) -> tuple[int, int]:
        """``(bytes independent of the output width, bytes per output axis)`` of the stored state."""
        return int(sum(a.nbytes for a in self.arrays().values())), 0

    @classmethod
    @abstractmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Reducer:
        """Rebuild from :meth:`spec` and :meth:`arrays` (validated; raises LowdimError)."""

    def label(self) -> str:
        return self.kind


class Identity(Reducer):
    """No reduction."""

    kind = "none"

    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> Identity:
        self.in_dim_ = self.out_dim_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y, dtype=np.float32)

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Identity:
        r = cls()
        r.in_dim_ = r.out_dim_ = int(spec["in_dim"])
        return r

    def label(self) -> str:
        return ""


class _Linear(Reducer):
    """``y = (x − mean) @ matrix``; queries ``q @ matrix`` plus the offset ``q · mean``.

    The matrix is stored in ``dtype`` (float32 or float16) and computed with in float32; a
    float16 matrix is rounded once at fit time, so codes and scores are the same before and
    after a save/load round trip.
    """

    matrix_: np.ndarray  # (in_dim, out_dim), float32 values of the stored matrix
    mean_: np.ndarray | None = None
    dtype: str = "float32"

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        Y = X @ self.matrix_
        if self.mean_ is not None:
            Y -= self.mean_ @ self.matrix_
        return Y

    def transform_queries(self, Q: np.ndarray) -> np.ndarray:
        return np.asarray(Q, dtype=np.float32) @ self.matrix_

    def query_offset(self, Q: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            return np.zeros(len(Q), np.float32)
        return np.asarray(Q, dtype=np.float32) @ self.mean_

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        M = self.matrix_
        # orthonormal columns: the transpose is the pseudo-inverse; otherwise least squares
        back = M.T if self._orthonormal() else np.linalg.pinv(M).astype(np.float32)
        X = np.asarray(Y, dtype=np.float32) @ back
        return X + self.mean_ if self.mean_ is not None else X

    def _orthonormal(self) -> bool:
        return self.kind in ("pca", "rotation")

    def arrays(self) -> dict[str, np.ndarray]:
        a = {"matrix": self.matrix_.astype(self.dtype)}
        if self.mean_ is not None:
            a["mean"] = self.mean_
        return a

    def _set_matrix(self, M: np.ndarray) -> None:
        """Store ``M`` rounded to ``dtype`` (and keep its float32 values for computing)."""
        self.matrix_ = np.ascontiguousarray(np.asarray(M, dtype=self.dtype), dtype=np.float32)

    @classmethod
    def _load_matrix(cls, r: _Linear, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        r.in_dim_, r.out_dim_ = int(spec["in_dim"]), int(spec["out_dim"])
        M = arrays.get("matrix")
        r.dtype = str(spec.get("dtype", "float32"))
        if r.dtype not in ("float32", "float16"):
            raise LowdimError(f"codec file: reducer dtype {r.dtype!r} is not float32 or float16")
        if M is None or M.shape != (r.in_dim_, r.out_dim_) or M.dtype != np.dtype(r.dtype) or not np.isfinite(M).all():
            raise LowdimError(f"codec file: reducer matrix is missing or not a finite {r.dtype} array of shape "
                              f"({r.in_dim_}, {r.out_dim_}) (found {None if M is None else (M.shape, str(M.dtype))})")
        r.matrix_ = np.ascontiguousarray(M, dtype=np.float32)
        if spec.get("centred"):
            mu = arrays.get("mean")
            if mu is None or mu.shape != (r.in_dim_,) or mu.dtype != np.float32 or not np.isfinite(mu).all():
                raise LowdimError(f"codec file: reducer mean is missing or not a finite float32 vector of length {r.in_dim_}")
            r.mean_ = mu

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "centred": self.mean_ is not None, "dtype": self.dtype}

    def fixed_bytes_model(self) -> tuple[int, int]:
        """``(bytes independent of the output width, bytes per output axis)`` as stored."""
        return (0 if self.mean_ is None else 4 * self.in_dim_), self.in_dim_ * np.dtype(self.dtype).itemsize


class PCA(_Linear):
    """Principal axes fitted on a sample, correct for inner-product search.

    Parameters
    ----------
    n_components : int, optional
        Dimensions kept (default: all, i.e. a rotation to the principal axes, which lets a
        bit-allocating quantizer spend bits by variance).
    rotate : bool, default=False
        Follow the projection with a random orthogonal rotation of the kept dimensions, which
        evens out their variances so a uniform-width quantizer wastes fewer bits (the
        ITQ/RaBitQ observation; Gong & Lazebnik 2011; Gao & Long 2024).
    balance : int, optional
        Order the kept axes into ``balance`` equal groups with balanced variance, the
        eigenvalue allocation of parametric OPQ (Ge, He, Ke & Sun 2013, "Optimized Product
        Quantization", §4.2): axes in decreasing variance go to the non-full group whose product
        of variances is smallest. A product quantizer with ``balance`` sub-quantizers then gets
        one group each — OPQ's rotation at the cost of one PCA instead of alternating k-means.
    max_samples : int, default=20000
        Rows sampled to fit the axes.
    dtype : {"float16", "float32"}, default="float16"
        Storage of the axes. float16 halves the codec's fixed memory; its rounding (relative
        ``2⁻¹¹``) is far below the error of any code of ≤ 8 bits per dimension, and the frontier
        benchmark measures the recall of both (``benchmarks/compress_frontier.py --pca-dtype``).

    Notes
    -----
    The corpus is centred, the queries are not. With ``μ`` the corpus mean and ``P`` the kept axes,
    ``q · x = q · μ + q · (x − μ) ≈ q · μ + (Pᵀq) · (Pᵀ(x − μ))``. The first term is the same for
    every document of a query, so it cannot change the ranking (the codec adds it back so scores
    remain inner products), and ``x − μ`` is what the principal axes describe. Centring the query
    as well — what ``faiss.PCAMatrix`` in an index factory does (FAISS issue #2636) — computes
    ``(q − μ) · (x − μ) = q · x − μ · x − q · μ + ‖μ‖²``, whose ``−μ · x`` term differs from
    document to document and re-orders the results.

    Reference: Jolliffe, *Principal Component Analysis*, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 20)) + 5.0   # offset, rank 3
    >>> p = PCA(3).fit(X)
    >>> q = rng.normal(size=(4, 20))
    >>> approx = p.transform_queries(q) @ p.transform(X).T + p.query_offset(q)[:, None]
    >>> bool(np.allclose(approx, q @ X.T, rtol=1e-3, atol=1e-2))
    True
    """

    kind = "pca"

    def __init__(self, n_components: int | None = None, *, rotate: bool = False,
                 balance: int | None = None, max_samples: int = 20000, dtype: str = "float16") -> None:
        if dtype not in ("float16", "float32"):
            raise LowdimError(f"PCA dtype={dtype!r} must be 'float16' or 'float32'")
        self.dtype = dtype
        self.n_components = n_components
        self.rotate = bool(rotate)
        self.balance = None if balance is None else int(balance)
        if self.rotate and self.balance:
            raise LowdimError("PCA: choose rotate=True or balance=m, not both")
        self.max_samples = int(max_samples)

    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> PCA:
        n, D = X.shape
        d = D if self.n_components is None else int(self.n_components)
        if not 1 <= d <= D:
            raise LowdimError(f"PCA n_components={self.n_components} is out of range for {D}-dimensional "
                              f"vectors; choose 1..{D}")
        rng = np.random.default_rng(random_state)
        S = X if n <= self.max_samples else X[rng.choice(n, self.max_samples, replace=False)]
        S = np.asarray(S, dtype=np.float64)
        self.mean_ = S.mean(axis=0).astype(np.float32)
        from threadpoolctl import threadpool_limits

        # one BLAS thread: a 384×384 eigh takes 0.08 s single-threaded but seconds with
        # contended OpenBLAS threads on a busy machine (measured on 2 shared cores)
        with threadpool_limits(limits=1, user_api="blas"):
            C = np.cov(S - self.mean_, rowvar=False).reshape(D, D)
            evals, evecs = np.linalg.eigh(C)
        order = np.argsort(evals)[::-1]
        self.explained_variance_ = np.clip(evals[order], 0, None)
        P = evecs[:, order[:d]]
        if self.rotate:
            P = P @ random_orthogonal(d, random_state)
        if self.balance:
            P = P[:, _balanced_order(self.explained_variance_[:d], self.balance)]
        self._set_matrix(P)
        self.in_dim_, self.out_dim_ = D, d
        return self

    def select(self, keep: np.ndarray) -> PCA:
        """Keep only the output axes where ``keep`` is true (those that receive bits)."""
        keep = np.asarray(keep, bool)
        self.matrix_ = np.ascontiguousarray(self.matrix_[:, keep])
        self.out_dim_ = int(keep.sum())
        return self

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "rotate": self.rotate, "balance": self.balance}

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> PCA:
        r = cls(int(spec["out_dim"]), rotate=bool(spec.get("rotate", False)), balance=spec.get("balance"))
        cls._load_matrix(r, spec, arrays)  # sets the stored dtype
        return r

    def label(self) -> str:
        tail = "-rot" if self.rotate else (f"-bal{self.balance}" if self.balance else "")
        return f"pca{self.out_dim_}{tail}" + ("-f32" if self.dtype == "float32" else "")


def _balanced_order(variances: np.ndarray, m: int) -> np.ndarray:
    """Column order putting axes into ``m`` contiguous groups of equal size and balanced log-variance."""
    d = len(variances)
    if d % m:
        raise LowdimError(f"PCA balance={m} must divide the number of kept dimensions ({d})")
    size = d // m
    logv = np.log(np.maximum(variances, 1e-30))
    load = np.zeros(m)
    groups: list[list[int]] = [[] for _ in range(m)]
    for j in np.argsort(-variances, kind="stable"):
        open_ = [g for g in range(m) if len(groups[g]) < size]
        g = min(open_, key=lambda g: load[g])
        groups[g].append(int(j))
        load[g] += logv[j]
    return np.array([j for g in groups for j in g])


class RandomRotation(_Linear):
    """A Haar-random orthogonal rotation of all dimensions (spreads variance evenly)."""

    kind = "rotation"

    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> RandomRotation:
        D = X.shape[1]
        self.in_dim_ = self.out_dim_ = D
        self._set_matrix(random_orthogonal(D, random_state))
        return self

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> RandomRotation:
        r = cls()
        cls._load_matrix(r, spec, arrays)
        return r

    def label(self) -> str:
        return "rot"


class RandomProjection(_Linear):
    """Gaussian random projection to ``n_components`` dimensions (Johnson & Lindenstrauss 1984).

    Scaled by ``1/sqrt(n_components)`` so inner products are preserved in expectation.
    """

    kind = "random_projection"

    def __init__(self, n_components: int) -> None:
        self.n_components = int(n_components)

    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> RandomProjection:
        D = X.shape[1]
        if not 1 <= self.n_components <= D:
            raise LowdimError(f"random projection n_components={self.n_components} must be in 1..{D}")
        rng = np.random.default_rng(random_state)
        self.in_dim_, self.out_dim_ = D, self.n_components
        self._set_matrix(rng.standard_normal((D, self.n_components)) / np.sqrt(self.n_components))
        return self

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> RandomProjection:
        r = cls(int(spec["out_dim"]))
        cls._load_matrix(r, spec, arrays)
        return r

    def label(self) -> str:
        return f"rp{self.out_dim_}"


class Truncate(Reducer):
    """Keep the first ``n_components`` coordinates (for Matryoshka-trained models; Kusupati et al. 2022).

    On models not trained for it (all-MiniLM-L6-v2), PCA keeps far more of the ranking: compare
    both on the frontier before choosing.
    """

    kind = "truncate"

    def __init__(self, n_components: int) -> None:
        self.n_components = int(n_components)

    def fit(self, X: np.ndarray, *, random_state: int | None = 0) -> Truncate:
        D = X.shape[1]
        if not 1 <= self.n_components <= D:
            raise LowdimError(f"truncation n_components={self.n_components} must be in 1..{D}")
        self.in_dim_, self.out_dim_ = D, self.n_components
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(X, dtype=np.float32)[:, :self.out_dim_])

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        out = np.zeros((len(Y), self.in_dim_), np.float32)
        out[:, :self.out_dim_] = Y
        return out

    @classmethod
    def from_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Truncate:
        r = cls(int(spec["out_dim"]))
        r.in_dim_, r.out_dim_ = int(spec["in_dim"]), int(spec["out_dim"])
        return r

    def label(self) -> str:
        return f"trunc{self.out_dim_}"


REDUCERS: dict[str, type[Reducer]] = {c.kind: c for c in (Identity, PCA, RandomRotation, RandomProjection, Truncate)}
