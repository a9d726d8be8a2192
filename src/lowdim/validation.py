"""Turn user input into a clean 2-D float array, or raise a :class:`LowdimError` that says why."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lowdim.errors import LowdimError

__all__ = ["as_points", "check_choice", "check_fraction", "check_int", "to_numpy"]


def to_numpy(X: Any) -> np.ndarray:
    """Return a numpy view of arrays, torch tensors, dask-free array-likes and pandas frames."""
    if isinstance(X, np.ndarray):
        return X
    mod = type(X).__module__
    if mod.startswith("torch"):
        return X.detach().to("cpu").numpy()
    if hasattr(X, "to_numpy"):  # pandas / polars
        return X.to_numpy()
    try:
        return np.asarray(X)
    except Exception as exc:  # ragged lists and other junk
        raise LowdimError(
            f"X could not be read as an array ({type(X).__name__}: {exc}); "
            "pass a 2-D numpy array or torch tensor of shape (n_samples, n_features)"
        ) from None


def as_points(
    X: Any,
    *,
    name: str = "X",
    min_samples: int = 2,
    dtype: Any = None,
    allow_constant: bool = False,
    why: str = "",
) -> np.ndarray:
    """Validate a point cloud and return it as a C-contiguous float array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Points, one per row. numpy arrays, torch tensors and pandas frames are accepted.
    name : str
        How the input is called in error messages.
    min_samples : int
        Fewest rows the caller needs.
    dtype : numpy dtype, optional
        Output dtype. Default keeps float32/float64 and converts everything else to float64.
    allow_constant : bool
        Accept data in which every row is the same.
    why : str
        Why ``min_samples`` rows are needed (appended to the error), e.g. ``"n_neighbors=10"``.

    Returns
    -------
    numpy.ndarray
        Finite float array of shape (n_samples, n_features).

    Raises
    ------
    LowdimError
        For non-numeric, 1-D, empty, non-finite or constant input, or too few rows.
    """
    A = to_numpy(X)
    if A.dtype == object or A.dtype.kind in "USVMm":
        raise LowdimError(
            f"{name} has dtype {A.dtype} (shape {A.shape}); intrinsic dimension needs numbers: "
            "convert text or objects to a numeric array first (e.g. embed texts with `lowdim embed`)"
        )
    if A.ndim == 1:
        raise LowdimError(
            f"{name} is 1-D with shape {A.shape}; pass a 2-D array of shape (n_samples, n_features): "
            f"use {name}.reshape(-1, 1) for {A.shape[0]} samples of one feature, "
            f"or {name}.reshape(1, -1) for one sample"
        )
    if A.ndim != 2:
        raise LowdimError(
            f"{name} has {A.ndim} dimensions (shape {A.shape}); pass a 2-D array of shape "
            f"(n_samples, n_features), e.g. {name}.reshape(len({name}), -1)"
        )
    n, D = A.shape
    if n == 0 or D == 0:
        raise LowdimError(f"{name} is empty (shape {A.shape}); pass at least {min_samples} rows and 1 column")
    if A.dtype.kind in "biu":
        warnings.warn(
            f"{name} has integer/boolean dtype {A.dtype}; converted to float64. Lattice data has many "
            "tied distances, which bias nearest-neighbour ID estimators; duplicates are handled, ties are not",
            UserWarning,
            stacklevel=3,
        )
        A = A.astype(np.float64)
    elif A.dtype.kind == "c":
        raise LowdimError(f"{name} is complex ({A.dtype}); stack real and imaginary parts: np.hstack([X.real, X.imag])")
    elif A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)  # float16, bfloat16, fp8 …
    if dtype is not None:
        A = A.astype(dtype, copy=False)
    A = np.ascontiguousarray(A)
    finite = np.isfinite(A)
    if not finite.all():
        bad = np.argwhere(~finite)
        r, c = bad[0]
        raise LowdimError(
            f"{name} (shape {A.shape}) has {len(bad)} non-finite values (NaN or inf), first at row {r}, "
            f"column {c} ({A[r, c]}); drop those rows (X[np.isfinite(X).all(axis=1)]) or impute them"
        )
    if n < min_samples:
        raise LowdimError(
            f"{name} has {n} samples (shape {A.shape}); at least {min_samples} are needed"
            + (f" ({why})" if why else "") + "; pass more data or lower the parameter"
        )
    if not allow_constant and n > 1 and np.ptp(A, axis=0).max() == 0:
        raise LowdimError(
            f"{name} (shape {A.shape}) is constant: every row is the same point, so it has no "
            "intrinsic dimension to measure; check the data source"
        )
    return A


def check_choice(name: str, value: str, choices: Any) -> str:
    """Raise unless ``value`` is one of ``choices``; the message lists them."""
    if value not in choices:
        raise LowdimError(f"unknown {name} {value!r}; choose one of: {', '.join(sorted(map(str, choices)))}")
    return value


def check_int(name: str, value: Any, *, low: int, high: int | None = None, fix: str = "") -> int:
    """Raise unless ``value`` is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise LowdimError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise LowdimError(f"{name}={value} is out of range; allowed: {rng}{'; ' + fix if fix else ''}")
    return int(value)


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0,
                   low_open: bool = True, high_open: bool = False) -> float:
    """Raise unless ``value`` is a real number in the interval given."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LowdimError(f"{name} must be a number, got {value!r}") from None
    ok = np.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lb, rb = ("(" if low_open else "["), (")" if high_open else "]")
        raise LowdimError(f"{name}={value!r} is out of range; allowed: {lb}{low}, {high}{rb}")
    return v
