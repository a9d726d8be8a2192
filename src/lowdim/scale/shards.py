"""Sharded point sets: a dask array, a zarr array, or a folder of ``.npy`` shards.

Every source becomes a :class:`Sharded`: a list of row shards, each read on a worker by a small
picklable *loader* (``np.load`` of one file, one row range of a zarr array, one block of a
persisted dask array), so a worker holds one shard at a time, never the whole set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["Sharded", "is_distributed_input", "load_shard", "open_sharded"]

#: Rows per shard when an in-memory array is split for the cluster.
DEFAULT_SHARD_ROWS = 100_000


@dataclass(frozen=True)
class Sharded:
    """A point set split into row shards.

    Attributes
    ----------
    loaders : tuple
        One ``(function, *args)`` per shard; ``load_shard(loader, dtype)`` returns its rows.
    names : tuple of str
        How each shard is called in messages (file name, or row range).
    rows : ndarray of int
        Rows per shard.
    n_features : int
    dtype : numpy dtype
        float32 when every shard is float32, else float64 (as :func:`lowdim.validation.as_points`).
    source : str
        Where the points came from.
    array : array or None
        The caller's own array (numpy or dask) when there is one: :meth:`points` returns it
        rather than a graph of loaders.
    """

    loaders: tuple
    names: tuple
    rows: np.ndarray
    n_features: int
    dtype: np.dtype
    source: str
    array: Any = None

    @property
    def offsets(self) -> np.ndarray:
        """First global row of every shard (and the total at the end)."""
        return np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)

    @property
    def n_points(self) -> int:
        return int(self.rows.sum())

    @property
    def n_shards(self) -> int:
        return len(self.loaders)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_points, self.n_features)

    def points(self) -> Any:
        """All points, lazily: the caller's array, or a dask array reading one shard per chunk."""
        if self.array is not None:
            return self.array
        da = require("dask.array", "dask")
        from dask import delayed

        blocks = [da.from_delayed(delayed(load_shard)(ld, self.dtype), shape=(int(r), self.n_features),
                                  dtype=self.dtype) for ld, r in zip(self.loaders, self.rows)]
        return da.concatenate(blocks, axis=0)


def is_distributed_input(X: Any) -> bool:
    """True for a dask array, a zarr array, a ``.zarr`` path or a folder (of ``.npy`` shards)."""
    mod = type(X).__module__
    if mod.startswith(("dask.", "zarr.")):
        return True
    if isinstance(X, (str, os.PathLike)):
        p = Path(X)
        return p.suffix == ".zarr" or p.is_dir()
    return False


def open_sharded(X: Any, *, client: Any = None, shard_rows: int | None = None) -> Sharded:
    """Describe a sharded point set without reading its values.

    Parameters
    ----------
    X : dask array, zarr array, path, or array-like
        A 2-D dask array (its row chunks are the shards), a zarr array or a path to one
        (``*.zarr``; its row chunks are the shards), a folder of ``.npy`` files (each file is one
        shard, in natural name order: ``part_2`` before ``part_10``), or an in-memory array split
        into ``shard_rows`` rows per shard.
    client : distributed.Client, optional
        Needed for dask and in-memory arrays, which are persisted / scattered to the workers.
    shard_rows : int, optional
        Rows per shard for in-memory arrays (default 100,000).

    Returns
    -------
    Sharded

    Raises
    ------
    LowdimError
        For a missing path, an empty folder, shards that are not 2-D, are not numeric, or do not
        all have the same number of columns (the message names the shard).
    """
    mod = type(X).__module__
    if mod.startswith("dask."):
        return _from_dask(X, client)
    if mod.startswith("zarr."):
        return _from_zarr(X, str(getattr(X, "store_path", None) or getattr(X, "store", "zarr array")))
    if isinstance(X, (str, os.PathLike)):
        p = Path(X)
        if not p.exists():
            raise LowdimError(f"{str(p)!r} does not exist; pass a folder of .npy shards or a .zarr array")
        if p.suffix == ".zarr" or (p / ".zarray").exists() or (p / "zarr.json").exists():
            zarr = require("zarr", "dask")
            try:
                z = zarr.open_array(str(p), mode="r")
            except Exception as exc:
                raise LowdimError(f"could not open {str(p)!r} as a zarr array: {type(exc).__name__}: {exc}") from None
            return _from_zarr(z, str(p))
        if p.is_dir():
            return _from_folder(p)
        raise LowdimError(f"{str(p)!r} is a file; distributed input is a folder of .npy shards or a .zarr array "
                          "(load single files with lowdim.load_points)")
    from lowdim.validation import to_numpy

    A = to_numpy(X)
    _check_2d(A.shape, A.dtype, "X")
    if client is None:
        raise LowdimError("an in-memory array needs client= to be sharded across workers")
    step = int(shard_rows or DEFAULT_SHARD_ROWS)
    starts = range(0, A.shape[0], step)
    futs = client.scatter([A[s:s + step] for s in starts])
    return Sharded(
        loaders=tuple((_identity, f) for f in futs),
        names=tuple(f"rows {s}:{min(s + step, A.shape[0])}" for s in starts),
        rows=np.array([min(step, A.shape[0] - s) for s in starts], dtype=np.int64),
        n_features=int(A.shape[1]), dtype=_float_dtype([A.dtype]), source="in-memory array", array=A,
    )


def load_shard(loader: tuple, dtype: Any) -> np.ndarray:
    """Read one shard (on a worker) as a C-contiguous array of ``dtype``."""
    fn, *args = loader
    return np.ascontiguousarray(fn(*args), dtype=dtype)


# --------------------------------------------------------------------------- sources


def _identity(x: Any) -> Any:
    return x


def _load_npy(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _load_zarr_rows(z: Any, start: int, stop: int) -> np.ndarray:
    return np.asarray(z[start:stop])


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _from_folder(p: Path) -> Sharded:
    files = sorted((f for f in p.iterdir() if f.suffix == ".npy" and f.is_file()), key=_natural_key)
    if not files:
        others = sorted(f.name for f in p.iterdir())[:5]
        raise LowdimError(
            f"shard folder {str(p)!r} holds no .npy shards"
            + (f" (it holds {', '.join(others)})" if others else " (it is empty)")
            + "; save each shard with np.save(folder / 'part_000.npy', rows)"
        )
    rows, dtypes, names, loaders = [], [], [], []
    first_shape = None
    for f in files:
        try:
            m = np.load(f, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise LowdimError(f"shard {f.name!r} in {str(p)!r} could not be read as .npy: {type(exc).__name__}: {exc}") from None
        _check_2d(m.shape, m.dtype, f"shard {f.name!r} in {str(p)!r}")
        if first_shape is None:
            first_shape = (files[0].name, m.shape)
        elif m.shape[1] != first_shape[1][1]:
            raise LowdimError(
                f"shard {f.name!r} has {m.shape[1]} columns (shape {m.shape}) but shard "
                f"{first_shape[0]!r} has {first_shape[1][1]} (shape {first_shape[1]}); every shard "
                f"in {str(p)!r} must hold points of the same dimension"
            )
        if m.shape[0] == 0:
            continue
        rows.append(m.shape[0])
        dtypes.append(m.dtype)
        names.append(f.name)
        loaders.append((_load_npy, str(f.resolve())))
        del m
    if not loaders:
        raise LowdimError(f"every .npy shard in {str(p)!r} has 0 rows; there are no points")
    return Sharded(tuple(loaders), tuple(names), np.array(rows, dtype=np.int64), int(first_shape[1][1]),
                   _float_dtype(dtypes), str(p))


def _from_zarr(z: Any, where: str) -> Sharded:
    _check_2d(tuple(z.shape), np.dtype(z.dtype), f"zarr array {where!r}")
    n = int(z.shape[0])
    step = int(z.chunks[0])
    starts = range(0, n, step)
    return Sharded(
        loaders=tuple((_load_zarr_rows, z, s, min(s + step, n)) for s in starts),
        names=tuple(f"rows {s}:{min(s + step, n)} of {where}" for s in starts),
        rows=np.array([min(step, n - s) for s in starts], dtype=np.int64),
        n_features=int(z.shape[1]), dtype=_float_dtype([np.dtype(z.dtype)]), source=where,
    )


def _from_dask(X: Any, client: Any) -> Sharded:
    _check_2d(tuple(X.shape), np.dtype(X.dtype), "dask array X")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise LowdimError("dask array X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if client is None:
        raise LowdimError("a dask array needs client= (lowdim.scale.connect()) to be sharded across workers")
    X = X.rechunk({1: -1})
    blocks = X.to_delayed().ravel().tolist()
    futs = client.compute(blocks)  # persisted blocks: each worker holds its own share
    rows = np.array(X.chunks[0], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(rows)])
    return Sharded(
        loaders=tuple((_identity, f) for f in futs),
        names=tuple(f"block {i} (rows {offs[i]}:{offs[i + 1]})" for i in range(len(rows))),
        rows=rows, n_features=int(X.shape[1]), dtype=_float_dtype([np.dtype(X.dtype)]), source="dask array",
        array=X,
    )


def _check_2d(shape: tuple, dtype: np.dtype, name: str) -> None:
    if len(shape) != 2:
        raise LowdimError(f"{name} has shape {shape}; shards must be 2-D arrays of shape (n_rows, n_features)")
    if shape[1] == 0:
        raise LowdimError(f"{name} has shape {shape}: no columns")
    if np.dtype(dtype).kind not in "biuf":
        raise LowdimError(f"{name} has dtype {dtype} (shape {shape}); intrinsic dimension needs real numbers")


def _float_dtype(dtypes: list) -> np.dtype:
    if all(np.dtype(d) == np.float32 for d in dtypes):
        return np.dtype(np.float32)
    return np.dtype(np.float64)
