"""Capture activations of a PyTorch or Hugging Face model, with bounded memory.

Layers of any ``nn.Module`` are selected by module name or glob pattern (``fnmatch``) and read
with forward hooks; Hugging Face models give their hidden states (``output_hidden_states=True``).
Every captured tensor is pooled to one row per sample (``"mean"``, ``"cls"``, ``"flatten"``) or
one row per real token (``"token"``, padding dropped through the attention mask). Memory stays
bounded two ways: ``max_samples`` keeps a seeded uniform subsample (bottom-k of random keys, so
the result does not depend on the batch size), and above ``memory_limit_mb`` rows are streamed
to ``.npy`` shards in a work folder (a folder that :func:`lowdim.estimate` also reads).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require
from lowdim.validation import check_choice

__all__ = ["Activations", "capture_activations", "capture_hidden_states", "match_layers", "read_shard_rows"]

POOLS = ("mean", "cls", "token", "flatten")


@dataclass
class Activations:
    """Per-layer activations, in memory or as ``.npy`` shard folders.

    Attributes
    ----------
    names : list of str
        Layer names, in model order.
    labels : ndarray or None
        One label per row (per sample; for ``pool="token"`` per token, repeated from its sample).
    pool : str
    work_dir : Path or None
        Folder holding streamed shards (one sub-folder per layer); delete it with :meth:`cleanup`.
    """

    names: list[str]
    pool: str
    labels: np.ndarray | None = None
    work_dir: Path | None = None
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _folders: dict[str, Path] = field(default_factory=dict, repr=False)
    _owns_dir: bool = False

    def __getitem__(self, name: str) -> np.ndarray:
        """The activations of one layer as a 2-D float32 array (shards are read back)."""
        if name in self._arrays:
            return self._arrays[name]
        if name in self._folders:
            parts = sorted(self._folders[name].glob("part-*.npy"))
            return np.concatenate([np.load(p) for p in parts])
        raise LowdimError(f"no captured layer {name!r}; captured: {', '.join(self.names)}")

    def sample(self, name: str, m: int, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A seeded subsample of at most ``m`` rows and their row numbers, reading shards by memory map."""
        if name in self._arrays:
            A = self._arrays[name]
            idx = np.arange(len(A)) if len(A) <= m else np.sort(
                np.random.default_rng(random_state).choice(len(A), size=m, replace=False))
            return A[idx], idx
        return read_shard_rows(self._folders[name], m, random_state=random_state)

    def source(self, name: str) -> np.ndarray | Path:
        """The array, or the folder of ``.npy`` shards when the layer was streamed to disk."""
        return self._folders.get(name) or self[name]

    def n_rows(self, name: str) -> int:
        if name in self._arrays:
            return int(self._arrays[name].shape[0])
        return sum(int(np.load(p, mmap_mode="r").shape[0]) for p in self._folders[name].glob("part-*.npy"))

    @property
    def streamed(self) -> bool:
        return bool(self._folders)

    def items(self) -> Iterable[tuple[str, np.ndarray]]:
        for n in self.names:
            yield n, self[n]

    def cleanup(self) -> None:
        """Remove the work folder when this object created it."""
        if self._owns_dir and self.work_dir is not None and self.work_dir.exists():
            shutil.rmtree(self.work_dir, ignore_errors=True)


def read_shard_rows(folder: str | Path, m: int | None, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a folder of ``part-*.npy`` shards: a seeded subsample of ``m`` (None: all) and their numbers.

    Only the chosen rows are read (memory-mapped shards), so a streamed layer of any size is
    measured in O(m) memory.
    """
    parts = sorted(Path(folder).glob("part-*.npy"))
    if not parts:
        raise LowdimError(f"folder {str(folder)!r} holds no part-*.npy shards")
    heads = [_npy_header(p) for p in parts]
    sizes = np.array([h[0][0] for h in heads])
    n = int(sizes.sum())
    if m is None or n <= m:
        idx = np.arange(n)
    else:
        idx = np.sort(np.random.default_rng(random_state).choice(n, size=m, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for i, (p, (shape, dtype, offset)) in enumerate(zip(parts, heads)):
        sel = idx[(idx >= starts[i]) & (idx < starts[i + 1])] - starts[i]
        if not len(sel):
            continue
        if len(sel) == shape[0]:
            out.append(np.load(p))
            continue
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        buf = bytearray(len(sel) * row_bytes)
        # positioned reads of the chosen rows only: no memory map, so the page cache of a
        # multi-GB shard never counts against this process
        with open(p, "rb") as fh:
            fd = fh.fileno()
            for j, r in enumerate(sel):
                buf[j * row_bytes:(j + 1) * row_bytes] = os.pread(fd, row_bytes, offset + int(r) * row_bytes)
        out.append(np.frombuffer(buf, dtype=dtype).reshape(len(sel), *shape[1:]))
    return np.concatenate(out), idx


def _npy_header(path: Path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data offset) of a C-ordered .npy file."""
    with open(path, "rb") as fh:
        major, _ = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran:
            raise LowdimError(f"shard {str(path)!r} is Fortran-ordered; write C-ordered .npy shards")
        return shape, dtype, fh.tell()


class _Store:
    """Rows of one layer: a seeded bottom-k subsample, or a list that spills to ``.npy`` shards."""

    def __init__(self, name: str, *, max_samples: int | None, seed: int, limit_bytes: float,
                 folder_fn: Any) -> None:
        self.name = name
        self.max_samples = max_samples
        self.rng = np.random.default_rng(seed)
        self.limit = limit_bytes
        self.folder_fn = folder_fn
        self.rows: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.keys = np.empty(0)
        self.kept: np.ndarray | None = None
        self.kept_labels: np.ndarray | None = None
        self.nbytes = 0
        self.folder: Path | None = None
        self.n_parts = 0
        self.n_seen = 0

    def add(self, A: np.ndarray, y: np.ndarray | None) -> None:
        self.n_seen += len(A)
        if self.max_samples is not None:
            keys = self.rng.random(len(A))
            allk = np.concatenate([self.keys, keys])
            cat = A if self.kept is None else np.concatenate([self.kept, A])
            lab = None
            if y is not None:
                lab = y if self.kept_labels is None else np.concatenate([self.kept_labels, y])
            if len(allk) > self.max_samples:
                sel = np.sort(np.argpartition(allk, self.max_samples - 1)[: self.max_samples])
                allk, cat = allk[sel], cat[sel]
                lab = lab[sel] if lab is not None else None
            self.keys, self.kept, self.kept_labels = allk, cat, lab
            return
        self.rows.append(A)
        if y is not None:
            self.labels.append(y)
        self.nbytes += A.nbytes
        if self.folder is not None or self.nbytes > self.limit:
            self._spill()

    def _spill(self) -> None:
        if self.folder is None:
            self.folder = self.folder_fn(self.name)
        if not self.rows:
            return
        from lowdim.io import atomic_path

        # write the batches one after another under one .npy header: no concatenated copy
        n = sum(len(r) for r in self.rows)
        D = self.rows[0].shape[1]
        dtype = np.result_type(*self.rows)
        with atomic_path(self.folder / f"part-{self.n_parts:06d}.npy") as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n, D)})
            for r in self.rows:
                fh.write(np.ascontiguousarray(r, dtype=dtype).tobytes())
        self.n_parts += 1
        self.rows = []
        self.nbytes = 0

    def finish(self) -> tuple[np.ndarray | None, Path | None, np.ndarray | None]:
        if self.max_samples is not None:
            return self.kept, None, self.kept_labels
        labels = np.concatenate(self.labels) if self.labels else None
        if self.folder is not None:
            self._spill()
            return None, self.folder, labels
        return np.concatenate(self.rows), None, labels


def match_layers(model: Any, layers: str | Sequence[str]) -> list[str]:
    """Names of the modules of ``model`` that match ``layers`` (names or fnmatch globs).

    ``*`` matches within one level of the dotted module path (``"encoder.layer.*"`` gives the
    layers, not their sub-modules); ``**`` crosses levels (``"**.attention"``).

    Raises
    ------
    LowdimError
        When a name or pattern matches nothing; the message lists the available names.
    """
    names = [n for n, _ in model.named_modules() if n]
    pats = [layers] if isinstance(layers, str) else list(layers)
    if not pats:
        raise LowdimError("layers is empty; pass module names or glob patterns, e.g. layers='encoder.*'")
    out: list[str] = []
    for p in pats:
        hit = [n for n in names if _glob(n, p)]
        if not hit:
            shown = ", ".join(names[:60]) + (f", … ({len(names)} in all)" if len(names) > 60 else "")
            raise LowdimError(f"layer name or pattern {p!r} matches no module of {type(model).__name__}; "
                              f"available names: {shown}")
        out.extend(h for h in hit if h not in out)
    order = {n: i for i, n in enumerate(names)}
    return sorted(out, key=order.__getitem__)


def _glob(name: str, pattern: str) -> bool:
    """fnmatch where ``*`` stays inside one dotted level and ``**`` crosses levels."""
    if "**" in pattern:
        return fnmatch.fnmatchcase(name, pattern.replace("**", "*"))
    return name.count(".") == pattern.count(".") and fnmatch.fnmatchcase(name, pattern)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "layer"


def _pool(t: Any, pool: str, mask: Any, name: str) -> np.ndarray:
    """One row per sample (or per real token) from a layer output tensor."""
    import torch

    if isinstance(t, (tuple, list)):
        t = next((x for x in t if isinstance(x, torch.Tensor)), None)
    if not isinstance(t, torch.Tensor):
        raise LowdimError(f"layer {name!r} returned {type(t).__name__}, not a tensor; pick another layer")
    t = t.detach()
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim == 3 and pool != "flatten":
        if pool == "cls":
            t = t[:, 0]
        elif pool == "mean":
            if mask is not None:
                m = mask.to(t.dtype)[..., None]
                t = (t * m).sum(1) / m.sum(1).clamp(min=1)
            else:
                t = t.mean(1)
        else:  # token
            t = t[mask.bool()] if mask is not None else t.reshape(-1, t.shape[-1])
    elif t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    A = t.float().cpu().numpy()
    if not np.isfinite(A).all():
        bad = int((~np.isfinite(A)).sum())
        raise LowdimError(f"layer {name!r} produced {bad} non-finite activations (NaN or inf) of shape "
                          f"{tuple(A.shape)}; check the model's numerics (dtype, overflow) or drop this layer")
    return A


def _split_batch(batch: Any) -> tuple[Any, Any, Any]:
    """(model input, labels or None, attention mask or None)."""
    if isinstance(batch, dict):
        b = dict(batch)
        y = b.pop("labels", None)
        return b, y, b.get("attention_mask")
    if isinstance(batch, (tuple, list)):
        if len(batch) == 0:
            raise LowdimError("the loader yielded an empty batch; it must give tensors, (x, y) pairs or dicts")
        return batch[0], (batch[1] if len(batch) > 1 else None), None
    return batch, None, None


def _n_samples(x: Any, mask: Any, n_rows: int) -> int:
    """Samples in the batch: the mask's or the input's first axis, else the rows captured."""
    if mask is not None:
        return int(mask.shape[0])
    if hasattr(x, "shape") and len(x.shape):
        return int(x.shape[0])
    if isinstance(x, dict):
        first = next((v for v in x.values() if hasattr(v, "shape") and len(v.shape)), None)
        if first is not None:
            return int(first.shape[0])
    return n_rows


def _shape(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: tuple(v.shape) for k, v in x.items() if hasattr(v, "shape")}
    return tuple(getattr(x, "shape", ()))


def _to(x: Any, device: Any) -> Any:
    if device is None:
        return x
    if isinstance(x, dict):
        return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in x.items()}
    return x.to(device) if hasattr(x, "to") else x


def _labels_np(y: Any, n: int, name: str = "labels") -> np.ndarray:
    arr = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y).reshape(-1)
    if len(arr) != n:
        raise LowdimError(f"{name} has {len(arr)} entries but the batch has {n} samples; "
                          "give one label per sample")
    return arr


def capture_activations(
    model: Any,
    loader: Iterable[Any],
    *,
    layers: str | Sequence[str] = "*",
    pool: str = "mean",
    max_samples: int | None = None,
    memory_limit_mb: float = 1024.0,
    work_dir: str | Path | None = None,
    device: Any = None,
    random_state: int = 0,
    io: str = "output",
) -> Activations:
    """Run ``model`` over ``loader`` and keep the outputs (or inputs) of the selected modules.

    Parameters
    ----------
    model : torch.nn.Module
    loader : iterable of batches
        Tensors, ``(x, y)`` tuples (``y`` becomes ``Activations.labels``), or dicts of keyword
        arguments (Hugging Face style; ``"labels"`` is taken out, ``"attention_mask"`` masks tokens).
    layers : str or list of str, default="*"
        Module names or ``fnmatch`` globs over ``model.named_modules()`` (e.g. ``"encoder.layer.*"``;
        ``*`` stays within one dotted level, ``**`` crosses levels).
    pool : {"mean", "cls", "token", "flatten"}, default="mean"
        How a (batch, tokens, features) output becomes rows; outputs with more than 3 axes
        (convolutions) are flattened per sample.
    max_samples : int, optional
        Keep a seeded uniform subsample of at most this many rows per layer.
    memory_limit_mb : float, default=1024
        Without ``max_samples``, a layer holding more than this is streamed to ``.npy`` shards.
    work_dir : path, optional
        Where shards go (default: a new temporary folder; :meth:`Activations.cleanup` removes it).
    device : torch device, optional
        Move each batch there first.
    random_state : int, default=0
    io : {"output", "input"}, default="output"
        Keep what each module returns, or its first positional input (what a Linear layer's
        weight multiplies; used by :func:`lowdim.lowrank.profile`).

    Returns
    -------
    Activations

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> acts = capture_activations(net, [torch.randn(16, 4)], layers=["0", "2"])
    >>> acts.names, acts["0"].shape
    (['0', '2'], (16, 8))
    """
    torch = require("torch", "torch")
    check_choice("pool", pool, POOLS)
    check_choice("io", io, ("output", "input"))
    names = match_layers(model, layers)
    modules = dict(model.named_modules())
    # 1-D conv-like layers emit (batch, channels, length): "mean" averages positions, not channels
    chan_first = (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.MaxPool1d, torch.nn.AvgPool1d,
                  torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveMaxPool1d, torch.nn.BatchNorm1d)
    state: dict[str, Any] = {"mask": None, "out": {},
                             "channels_first": {n for n in names if isinstance(modules[n], chan_first)}}

    def hook_for(name: str) -> Any:
        def hook(_m: Any, inp: Any, out: Any) -> None:
            state["out"][name] = inp if io == "input" else out
        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        return _run(model, loader, names, pool, max_samples, memory_limit_mb, work_dir, device,
                    random_state, torch, state, forward=None)
    finally:
        for h in handles:
            h.remove()


def capture_hidden_states(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    pool: str = "mean",
    batch_size: int = 32,
    max_length: int = 256,
    max_samples: int | None = None,
    memory_limit_mb: float = 1024.0,
    work_dir: str | Path | None = None,
    device: Any = None,
    random_state: int = 0,
) -> Activations:
    """Hidden states of a Hugging Face model (``output_hidden_states=True``) over ``texts``.

    Layers are named ``"embeddings"``, ``"layer_1"``, … (all-MiniLM-L6-v2 has 7). ``pool="token"``
    keeps every real token (padding dropped through the attention mask); ``"mean"`` averages them;
    ``"cls"`` takes the first token.
    """
    torch = require("torch", "torch")
    check_choice("pool", pool, ("mean", "cls", "token"))
    texts = list(texts)
    if not texts:
        raise LowdimError("no texts to encode (empty list); pass at least one non-empty text")
    batches = (texts[i:i + batch_size] for i in range(0, len(texts), batch_size))
    n_layers = int(getattr(model.config, "num_hidden_layers", 0)) + 1
    names = ["embeddings", *[f"layer_{i}" for i in range(1, n_layers)]]
    state: dict[str, Any] = {"mask": None, "out": {}}

    def forward(batch: list[str]) -> tuple[Any, Any]:
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = _to(dict(enc), device)
        out = model(**enc, output_hidden_states=True)
        hs = out.hidden_states
        if len(hs) != len(names):
            names[:] = ["embeddings", *[f"layer_{i}" for i in range(1, len(hs))]]
        state["out"] = dict(zip(names, hs))
        return enc["attention_mask"], enc

    return _run(model, batches, names, pool, max_samples, memory_limit_mb, work_dir, device,
                random_state, torch, state, forward=forward)


def _run(model: Any, loader: Iterable[Any], names: list[str], pool: str, max_samples: int | None,
         memory_limit_mb: float, work_dir: Any, device: Any, seed: int, torch: Any,
         state: dict, forward: Any) -> Activations:
    if max_samples is not None and max_samples < 1:
        raise LowdimError(f"max_samples={max_samples} must be a positive integer or None")
    owns = work_dir is None
    root: list[Path] = [Path(work_dir)] if work_dir is not None else []

    def folder_fn(name: str) -> Path:
        if not root:
            root.append(Path(tempfile.mkdtemp(prefix="lowdim-acts-")))
        f = root[0] / _safe(name)
        if f.exists():
            shutil.rmtree(f)
        f.mkdir(parents=True)
        return f

    stores: dict[str, _Store] = {}
    labels_seen = False
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    n_batches = 0
    try:
        with torch.no_grad():
            for bi, batch in enumerate(loader):
                n_batches += 1
                state["out"] = {}
                if forward is not None:
                    shape = (len(batch),)
                    try:
                        mask, _ = forward(batch)
                    except LowdimError:
                        raise
                    except Exception as exc:
                        raise LowdimError(f"model {type(model).__name__} failed on batch {bi} of {len(batch)} "
                                          f"texts: {type(exc).__name__}: {exc}") from exc
                    x, y = batch, None
                else:
                    x, y, mask = _split_batch(batch)
                    shape = _shape(x)
                    try:
                        xin = _to(x, device)
                        model(**xin) if isinstance(xin, dict) else model(xin)
                    except Exception as exc:
                        raise LowdimError(f"model {type(model).__name__} failed on batch {bi} with input shape "
                                          f"{shape}: {type(exc).__name__}: {exc}") from exc
                for name in names:
                    if name not in state["out"]:
                        raise LowdimError(f"layer {name!r} did not run on batch {bi} (input shape {shape}); "
                                          "pick modules used in the forward pass")
                    out = state["out"][name]
                    if name in state.get("channels_first", ()) and getattr(out, "ndim", 0) == 3:
                        out = out.transpose(1, 2)  # (batch, length, channels): pool over positions
                    A = _pool(out, pool, mask, name)
                    yb = None
                    if y is not None:
                        n_samp = _n_samples(x, mask, len(A))
                        yl = _labels_np(y, n_samp)
                        if len(A) != n_samp:  # one row per token: repeat each sample's label
                            reps = mask.sum(1).cpu().numpy() if mask is not None else len(A) // n_samp
                            yl = np.repeat(yl, reps)
                        yb = yl
                        labels_seen = True
                    if name not in stores:
                        stores[name] = _Store(name, max_samples=max_samples, seed=seed,
                                              limit_bytes=memory_limit_mb * 2**20 / max(len(names), 1),
                                              folder_fn=folder_fn)
                    stores[name].add(A, yb)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    if n_batches == 0:
        raise LowdimError("the loader is empty (it yielded no batches); pass a loader with at least one batch")
    acts = Activations(names=list(names), pool=pool, work_dir=root[0] if root else None, _owns_dir=owns)
    for name in names:
        arr, folder, lab = stores[name].finish()
        if folder is not None:
            acts._folders[name] = folder
        else:
            acts._arrays[name] = arr
        if labels_seen and acts.labels is None:
            acts.labels = lab
    return acts
