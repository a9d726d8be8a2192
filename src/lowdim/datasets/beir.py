"""BEIR-layout retrieval collections and the precomputed SciFact embeddings.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id  corpus-id  score`` with a header)
(Thakur et al. 2021, "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of Information
Retrieval Models"). The data folder is found by one rule, :func:`data_dir`: an explicit path, else
the ``LOWDIM_DATA`` environment variable; lowdim bundles no retrieval data and never guesses a path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowdim.errors import LowdimError

__all__ = ["BeirCollection", "EmbeddedCollection", "data_dir", "load_beir", "load_qrels",
           "load_scifact_embeddings"]

SCIFACT_EMBEDDINGS = "embeddings-all-MiniLM-L6-v2.npz"


def data_dir(path: str | os.PathLike | None = None, *, what: str = "the data folder") -> Path:
    """The data folder, by lowdim's one rule: ``path`` if given, else ``$LOWDIM_DATA``.

    The folder holds one sub-folder per data set (``scifact/``, ``mnist/`` …). lowdim bundles no
    such data and never falls back to a guessed or development path.

    Parameters
    ----------
    path : path, optional
        An explicit folder (CLI: ``--data DIR``).
    what : str
        What needs the folder, for the error message.

    Raises
    ------
    LowdimError
        When neither is given, or the one given is not a folder (the message names it).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> data_dir(d) == Path(d)
    True
    """
    if path is not None:
        p = Path(path)
        if p.is_dir():
            return p
        raise LowdimError(f"data folder {str(p)!r} does not exist; pass the folder that holds {what}")
    env = os.environ.get("LOWDIM_DATA")
    if env:
        if Path(env).is_dir():
            return Path(env)
        raise LowdimError(f"LOWDIM_DATA={env!r} is not a folder; point it at the folder that holds {what} "
                          "or unset it")
    raise LowdimError(f"no data folder given for {what}: set LOWDIM_DATA=/path/to/data (the folder "
                      "holding it) or pass the folder explicitly (--data DIR where a command has it); "
                      "lowdim never downloads data")


def _collection_dir(name_or_path: str | os.PathLike, data: str | os.PathLike | None) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if p.is_absolute() or os.sep in str(name_or_path):
        raise LowdimError(f"BEIR folder {str(p)!r} does not exist")
    return data_dir(data) / str(name_or_path)


def load_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV into ``{query_id: {doc_id: relevance}}`` (a header row is skipped)."""
    p = Path(path)
    if not p.is_file():
        raise LowdimError(f"qrels file {str(p)!r} not found")
    qrels: dict[str, dict[str, int]] = {}
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (n == 1 and parts[0] == "query-id"):
                continue
            if len(parts) < 3:
                raise LowdimError(f"{str(p)!r} line {n}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}")
            try:
                score = int(float(parts[2]))
            except ValueError:
                raise LowdimError(f"{str(p)!r} line {n}: score {parts[2]!r} is not a number") from None
            qrels.setdefault(parts[0], {})[parts[1]] = score
    if not qrels:
        raise LowdimError(f"qrels file {str(p)!r} holds no judgments")
    return qrels


def _read_jsonl(p: Path) -> list[dict]:
    if not p.is_file():
        raise LowdimError(f"BEIR file {str(p)!r} not found")
    rows = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LowdimError(f"{str(p)!r} line {n} is not JSON: {exc}") from None
    return rows


@dataclass
class BeirCollection:
    """Texts and judgments of a BEIR collection."""

    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    path: Path


def load_beir(name_or_path: str | os.PathLike = "scifact", *, split: str = "test",
              data: str | os.PathLike | None = None) -> BeirCollection:
    """Load a BEIR folder's texts (document text = title + " " + text, as BEIR) and qrels.

    Examples
    --------
    >>> from lowdim.datasets.beir import load_beir
    >>> c = load_beir("scifact")                       # doctest: +SKIP
    >>> len(c.doc_ids), len(c.qrels)                   # doctest: +SKIP
    (5183, 300)
    """
    root = _collection_dir(name_or_path, data)
    corpus = _read_jsonl(root / "corpus.jsonl")
    queries = _read_jsonl(root / "queries.jsonl")
    try:
        doc_ids = [str(r["_id"]) for r in corpus]
        texts = [(str(r.get("title") or "") + " " + str(r.get("text") or "")).strip() for r in corpus]
        query_ids = [str(r["_id"]) for r in queries]
        query_texts = [str(r.get("text") or "") for r in queries]
    except KeyError as exc:
        raise LowdimError(f"{str(root)!r}: a corpus or query row lacks the field {exc}") from None
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    return BeirCollection(doc_ids, texts, query_ids, query_texts, qrels, root)


@dataclass
class EmbeddedCollection:
    """Precomputed embeddings with their ids and the qrels of one split.

    ``queries`` holds only the judged queries of the split (the test split: 300 for SciFact).
    """

    docs: np.ndarray
    queries: np.ndarray
    doc_ids: np.ndarray
    query_ids: np.ndarray
    qrels: dict[str, dict[str, int]]
    info: dict


def load_scifact_embeddings(data: str | os.PathLike | None = None, *, split: str = "test",
                            all_queries: bool = False) -> EmbeddedCollection:
    """The precomputed all-MiniLM-L6-v2 SciFact embeddings (5,183 docs × 384, L2-normalised).

    Parameters
    ----------
    data : path, optional
        The data folder (see :func:`data_dir`).
    split : {"test", "train"}
        Which qrels to load.
    all_queries : bool, default=False
        Keep all 1,109 queries instead of the judged ones of ``split``.

    Raises
    ------
    LowdimError
        When the data folder or the embeddings file is absent.
    """
    root = data_dir(data, what=f"scifact/{SCIFACT_EMBEDDINGS}") / "scifact"
    f = root / SCIFACT_EMBEDDINGS
    if not f.is_file():
        raise LowdimError(f"SciFact embeddings {str(f)!r} not found; the data folder must hold "
                          f"scifact/{SCIFACT_EMBEDDINGS} (set LOWDIM_DATA)")
    with np.load(f, allow_pickle=False) as z:
        need = {"docs", "queries", "doc_ids", "query_ids"}
        if not need <= set(z.files):
            raise LowdimError(f"{str(f)!r} lacks arrays {sorted(need - set(z.files))}")
        docs, queries = z["docs"].astype(np.float32), z["queries"].astype(np.float32)
        doc_ids, query_ids = z["doc_ids"].astype(str), z["query_ids"].astype(str)
        info = json.loads(str(z["info"])) if "info" in z.files else {}
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    if not all_queries:
        keep = np.isin(query_ids, list(qrels))
        queries, query_ids = queries[keep], query_ids[keep]
    return EmbeddedCollection(docs, queries, doc_ids, query_ids, qrels, info)
