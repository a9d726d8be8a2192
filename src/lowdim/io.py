"""Load and save point clouds: .npy .npz .csv .parquet .safetensors .pt; atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["atomic_path", "load_points", "save_array", "write_json"]

SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".txt", ".parquet", ".safetensors", ".pt", ".pth")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success.

    A crash or Ctrl-C leaves either the old file or none, never a half-written one. The file gets
    the mode a plain ``open(path, "w")`` would give it: an existing file keeps its mode, a new one
    gets 0o666 minus the umask (``mkstemp`` alone would make every output 0o600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save a ``.npy`` file atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_points(path: str | os.PathLike, *, key: str | None = None) -> np.ndarray:
    """Read a 2-D array from a file.

    Parameters
    ----------
    path : str or path-like
        ``.npy``, ``.npz`` (``key`` picks the array), ``.csv``/``.tsv``/``.txt`` (numeric, an optional
        header row is skipped), ``.parquet`` (numeric columns, or one list column),
        ``.safetensors`` (``key`` picks the tensor) or ``.pt``/``.pth`` (loaded with
        ``torch.load(weights_only=True)`` only: no pickled code is ever run).
    key : str, optional
        Array or tensor name inside a container file. Needed when it holds more than one.

    Returns
    -------
    numpy.ndarray
        The array as stored (validate it with :func:`lowdim.validation.as_points`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npy"); np.save(p, np.eye(3))
    >>> load_points(p).shape
    (3, 3)
    """
    p = Path(path)
    if not p.exists():
        raise LowdimError(f"file not found: {str(p)!r}; check the path")
    if p.is_dir():
        raise LowdimError(f"{str(p)!r} is a folder; pass a file ({', '.join(SUFFIXES)})")
    if p.stat().st_size == 0:
        raise LowdimError(f"file {str(p)!r} is empty (0 bytes); pass a file that holds an array")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return _pick(dict(z.items()), key, p)
        if suffix in (".csv", ".tsv", ".txt"):
            return _load_text(p, suffix)
        if suffix == ".parquet":
            return _load_parquet(p, key)
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return _pick(load_file(str(p)), key, p)
        if suffix in (".pt", ".pth"):
            torch = require("torch", "torch")
            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                obj = _pick(obj, key, p)
            return obj.float().numpy() if obj.dtype.is_floating_point else obj.numpy()
    except LowdimError:
        raise
    except Exception as exc:
        raise LowdimError(f"could not read {str(p)!r} as {suffix}: {type(exc).__name__}: {exc}") from None
    raise LowdimError(f"unsupported file type {suffix!r} for {str(p)!r}; use one of {', '.join(SUFFIXES)}")


def _pick(arrays: dict, key: str | None, p: Path) -> Any:
    if not arrays:
        raise LowdimError(f"{str(p)!r} holds no arrays")
    if key is None:
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        raise LowdimError(f"{str(p)!r} holds {len(arrays)} arrays ({', '.join(arrays)}); pick one with --key / key=")
    if key not in arrays:
        raise LowdimError(f"{str(p)!r} has no array {key!r}; available: {', '.join(arrays)}")
    return arrays[key]


def _load_text(p: Path, suffix: str) -> np.ndarray:
    delim = "\t" if suffix == ".tsv" else ("," if suffix == ".csv" else None)
    with open(p) as fh:
        first = fh.readline()
    fields = first.strip().split(delim) if delim else first.split()
    skip = 0
    try:
        [float(f) for f in fields]
    except ValueError:
        skip = 1  # header row
    A = np.loadtxt(p, delimiter=delim, skiprows=skip, ndmin=2)
    if A.size == 0:
        raise LowdimError(f"{str(p)!r} has a header but no data rows")
    return A


def _load_parquet(p: Path, key: str | None) -> np.ndarray:
    pq = require("pyarrow.parquet", "data")
    table = pq.read_table(p, columns=[key] if key else None)
    cols = [table.column(i) for i in range(table.num_columns)]
    if len(cols) == 1 and str(cols[0].type).startswith(("list", "fixed_size_list", "large_list")):
        return np.asarray(cols[0].to_pylist(), dtype=np.float64)
    numeric = [str(c.type).startswith(("int", "uint", "float", "double", "bool", "halffloat")) for c in cols]
    if not any(numeric):
        raise LowdimError(f"{str(p)!r} has no numeric columns; columns: {', '.join(table.column_names)}")
    if not all(numeric):
        # like the CSV loader: a text (or other) column is refused, never silently dropped
        other = [f"{n} ({c.type})" for n, c, ok in zip(table.column_names, cols, numeric) if not ok]
        raise LowdimError(f"{str(p)!r} has non-numeric columns {', '.join(other)}; keep only numeric columns "
                          "(key=/--key reads a single column), or drop the others")
    return np.column_stack([c.to_numpy(zero_copy_only=False) for c in cols])
