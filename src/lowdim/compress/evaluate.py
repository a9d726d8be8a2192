"""Retrieval fidelity of a codec: recall of the float32 top-k, nDCG@10 / MRR@10, CIs, timings."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lowdim.compress.codec import Codec, check_vectors
from lowdim.errors import LowdimError

__all__ = ["CodecReport", "GroundTruth", "evaluate", "ground_truth", "ndcg_mrr_at_10",
           "paired_bootstrap", "recall_at_k"]


@dataclass
class GroundTruth:
    """Exact float32 search results and, with qrels, the per-query float32 nDCG@10 / MRR@10."""

    corpus: np.ndarray
    queries: np.ndarray
    indices: np.ndarray  # (n_queries, k) exact top-k of the float32 vectors
    k: int
    metric: str
    qrels: dict[str, dict[str, int]] | None = None
    doc_ids: np.ndarray | None = None
    query_ids: np.ndarray | None = None
    ndcg: np.ndarray | None = None
    mrr: np.ndarray | None = None
    seconds: float = 0.0


def ground_truth(corpus: Any, queries: Any, *, k: int = 10, metric: str = "ip",
                 qrels: dict[str, dict[str, int]] | None = None, doc_ids: Any = None,
                 query_ids: Any = None) -> GroundTruth:
    """Exact top-``k`` of the float32 vectors through the shared k-NN engine (``lowdim.neighbors``).

    Parameters
    ----------
    corpus, queries : array-like
    k : int
    metric : {"ip", "cosine"}
    qrels : dict, optional
        ``{query_id: {doc_id: relevance}}`` (see :func:`lowdim.datasets.beir.load_qrels`); needs
        ``doc_ids`` and ``query_ids`` naming the rows. Queries without judgments are left out of
        nDCG/MRR, as BEIR does.
    """
    from lowdim.neighbors import knn_search

    X = check_vectors(corpus, name="corpus", metric=metric, min_samples=2)
    Q = check_vectors(queries, name="queries", metric=metric, dim=X.shape[1])
    if k > len(X):
        raise LowdimError(f"k={k} is larger than the corpus ({len(X)} vectors)")
    t0 = time.perf_counter()
    _, idx, _ = knn_search(X, Q, k, metric="ip", backend="exact")
    secs = time.perf_counter() - t0
    gt = GroundTruth(X, Q, idx, k, metric, seconds=secs)
    if qrels is not None:
        gt.qrels, gt.doc_ids, gt.query_ids = _check_qrels(qrels, doc_ids, query_ids, len(X), len(Q))
        _, top10, _ = knn_search(X, Q, min(10, len(X)), metric="ip", backend="exact")
        gt.ndcg, gt.mrr = ndcg_mrr_at_10(top10, gt.qrels, gt.doc_ids, gt.query_ids)
    return gt


def _check_qrels(qrels: dict, doc_ids: Any, query_ids: Any, n_docs: int,
                 n_queries: int) -> tuple[dict, np.ndarray, np.ndarray]:
    if doc_ids is None or query_ids is None:
        raise LowdimError("qrels need doc_ids and query_ids naming the corpus and query rows "
                          "(load both with lowdim.datasets.beir.load_beir)")
    doc_ids, query_ids = np.asarray(doc_ids).astype(str), np.asarray(query_ids).astype(str)
    if len(doc_ids) != n_docs or len(query_ids) != n_queries:
        raise LowdimError(f"{len(doc_ids)} doc ids for {n_docs} corpus rows and {len(query_ids)} query ids "
                          f"for {n_queries} query rows: they must match one to one")
    known = set(doc_ids.tolist())
    judged = {(q, d) for q, docs in qrels.items() for d in docs}
    missing = sorted({d for _, d in judged if d not in known})
    if missing:
        raise LowdimError(f"qrels name {len(missing)} documents (of {len({d for _, d in judged})} judged) that are "
                          f"not in the corpus of {n_docs} documents, e.g. {missing[:3]}; use the qrels that belong "
                          "to this corpus, or embed the missing documents")
    if not set(qrels) & set(query_ids.tolist()):
        raise LowdimError(f"none of the {len(qrels)} judged queries is among the {n_queries} query ids; "
                          "check that queries and qrels come from the same collection")
    return qrels, doc_ids, query_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-query fraction of the true top-k found in the returned top-k."""
    k = truth.shape[1]
    hits = (found[:, :k, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
    return hits / k


def ndcg_mrr_at_10(indices: np.ndarray, qrels: dict[str, dict[str, int]], doc_ids: np.ndarray,
                   query_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-judged-query nDCG@10 (linear gains, as pytrec_eval/BEIR) and MRR@10.

    Only queries present in ``qrels`` are scored, in the order of ``query_ids``.
    """
    ndcg, mrr = [], []
    disc = 1.0 / np.log2(np.arange(2, 12))
    for r, qid in enumerate(query_ids):
        rel = qrels.get(str(qid))
        if not rel:
            continue
        docs = doc_ids[indices[r, :10]]
        gains = np.array([rel.get(str(d), 0) for d in docs], float)
        ideal = np.sort(np.array([g for g in rel.values() if g > 0], float))[::-1][:10]
        idcg = (ideal * disc[:len(ideal)]).sum()
        ndcg.append((gains * disc[:len(gains)]).sum() / idcg if idcg > 0 else 0.0)
        first = np.flatnonzero(gains > 0)
        mrr.append(1.0 / (first[0] + 1) if len(first) else 0.0)
    return np.array(ndcg), np.array(mrr)


def paired_bootstrap(a: np.ndarray, b: np.ndarray | None = None, *, n_boot: int = 1000,
                     confidence: float = 0.95, random_state: int | None = 0) -> tuple[float, float]:
    """Percentile CI of ``mean(a)`` (or of ``mean(a − b)`` for paired per-query scores).

    The same resampled queries are used for both systems, so the interval of the difference is
    much narrower than the two separate intervals (Efron & Tibshirani 1993; Sakai 2006).
    """
    d = np.asarray(a, float) - (0 if b is None else np.asarray(b, float))
    if len(d) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(random_state)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo = (1 - confidence) / 2
    return float(np.quantile(means, lo)), float(np.quantile(means, 1 - lo))


@dataclass
class CodecReport:
    """How one fitted codec does on one corpus and query set.

    ``memory_bytes`` is the real memory of ``n_vectors`` encoded vectors (codes plus
    ``fixed_bytes``); ``compression_ratio`` is ``n_vectors·4·D / memory_bytes`` and
    ``asymptotic_ratio`` the per-vector ``4·D / bytes_per_vector`` it approaches for huge ``n``.
    """

    name: str
    spec: dict[str, Any]
    bytes_per_vector: int
    overhead_bytes: int
    compression_ratio: float
    recall: float
    recall_ci: tuple[float, float]
    k: int
    ndcg_at_10: float | None = None
    ndcg_delta_ci: tuple[float, float] | None = None
    mrr_at_10: float | None = None
    encode_seconds: float = 0.0
    encode_vectors_per_s: float = 0.0
    search_seconds: float = 0.0
    fit_seconds: float = 0.0
    memory_bytes: int = 0
    rescored: bool = False
    n_vectors: int = 0
    asymptotic_ratio: float = 0.0
    per_query_recall: np.ndarray | None = field(default=None, repr=False)

    @property
    def fixed_bytes(self) -> int:
        return self.overhead_bytes

    @property
    def memory_per_vector(self) -> float:
        """Real bytes per vector at ``n_vectors``: ``memory_bytes / n_vectors``."""
        return self.memory_bytes / max(self.n_vectors, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("per_query_recall")
        d["recall_at_10" if self.k == 10 else f"recall_at_{self.k}"] = self.recall
        return d


def evaluate(codec: Codec, gt: GroundTruth, *, fitted: bool = False, rescore: bool = False,
             n_boot: int = 1000, random_state: int | None = 0, n_vectors: int | None = None) -> CodecReport:
    """Fit (unless ``fitted``), encode the corpus, search the queries and compare with ``gt``.

    Parameters
    ----------
    codec : Codec
    gt : GroundTruth
        From :func:`ground_truth`.
    rescore : bool
        Re-rank candidates with the float32 corpus (which then stays on disk; the report's
        ``rescored`` flag says so).
    n_vectors : int, optional
        Corpus size for the memory and ratio (default: the evaluated corpus).

    Returns
    -------
    CodecReport
    """
    t0 = time.perf_counter()
    if not fitted:
        codec.fit(gt.corpus, random_state=random_state)
    t1 = time.perf_counter()
    codes = codec.encode(gt.corpus)
    t2 = time.perf_counter()
    k_search = max(gt.k, 10 if gt.qrels is not None else gt.k)
    _, idx = codec.search(gt.queries, codes, k_search, rescore=gt.corpus if rescore else None)
    t3 = time.perf_counter()
    per_q = recall_at_k(idx[:, :gt.k], gt.indices)
    ndcg = mrr = delta_ci = None
    if gt.qrels is not None:
        nd, mr = ndcg_mrr_at_10(idx[:, :10], gt.qrels, gt.doc_ids, gt.query_ids)
        ndcg, mrr = float(nd.mean()), float(mr.mean())
        delta_ci = paired_bootstrap(nd, gt.ndcg, n_boot=n_boot, random_state=random_state)
    n = len(codes) if n_vectors is None else int(n_vectors)
    return CodecReport(
        name=codec.name + (" +rescore(fp32 on disk)" if rescore else ""), spec=codec.spec(),
        bytes_per_vector=codec.bytes_per_vector, overhead_bytes=codec.fixed_bytes,
        compression_ratio=codec.compression_ratio(n), recall=float(per_q.mean()),
        recall_ci=paired_bootstrap(per_q, n_boot=n_boot, random_state=random_state), k=gt.k,
        ndcg_at_10=ndcg, ndcg_delta_ci=delta_ci, mrr_at_10=mrr, encode_seconds=t2 - t1,
        encode_vectors_per_s=len(codes) / max(t2 - t1, 1e-9), search_seconds=t3 - t2, fit_seconds=t1 - t0,
        memory_bytes=codec.memory_bytes(n), rescored=rescore, n_vectors=n,
        asymptotic_ratio=codec.compression_ratio(), per_query_recall=per_q,
    )
