"""Compression frontier on SciFact (all-MiniLM-L6-v2): lowdim vs FAISS, sentence-transformers, usearch.

All systems run in this one process on the same precomputed embeddings. Recall@10 is measured
against the exact float32 top-10 (shared k-NN engine); nDCG@10 uses the BEIR test qrels.
Rows that keep float32 vectors on disk for rescoring are labelled and excluded from the budget
comparison.

Run:  python benchmarks/compress_frontier.py [--data DIR] [--throughput-n 250000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

BUDGETS = [768, 384, 192, 96, 48, 24]


def recall10(idx, gt):
    return float(np.mean([len(set(a[:10]) & set(b)) / 10 for a, b in zip(idx, gt)]))


def faiss_peers(X, Q, gt, ndcg_of):
    import faiss

    from lowdim.compress.faiss_codecs import quiet_stderr

    rows = []
    D = X.shape[1]
    configs = ["SQfp16", "SQ8", "SQ4", "RaBitQ4", "RaBitQ", "PCA192,SQ8", "PCA96,SQ8", "PQ96np", "PQ48np",
               "OPQ48_384,PQ48np", "PQ24np", "OPQ24_384,PQ24np"]
    faiss.omp_set_num_threads(1)  # FAISS k-means is several times faster single-threaded on 2 busy cores
    for f in configs:
        t = time.perf_counter()
        idx = faiss.index_factory(D, f, faiss.METRIC_INNER_PRODUCT)
        if "OPQ" in f:  # same OPQ iterations as lowdim's wrapper (FAISS default 50 takes minutes here)
            faiss.downcast_VectorTransform(idx.chain.at(0)).niter = 20
        with quiet_stderr():
            idx.train(X)
        idx.add(X)
        _, top = idx.search(Q, 10)
        rows.append(("faiss", f, int(idx.sa_code_size()), recall10(top, gt), ndcg_of(top), time.perf_counter() - t, False))
    bits = np.packbits(X > 0, axis=1)
    b = faiss.IndexBinaryFlat(D)
    b.add(bits)
    _, top = b.search(np.packbits(Q > 0, axis=1), 10)
    rows.append(("faiss", "IndexBinaryFlat (sign, Hamming)", D // 8, recall10(top, gt), ndcg_of(top), 0.0, False))
    return rows


def st_peers(X, Q, gt, ndcg_of):
    from sentence_transformers.util.quantization import quantize_embeddings

    rows = []
    t = time.perf_counter()
    ranges = np.vstack([X.min(0), X.max(0)])
    cx = quantize_embeddings(X, precision="int8", ranges=ranges).astype(np.int32)
    cq = quantize_embeddings(Q, precision="int8", ranges=ranges).astype(np.int32)
    top = np.argsort(-(cq @ cx.T), axis=1)[:, :10]
    rows.append(("sentence-transformers", "int8 (corpus ranges, int8 query)", X.shape[1], recall10(top, gt),
                 ndcg_of(top), time.perf_counter() - t, False))
    t = time.perf_counter()
    bx = quantize_embeddings(X, precision="ubinary")
    bq = quantize_embeddings(Q, precision="ubinary")
    ham = np.unpackbits(bq[:, None, :] ^ bx[None, :, :], axis=2).sum(2)
    top = np.argsort(ham, axis=1, kind="stable")[:, :10]
    rows.append(("sentence-transformers", "ubinary (Hamming)", bx.shape[1], recall10(top, gt), ndcg_of(top),
                 time.perf_counter() - t, False))
    # their recommended binary retrieval: 4x candidates by Hamming, rescored with float32 vectors
    cand = np.argsort(ham, axis=1, kind="stable")[:, :40]
    top = np.array([c[np.argsort(-(X[c] @ q))][:10] for c, q in zip(cand, Q)])
    rows.append(("sentence-transformers", "ubinary + float32 rescoring (fp32 ON DISK)", bx.shape[1],
                 recall10(top, gt), ndcg_of(top), time.perf_counter() - t, True))
    return rows


def usearch_peers(X, Q, gt, ndcg_of):
    try:
        from usearch.index import Index
    except ImportError:
        return [("usearch", "n/a (not installed)", 0, float("nan"), None, 0.0, False)]
    rows = []
    for dt, nbytes in (("f16", 2 * X.shape[1]), ("i8", X.shape[1]), ("b1", X.shape[1] // 8)):
        t = time.perf_counter()
        ix = Index(ndim=X.shape[1], metric="ip" if dt != "b1" else "hamming", dtype=dt)
        keys = np.arange(len(X))
        if dt == "b1":
            ix.add(keys, np.packbits(X > 0, axis=1))
            m = ix.search(np.packbits(Q > 0, axis=1), 10, exact=True)
        else:
            ix.add(keys, X)
            m = ix.search(Q, 10, exact=True)
        top = np.asarray(m.keys).astype(np.int64)
        rows.append(("usearch", f"{dt} exact", nbytes, recall10(top, gt), ndcg_of(top), time.perf_counter() - t, False))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--throughput-n", type=int, default=250_000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from lowdim.compress import Codec, frontier, recommend
    from lowdim.compress.evaluate import ndcg_mrr_at_10
    from lowdim.datasets.beir import load_scifact_embeddings
    from lowdim.neighbors import knn_search

    e = load_scifact_embeddings(args.data)
    X, Q = e.docs, e.queries
    _, gt, _ = knn_search(X, Q, 10, metric="ip", backend="exact")
    ndcg_of = lambda top: float(ndcg_mrr_at_10(top, e.qrels, e.doc_ids, e.query_ids)[0].mean())  # noqa: E731
    print(f"SciFact: {X.shape[0]} docs × {X.shape[1]}, {len(Q)} test queries; float32 nDCG@10 = {ndcg_of(gt):.4f}")

    peers = faiss_peers(X, Q, gt, ndcg_of) + st_peers(X, Q, gt, ndcg_of) + usearch_peers(X, Q, gt, ndcg_of)

    t = time.perf_counter()
    fr = frontier(X, Q, qrels=e.qrels, doc_ids=e.doc_ids, query_ids=e.query_ids, budgets=BUDGETS)
    print(f"lowdim frontier: {len(fr.reports)} codecs in {time.perf_counter() - t:.1f} s; "
          f"intrinsic dimension {fr.dimension:.1f}")
    ours = [("lowdim", r.name, r.bytes_per_vector, r.recall, r.ndcg_at_10, r.fit_seconds + r.encode_seconds, False)
            for r in fr.reports]
    c = Codec.from_name("binary").fit(X)
    codes = c.encode(X)
    _, top = c.search(Q, codes, 10, rescore=X, rescore_factor=4)
    ours.append(("lowdim", "binary + float32 rescoring (fp32 ON DISK)", 48, recall10(top, gt), ndcg_of(top), 0.0, True))

    print("\nAll configurations (recall@10 vs float32 top-10)")
    print(f"{'system':22s} {'configuration':44s} {'B/vec':>6s} {'recall@10':>9s} {'nDCG@10':>8s} {'fit+enc s':>9s}")
    for row in sorted(peers + ours, key=lambda r: (-r[2], r[0], -np.nan_to_num(r[3]))):
        sys_, name, b, rec, nd, secs, resc = row
        print(f"{sys_:22s} {name[:44]:44s} {b:6d} {rec:9.4f} {'' if nd is None else f'{nd:8.4f}':>8s} {secs:9.2f}")

    print("\nBest at each budget (no float32 on disk; rescoring rows excluded)")
    print(f"{'budget':>6s} | {'best peer':44s} {'recall':>6s} | {'lowdim best':30s} {'recall':>6s} | {'Δ':>7s} | "
          f"{'recommend pick':30s} {'recall':>6s} {'secs':>5s}")
    strictly = 0
    for B in BUDGETS:
        p = [r for r in peers if r[2] <= B and not r[6] and r[3] == r[3]]
        bp = max(p, key=lambda r: r[3])
        bo = fr.best(B)
        t = time.perf_counter()
        rec = recommend(X, Q, budget_bytes=B)
        secs = time.perf_counter() - t
        d = bo.recall - bp[3]
        strictly += d > 1e-9
        print(f"{B:6d} | {bp[0] + ': ' + bp[1]:44.44s} {bp[3]:6.4f} | {bo.name:30.30s} {bo.recall:6.4f} | {d:+7.4f} | "
              f"{rec.report.name:30.30s} {rec.report.recall:6.4f} {secs:5.1f}")
    print(f"lowdim strictly better at {strictly} of {len(BUDGETS)} budgets")

    four = fr.best(384)
    print(f"\nnDCG@10 at 4x: {four.name} {four.ndcg_at_10:.4f} vs float32 {fr.float32_ndcg:.4f} "
          f"(Δ = {four.ndcg_at_10 - fr.float32_ndcg:+.4f}, paired-bootstrap 95% CI {four.ndcg_delta_ci})")

    n = args.throughput_n
    R = np.random.default_rng(0).normal(size=(n, X.shape[1])).astype(np.float32)
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    print(f"\nEncode throughput on {n:,} × {X.shape[1]} vectors (best of 3)")
    for name in ("fp16", "bf16", "fp8-e4m3", "int8", "int4", "binary", "pca+alloc96"):
        c = Codec.from_name(name).fit(X)
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            c.encode(R)
            best = min(best, time.perf_counter() - t)
        print(f"  {name:12s} {n / best / 1e6:6.2f} M vectors/s")


if __name__ == "__main__":
    main()
