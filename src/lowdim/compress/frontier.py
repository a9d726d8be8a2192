"""The storage-vs-quality Pareto front of codecs, and the automatic choice under a budget.

The grid is pruned with what the data say, not evaluated blindly:

- the **PCA spectrum** gives each dimension its share of variance: the bit-allocating codec
  (``pca+alloc<B>``) spends each budget by reverse water-filling on it; PCA-truncated codecs are
  only tried at widths that keep enough variance (``MIN_VARIANCE_KEPT``) and never below the
  intrinsic dimension; prefix truncation is only tried when the first coordinates already hold
  nearly as much variance as the top principal axes (a Matryoshka-trained model);
- the **intrinsic dimension** (TwoNN, :func:`lowdim.estimate`) tells below which budget recall
  falls fast (one bit per intrinsic direction: :func:`smallest_budget`, a heuristic, not a bound)
  and bounds the narrowest projection tried;
- product quantization (FAISS OPQ) is only tried below one bit per ambient dimension, where
  scalar codes cannot go, and only where its rotation and codebooks fit the memory.

Budgets are **real memory per vector at the corpus size** ``n_vectors`` (default: the corpus
given): codes plus every fixed array (PCA axes, scales, codebooks, the spec), divided by ``n``.
A 582 KiB PCA matrix is 112 bytes per vector on 5,183 vectors and nothing on 10 million, so the
front and the choice depend on ``n``; pass ``n_vectors=10_000_000`` to plan for a corpus that
will grow (recall is still measured on the corpus given).

References: Pareto efficiency of rate–distortion operating points (Shoham & Gersho 1988);
Facco et al. 2017 (TwoNN).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lowdim.compress.candidates import _bytes_of, candidate_names, smallest_budget
from lowdim.compress.codec import Codec, check_vectors
from lowdim.compress.evaluate import CodecReport, GroundTruth, evaluate, ground_truth
from lowdim.errors import LowdimError
from lowdim.validation import check_fraction

__all__ = ["Frontier", "Recommendation", "candidate_names", "frontier", "pareto_front", "recommend",
           "smallest_budget"]

#: compressions tried on the default grid, as fractions of float32 storage (2×, 4×, … 64×)
DEFAULT_RATIOS = (2, 4, 8, 16, 32, 64)


@dataclass
class Frontier:
    """Every evaluated codec, the Pareto front, and what the data told the grid.

    Attributes
    ----------
    reports : list of CodecReport
    front : list of CodecReport
        Bytes ascending, quality strictly increasing: nothing on it is beaten by a codec that
        is both smaller and better.
    dimension : float
        Intrinsic dimension of the corpus (TwoNN), with ``dimension_ci``.
    spectrum : ndarray
        Cumulative fraction of variance of the principal axes.
    label_free : bool
        True when the queries were held-out corpus vectors (no queries were given).
    float32_ndcg : float or None
        nDCG@10 of exact float32 search (with qrels).
    codecs : dict
        Fitted codecs by name (not serialised).
    """

    reports: list[CodecReport]
    front: list[CodecReport]
    dimension: float
    dimension_ci: tuple[float, float]
    spectrum: np.ndarray
    dim: int
    n_corpus: int
    n_queries: int
    label_free: bool
    float32_ndcg: float | None = None
    seconds: float = 0.0
    n_vectors: int = 0
    codecs: dict[str, Codec] = field(default_factory=dict, repr=False)

    def best(self, budget_bytes: float) -> CodecReport | None:
        """The codec of highest recall whose real memory at ``n_vectors`` is ``≤ budget_bytes`` a vector."""
        ok = [r for r in self.reports if r.memory_per_vector <= budget_bytes and not r.rescored]
        return max(ok, key=lambda r: (r.recall, -r.memory_bytes)) if ok else None

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "dimension_ci": list(self.dimension_ci), "dim": self.dim,
                "n_corpus": self.n_corpus, "n_queries": self.n_queries, "label_free": self.label_free,
                "n_vectors": self.n_vectors,
                "float32_ndcg_at_10": self.float32_ndcg, "seconds": self.seconds,
                "variance_kept": {str(d): float(self.spectrum[d - 1]) for d in _powers(self.dim)},
                "front": [_row(r) for r in self.front], "reports": [_row(r) for r in self.reports]}


@dataclass
class Recommendation:
    """The chosen codec (fitted on the whole corpus), its report, and the frontier it came from."""

    codec: Codec
    report: CodecReport
    frontier: Frontier
    reason: str

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {"codec": self.codec.spec(), "bytes_per_vector": r.bytes_per_vector,
                "fixed_bytes": r.fixed_bytes, "n_vectors": r.n_vectors, "memory_bytes": r.memory_bytes,
                "memory_per_vector": r.memory_per_vector, "compression_ratio": r.compression_ratio,
                "asymptotic_ratio": r.asymptotic_ratio, "recall_at_10": r.recall if r.k == 10 else None,
                "recall": r.recall, "recall_ci": list(r.recall_ci), "ndcg_at_10": r.ndcg_at_10,
                "reason": self.reason, "intrinsic_dimension": self.frontier.dimension,
                "front": [_row(x) for x in self.frontier.front]}


def _row(r: CodecReport) -> dict[str, Any]:
    return {"name": r.name, "bytes_per_vector": r.bytes_per_vector, "fixed_bytes": r.fixed_bytes,
            "n_vectors": r.n_vectors, "memory_per_vector": r.memory_per_vector,
            "compression_ratio": r.compression_ratio, "asymptotic_ratio": r.asymptotic_ratio,
            "recall": r.recall, "recall_ci": list(r.recall_ci), "ndcg_at_10": r.ndcg_at_10,
            "mrr_at_10": r.mrr_at_10, "encode_vectors_per_s": r.encode_vectors_per_s,
            "search_seconds": r.search_seconds, "fit_seconds": r.fit_seconds, "memory_bytes": r.memory_bytes,
            "overhead_bytes": r.overhead_bytes, "rescored": r.rescored}


def _powers(D: int) -> list[int]:
    out, d = [], 1
    while d < D:
        out.append(d)
        d *= 2
    return [*out, D]


def pareto_front(reports: list[CodecReport], *, key: str = "recall") -> list[CodecReport]:
    """Codecs not dominated in (less real memory, higher ``key``); rescoring rows are left out."""
    rows = sorted((r for r in reports if not r.rescored and getattr(r, key) is not None),
                  key=lambda r: (r.memory_bytes, -getattr(r, key)))
    front, best = [], -math.inf
    for r in rows:
        if getattr(r, key) > best + 1e-12:
            front.append(r)
            best = getattr(r, key)
    return front


def _has_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


@dataclass
class _Data:
    gt: GroundTruth
    label_free: bool
    dimension: float
    dimension_ci: tuple[float, float]
    spectrum: np.ndarray
    prefix_energy: float | None
    n_total: int


def _prepare(corpus: Any, queries: Any, *, qrels: Any, doc_ids: Any, query_ids: Any, metric: str,
             k: int, n_holdout: int | None, random_state: int | None) -> _Data:
    X = check_vectors(corpus, name="corpus", metric=metric, min_samples=20)
    n_total = len(X)
    label_free = queries is None
    if label_free:
        if qrels is not None:
            raise LowdimError("qrels were given without queries; pass the query embeddings too")
        rng = np.random.default_rng(random_state)
        h = n_holdout or min(500, max(10, len(X) // 10))
        if h >= len(X) // 2:
            raise LowdimError(f"n_holdout={h} leaves too few corpus vectors ({len(X)} in all); lower it")
        perm = rng.permutation(len(X))
        Q, X = X[perm[:h]], X[np.sort(perm[h:])]
        doc_ids = None if doc_ids is None else np.asarray(doc_ids)[np.sort(perm[h:])]
    else:
        Q = check_vectors(queries, name="queries", metric=metric, dim=X.shape[1])
    gt = ground_truth(X, Q, k=k, metric="ip", qrels=qrels, doc_ids=doc_ids, query_ids=query_ids)
    from lowdim.api import estimate

    rng = np.random.default_rng(random_state)
    S = X if len(X) <= 5000 else X[rng.choice(len(X), 5000, replace=False)]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate documents are dropped by the estimator
        res = estimate(S, method="twonn", random_state=random_state)
    from threadpoolctl import threadpool_limits

    Sc = S - S.mean(0)
    with threadpool_limits(limits=1, user_api="blas"):  # see PCA.fit: contended threads are slower
        ev = np.linalg.eigvalsh(np.cov(Sc, rowvar=False).reshape(X.shape[1], X.shape[1]))[::-1].clip(0)
    spectrum = np.cumsum(ev) / max(ev.sum(), 1e-300)
    half = max(1, X.shape[1] // 4)
    prefix = (Sc[:, :half] ** 2).sum() / max((Sc ** 2).sum(), 1e-300)
    return _Data(gt, label_free, float(res.dimension), tuple(map(float, res.ci)), spectrum,
                 float(prefix / max(spectrum[half - 1], 1e-12)), n_total)


def _check_n(n_vectors: Any, n_default: int) -> int:
    if n_vectors is None:
        return n_default
    if isinstance(n_vectors, bool) or int(n_vectors) != n_vectors or n_vectors < 1:
        raise LowdimError(f"n_vectors={n_vectors!r} must be a positive whole number: the corpus size to "
                          "plan memory for (e.g. 10_000_000)")
    return int(n_vectors)


def _run(data: _Data, names: list[str], *, metric: str, random_state: int | None,
         progress: Callable[[str], None] | None, t0: float, n_vectors: int) -> Frontier:
    reports, codecs = [], {}
    for name in names:
        if progress is not None:
            progress(name)
        codec = Codec.from_name(name, metric="ip")  # vectors are already normalised for cosine
        rep = evaluate(codec, data.gt, random_state=random_state, n_vectors=n_vectors)
        reports.append(rep)
        codecs[rep.name] = codec
        codec.metric = metric
    gt = data.gt
    return Frontier(reports=reports, front=pareto_front(reports), dimension=data.dimension,
                    dimension_ci=data.dimension_ci, spectrum=data.spectrum, dim=gt.corpus.shape[1],
                    n_corpus=len(gt.corpus), n_queries=len(gt.queries), label_free=data.label_free,
                    float32_ndcg=None if gt.ndcg is None else float(gt.ndcg.mean()),
                    seconds=time.perf_counter() - t0, n_vectors=n_vectors, codecs=codecs)


def frontier(corpus: Any, queries: Any = None, *, qrels: dict | None = None, doc_ids: Any = None,
             query_ids: Any = None, budgets: list[int] | None = None, codecs: list[str] | None = None,
             metric: str = "ip", k: int = 10, n_holdout: int | None = None, faiss: bool | None = None,
             n_vectors: int | None = None, random_state: int | None = 0,
             progress: Callable[[str], None] | None = None) -> Frontier:
    """Evaluate a data-pruned grid of codecs and return the bytes-vs-recall Pareto front.

    Parameters
    ----------
    corpus : array-like of shape (n, D)
        Embeddings to compress.
    queries : array-like of shape (m, D), optional
        Query embeddings. Without them (label-free mode) ``n_holdout`` corpus vectors are held
        out and used as queries against the rest.
    qrels, doc_ids, query_ids : optional
        BEIR relevance judgments and the ids of the corpus/query rows: adds nDCG@10 and MRR@10.
    budgets : list of int, optional
        Real memory per vector to fill at ``n_vectors`` (default ``4·D / r`` for r in 2, 4, …, 64).
    codecs : list of str, optional
        Evaluate exactly these codec names (:meth:`Codec.from_name`) instead of the pruned grid.
    metric : {"ip", "cosine"}
    k : int, default=10
        Recall@k against the exact float32 top-k (from the shared k-NN engine).
    faiss : bool, optional
        Allow FAISS product quantization (default: when installed).
    n_vectors : int, optional
        Corpus size that memory and ratios are computed for (default: the rows of ``corpus``).

    Returns
    -------
    Frontier

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.compress import frontier
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.normal(size=(1500, 8)) @ rng.normal(size=(8, 64))).astype(np.float32)
    >>> f = frontier(X, budgets=[32, 8], faiss=False)
    >>> [r.bytes_per_vector for r in f.front][-1] <= 128
    True
    """
    t0 = time.perf_counter()
    data = _prepare(corpus, queries, qrels=qrels, doc_ids=doc_ids, query_ids=query_ids, metric=metric,
                    k=k, n_holdout=n_holdout, random_state=random_state)
    n = _check_n(n_vectors, data.n_total)
    D = data.gt.corpus.shape[1]
    if codecs is None:
        budgets = sorted({max(1, (4 * D) // r) for r in DEFAULT_RATIOS}) if budgets is None else list(budgets)
        codecs = candidate_names(D, data.spectrum, data.dimension, budgets,
                                 faiss=_has_faiss() if faiss is None else faiss, prefix_energy=data.prefix_energy,
                                 n_vectors=n)
    return _run(data, codecs, metric=metric, random_state=random_state, progress=progress, t0=t0, n_vectors=n)


def recommend(corpus: Any, queries: Any = None, *, budget_bytes: float | None = None,
              ratio: float | None = None, min_recall: float | None = None, qrels: dict | None = None,
              doc_ids: Any = None, query_ids: Any = None, metric: str = "ip", k: int = 10,
              n_holdout: int | None = None, faiss: bool | None = None, n_vectors: int | None = None,
              random_state: int | None = 0, progress: Callable[[str], None] | None = None) -> Recommendation:
    """Pick the codec for a memory budget, a compression ratio, or a recall floor.

    Give exactly one of ``budget_bytes``, ``ratio`` or ``min_recall``.

    - ``budget_bytes=B`` / ``ratio=r`` (``B = 4·D / r``): the codec of highest recall@k whose real
      memory (codes plus fixed state) for ``n_vectors`` vectors is at most ``B·n_vectors``; only
      the candidates that fill ``B`` are evaluated. No budget is refused: below
      :func:`smallest_budget` (one bit per intrinsic direction) the reason says so and gives the
      recall measured there; when nothing fits at all, the smallest codec is returned and the
      reason says by how much it exceeds the budget.
    - ``min_recall=R``: the codec of least real memory whose recall@k is at least ``R`` (the whole
      pruned grid is evaluated).

    Without ``queries``, held-out corpus vectors serve as queries (label-free). The returned codec
    is the one evaluated: fitted on the corpus (minus the held-out rows in label-free mode), so
    nothing is trained twice.

    Parameters
    ----------
    n_vectors : int, optional
        Corpus size to plan memory for (default: the rows of ``corpus``), e.g. ``10_000_000`` for
        a corpus that will grow; recall is measured on the corpus given.

    Returns
    -------
    Recommendation
        ``.codec`` (fitted), ``.report``, ``.frontier``, ``.reason``.

    Raises
    ------
    LowdimError
        For malformed arguments, or when no codec reaches ``min_recall``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowdim.compress import recommend
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.normal(size=(1500, 8)) @ rng.normal(size=(8, 64))).astype(np.float32)
    >>> rec = recommend(X, budget_bytes=16, faiss=False)
    >>> rec.report.memory_per_vector <= 16, rec.report.recall > 0.5
    (True, True)
    """
    given = [v is not None for v in (budget_bytes, ratio, min_recall)]
    if sum(given) != 1:
        raise LowdimError("give exactly one of budget_bytes=, ratio= or min_recall= "
                          "(CLI: --budget 96B, --budget 16x or --min-recall 0.9)")
    t0 = time.perf_counter()
    X = check_vectors(corpus, name="corpus", metric=metric, min_samples=20)
    D = X.shape[1]
    n = _check_n(n_vectors, len(X))
    if ratio is not None:
        ratio = check_fraction("ratio", ratio, low=1.0, high=4.0 * D * n, low_open=False)
        budget_bytes = 4 * D / ratio
    if min_recall is not None:
        min_recall = check_fraction("min_recall", min_recall, low=0.0, high=1.0)
    if budget_bytes is not None and (isinstance(budget_bytes, bool) or not np.isfinite(budget_bytes)
                                     or budget_bytes <= 0):
        raise LowdimError(f"budget_bytes={budget_bytes!r} must be a positive number of bytes per vector")
    data = _prepare(X, queries, qrels=qrels, doc_ids=doc_ids, query_ids=query_ids, metric=metric, k=k,
                    n_holdout=n_holdout, random_state=random_state)
    use_faiss = _has_faiss() if faiss is None else faiss
    floor = smallest_budget(data.dimension)
    if budget_bytes is not None:
        B = float(budget_bytes)
        Bi = max(1, int(B))
        names = candidate_names(D, data.spectrum, data.dimension, [Bi], faiss=use_faiss,
                                prefix_energy=data.prefix_energy, n_vectors=n)
        names = [m for m in names if _bytes_of(m, D) <= B] or [f"pca+alloc{Bi}@{n}"]
        fr = _run(data, names, metric=metric, random_state=random_state, progress=progress, t0=t0, n_vectors=n)
        choice = fr.best(B)
        if choice is None:  # nothing fits: the smallest, and say so
            choice = min(fr.reports, key=lambda r: r.memory_bytes)
            reason = (f"no codec fits {B:g} bytes/vector at n={n:,}: the smallest, {choice.name}, needs "
                      f"{choice.memory_per_vector:.1f} (its fixed state alone is {choice.fixed_bytes:,} bytes); "
                      f"measured recall@{k} {choice.recall:.3f}")
        else:
            reason = f"highest recall@{k} at ≤ {B:g} bytes/vector of real memory for n={n:,}"
        if B < floor:
            lo, hi = choice.recall_ci
            reason += (f"; below {floor} bytes/vector (one bit per intrinsic direction, ID {data.dimension:.1f}) "
                       f"recall falls fast: expect recall@{k} ≈ {choice.recall:.3f} [{lo:.3f}, {hi:.3f}] "
                       "(measured on held-out queries)")
    else:
        budgets = sorted({max(floor, (4 * D) // r) for r in (*DEFAULT_RATIOS, 128)})
        names = candidate_names(D, data.spectrum, data.dimension, budgets, faiss=use_faiss,
                                prefix_energy=data.prefix_energy, n_vectors=n)
        fr = _run(data, names, metric=metric, random_state=random_state, progress=progress, t0=t0, n_vectors=n)
        ok = [r for r in fr.front if r.recall >= min_recall]
        if not ok:
            top = max(fr.reports, key=lambda r: r.recall)
            raise LowdimError(f"no codec reaches recall@{k} ≥ {min_recall}; the best is {top.name} with "
                              f"{top.recall:.3f} at {top.memory_per_vector:.1f} bytes/vector: lower --min-recall "
                              "or keep float16")
        choice = min(ok, key=lambda r: r.memory_bytes)
        reason = f"least real memory at n={n:,} with recall@{k} ≥ {min_recall}"
    codec = fr.codecs[choice.name]  # already fitted on the corpus: no second (OPQ) training
    fr.seconds = time.perf_counter() - t0
    return Recommendation(codec=codec, report=choice, frontier=fr, reason=reason)
