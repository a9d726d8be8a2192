"""Relevance judgments aligned with embedding rows: which BEIR document/query each row is.

``lowdim compress --beir DIR`` uses this; Python users call :func:`judgments_for_rows` with their
own arrays to get the ``qrels``, ``doc_ids`` and ``query_ids`` that :func:`lowdim.recommend` takes.
"""

from __future__ import annotations

import os
from typing import Any

from lowdim.errors import LowdimError

__all__ = ["judgments_for_rows"]


def judgments_for_rows(beir: str | os.PathLike, n_docs: int, n_queries: int, *,
                       qrels: str | os.PathLike | None = None, split: str = "test") -> tuple[dict, list, list]:
    """Qrels plus the ids of the corpus and query rows of embeddings made from a BEIR folder.

    Parameters
    ----------
    beir : path
        A BEIR-layout folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``); the
        corpus embeddings must follow ``corpus.jsonl`` row for row, the query embeddings either
        ``queries.jsonl`` or its judged queries only.
    n_docs, n_queries : int
        Rows of the corpus and query embeddings.
    qrels : path, optional
        A qrels TSV to use instead of the folder's ``qrels/<split>.tsv``.
    split : str, default="test"

    Returns
    -------
    qrels, doc_ids, query_ids

    Raises
    ------
    LowdimError
        When the row counts do not match the folder (the message gives both counts).
    """
    from lowdim.datasets.beir import load_beir, load_qrels

    col = load_beir(beir, split=split)
    rel = load_qrels(qrels) if qrels is not None else col.qrels
    if len(col.doc_ids) != n_docs:
        raise LowdimError(f"{str(beir)!r}: corpus.jsonl has {len(col.doc_ids)} documents but the embeddings have "
                          f"{n_docs} rows; they must be in the same order")
    qids: list[Any] = list(col.query_ids)
    if len(qids) != n_queries:
        judged = [q for q in qids if q in rel]
        if len(judged) != n_queries:
            raise LowdimError(f"{str(beir)!r}: queries.jsonl has {len(qids)} queries ({len(judged)} judged) but "
                              f"the query embeddings have {n_queries} rows")
        qids = judged
    return rel, list(col.doc_ids), qids
