"""Compression frontier on four corpora: lowdim's ``recommend`` vs FAISS, sentence-transformers, usearch.

Every system is charged its **real memory at the corpus size n**: codes plus every fixed array it
stores (PCA matrices, rotations, codebooks, ranges; FAISS's own ``serialize_index`` size), and may
use at most ``budget · n`` bytes. Peers run at their defaults (FAISS index-factory training,
including OPQ's 50 iterations); for each budget the largest configuration of every peer family
that fits is evaluated. lowdim picks label-free: ``recommend(corpus, budget_bytes=B)`` with
held-out corpus rows as queries, never the benchmark queries, and the same rule on every corpus.

Recall@10 is against the exact float32 inner-product top-10 of the benchmark queries, with a
95 % bootstrap interval; Δ is lowdim's recall minus the best peer's with a paired-bootstrap
interval over the same queries. nDCG@10 where qrels exist (SciFact). Throughput is queries/s of a
flat scan of all n codes, one thread each, best of 3, in this run (lowdim scores blocks of codes,
never decoding the corpus). Training time is shown, never used to weaken a peer.

Corpora (build the three cached ones first; see benchmarks/compress_corpora.py):
scifact-minilm (shared data), manpages-minilm, pydoc-mpnet-static, mnist-pixels (L2-normalised pixels).

Run:  LOWDIM_DATA=/path/to/shared/data python benchmarks/compress_frontier.py
      [--corpora scifact-minilm,manpages-minilm] [--budgets 384,192,96,48,24,12] [--no-cache]

Peer results are cached in ``$LOWDIM_BENCH_CACHE/results`` (default ~/.cache/lowdim-bench/results)
keyed by corpus and configuration, so a rerun only trains what is new; ``--no-cache`` retrains.
usearch rows need ``pip install usearch``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from compress_corpora import cache_dir

CORPORA = ["scifact-minilm", "manpages-minilm", "pydoc-mpnet-static", "mnist-pixels"]
BUDGETS = [384, 192, 96, 48, 24, 12]


def load(name: str, data: str | None):
    """(docs, queries, qrels-or-None, info) of one corpus."""
    if name == "scifact-minilm":
        from lowdim.datasets.beir import load_scifact_embeddings

        e = load_scifact_embeddings(data)
        return e.docs, e.queries, (e.qrels, e.doc_ids, e.query_ids), {"source": "SciFact test, shared data"}
    f = cache_dir() / f"{name}.npz"
    if not f.is_file():
        raise SystemExit(f"{f} not found: build it with  python benchmarks/compress_corpora.py {name}")
    with np.load(f) as z:
        X, Q, info = z["docs"].astype(np.float32), z["queries"].astype(np.float32), json.loads(str(z["info"]))
    if name == "mnist-pixels":  # cosine on pixels: unit rows, so inner-product search is meaningful
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    return X, Q, None, info


# ------------------------------------------------------------------------------ peers
def faiss_grid(D: int, n: int, budgets: list[int]) -> list[tuple[str, int, float]]:
    """(factory, code bytes, estimated fixed bytes) — for every family, the largest that fits each budget."""
    div = [m for m in range(1, D + 1) if D % m == 0]
    fam: list[list[tuple[str, int, float]]] = [
        [("SQfp16", 2 * D, 100)], [("SQ8", D, 8 * D + 200)], [("SQ6", 3 * D // 4, 8 * D + 200)],
        [("SQ4", D // 2, 8 * D + 200)],
        [("RaBitQ", -(-D // 8) + 8, 4 * D + 200)] + [(f"RaBitQ{b}", -(-D * b // 8) + 20, 4 * D + 200)
                                                     for b in range(2, 9)],
    ]
    for b in (8, 4):
        fam.append([(f"PCA{d},SQ{b}", d * b // 8, 4 * (D * D + d * D + 3 * D) + 8 * d + 400)
                    for d in range(8, D, 8)])
    for bits, ks in ((8, 256), (4, 16)):
        tail = "np" if bits == 8 else "x4np"
        fam.append([(f"PQ{m}{tail}", m * bits // 8, 4 * ks * D + 400) for m in div if m * bits % 8 == 0])
        fam.append([(f"OPQ{m},PQ{m}{tail}", m * bits // 8, 4 * ks * D + 4 * D * D + 600)
                    for m in div if m * bits % 8 == 0 and m <= D // 2])
    out = {}
    for configs in fam:
        for B in budgets:
            ok = [c for c in configs if c[1] + c[2] / n <= B]
            if ok:
                best = max(ok, key=lambda c: c[1])
                out[best[0]] = best
    return sorted(out.values(), key=lambda c: _train_cost(c[0], D))


def _train_cost(factory: str, D: int) -> float:
    """Rough training work, to run cheap peers first (an interrupted run keeps what finished)."""
    m = re.search(r",?PQ(\d+)(x4)?np$", factory)
    if not m:
        return 0.0
    work = int(m.group(1)) * (16 if m.group(2) else 256) * D / int(m.group(1))
    return work * (50 if factory.startswith("OPQ") else 1)


def _qps(search, Q, reps: int = 3) -> float:
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        search(Q)
        best = min(best, time.perf_counter() - t)
    return len(Q) / best


def run_faiss(factory: str, X: np.ndarray, Q: np.ndarray) -> dict:
    import faiss

    from lowdim.compress.faiss_codecs import quiet_stderr

    t = time.perf_counter()
    idx = faiss.index_factory(X.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    with quiet_stderr():
        idx.train(X)
    secs = time.perf_counter() - t
    fixed = len(faiss.serialize_index(idx))  # trained, empty: everything stored once
    idx.add(X)
    _, top = idx.search(Q, 10)
    qps = _qps(lambda q: idx.search(q, 10), Q)
    return {"code": int(idx.sa_code_size()), "fixed": fixed, "top": top, "train_s": secs, "qps": qps}


def run_simple(kind: str, X: np.ndarray, Q: np.ndarray) -> dict:
    """Binary sign codes (FAISS), sentence-transformers int8/ubinary, usearch f16/i8/b1 exact."""
    import faiss

    D, t = X.shape[1], time.perf_counter()
    if kind == "faiss:IndexBinaryFlat(sign)":
        b = faiss.IndexBinaryFlat(D)
        b.add(np.packbits(X > 0, axis=1))
        qb = np.packbits(Q > 0, axis=1)
        _, top = b.search(qb, 10)
        return {"code": D // 8, "fixed": 0, "top": top, "train_s": 0.0, "qps": _qps(lambda q: b.search(qb, 10), Q)}
    if kind.startswith("st:"):
        from sentence_transformers.util.quantization import quantize_embeddings

        if kind == "st:int8":
            ranges = np.vstack([X.min(0), X.max(0)])
            cx = quantize_embeddings(X, precision="int8", ranges=ranges).astype(np.float32)
            cq = quantize_embeddings(Q, precision="int8", ranges=ranges).astype(np.float32)
            top = np.argsort(-(cq @ cx.T), axis=1)[:, :10]
            return {"code": D, "fixed": ranges.astype(np.float32).nbytes, "top": top,
                    "train_s": time.perf_counter() - t, "qps": float("nan")}
        bx = quantize_embeddings(X, precision="ubinary")
        bq = quantize_embeddings(Q, precision="ubinary")
        idx = faiss.IndexBinaryFlat(D)
        idx.add(bx)
        _, top = idx.search(bq, 10)
        return {"code": bx.shape[1], "fixed": 0, "top": top, "train_s": time.perf_counter() - t,
                "qps": float("nan")}
    from usearch.index import Index

    dt = kind.split(":")[1]
    ix = Index(ndim=D, metric="ip" if dt != "b1" else "hamming", dtype=dt)
    if dt == "b1":
        ix.add(np.arange(len(X)), np.packbits(X > 0, axis=1))
        qq = np.packbits(Q > 0, axis=1)
    else:
        ix.add(np.arange(len(X)), X)
        qq = Q
    top = np.asarray(ix.search(qq, 10, exact=True).keys).astype(np.int64)
    qps = _qps(lambda q: ix.search(qq, 10, exact=True, threads=1), Q)
    code = {"f16": 2 * D, "i8": D, "b1": D // 8}[dt]  # vectors only; the HNSW graph is not counted
    return {"code": code, "fixed": 0, "top": top, "train_s": time.perf_counter() - t, "qps": qps}


def simple_kinds() -> list[str]:
    kinds = ["faiss:IndexBinaryFlat(sign)", "st:int8", "st:ubinary"]
    try:
        import usearch  # noqa: F401

        kinds += ["usearch:f16", "usearch:i8", "usearch:b1"]
    except ImportError:
        print("usearch not installed: its rows are skipped (pip install usearch)")
    return kinds


def cached(corpus: str, key: str, fn, use_cache: bool, cached_only: bool = False) -> dict | None:
    d = cache_dir() / "results" / corpus
    f = d / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".npz")
    if use_cache and f.is_file():
        with np.load(f) as z:
            return {k: (z[k] if k == "top" else z[k].item()) for k in z.files}
    if cached_only:
        return None
    r = fn()
    d.mkdir(parents=True, exist_ok=True)
    np.savez(f, **r)
    return r


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--cached-only", action="store_true",
                    help="peers: use only cached results (another run is still training the rest) and list the missing")
    ap.add_argument("--json", default=None, help="also write all rows to this JSON file")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import faiss

    faiss.omp_set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",")]
    allrows = []
    for corpus in args.corpora.split(","):
        allrows += run_corpus(corpus, *load(corpus, args.data), budgets, not args.no_cache, args.cached_only)
    print("\nSummary (winner by paired-bootstrap 95% CI of the recall difference)")
    for r in allrows:
        d = r.get("delta")
        print(f"  {r['corpus']:16s} {r['budget']:4d} B/vec  {r['winner']:32s} {'' if d is None else f'Δ = {d:+.4f}'}")
    if args.json:
        Path(args.json).write_text(json.dumps(allrows, indent=1))


def run_corpus(corpus, X, Q, rel, info, budgets, use_cache, cached_only=False):
    """lowdim's picks first (printed as they come), then the peers (cached), then the comparison."""
    from threadpoolctl import threadpool_limits

    from lowdim.compress.evaluate import ndcg_mrr_at_10, paired_bootstrap, recall_at_k
    from lowdim.neighbors import knn_search

    n, D = X.shape
    _, gt, _ = knn_search(X, Q, 10, metric="ip", backend="exact")

    def score(top):
        r = recall_at_k(np.asarray(top)[:, :10], gt)
        nd = None if rel is None else ndcg_mrr_at_10(np.asarray(top)[:, :10], *rel)[0]
        return r, nd

    def line(B, who, mem, code, rec, nd, secs, qps):
        lo, hi = paired_bootstrap(rec)
        print(f"{B:6d} | {who[:36]:36s} {mem / n:9.1f} {4 * D * n / mem:6.1f}x {4 * D / code:5.1f}x "
              f"{rec.mean():8.4f} [{lo:.4f}, {hi:.4f}] {'' if nd is None else f'{nd.mean():7.4f}':>7s} "
              f"{secs:7.1f} {qps:7.0f}", flush=True)

    header = (f"{'budget':>6s} | {'system':36s} {'mem B/vec':>9s} {'ratio@n':>7s} {'asym':>6s} "
              f"{'recall@10 [95% CI]':>24s} {'nDCG@10':>7s} {'train s':>7s} {'q/s':>7s}")
    f32_nd = score(gt)[1]
    print(f"\n=== {corpus}: {n} docs × {D}, {len(Q)} queries; {info.get('source', '')}"
          + ("" if f32_nd is None else f"; float32 nDCG@10 = {f32_nd.mean():.4f}"))
    print("lowdim recommend (label-free choice; recall on the benchmark queries)\n" + header, flush=True)
    ours = {B: cached_pick(corpus, X, Q, B, score, line, use_cache) for B in budgets}

    peers, missing = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        jobs = [("faiss:" + fac, fac, lambda fac=fac: run_faiss(fac, X, Q)) for fac, _, _ in faiss_grid(D, n, budgets)]
        jobs += [(kind, kind, lambda kind=kind: run_simple(kind, X, Q)) for kind in simple_kinds()]
        for name, key, fn in jobs:
            r = cached(corpus, key, fn, use_cache, cached_only)
            if r is None:
                missing.append(name)
            else:
                peers.append((name, r))
    if missing:
        print(f"NOT FINISHED (still training in another run, not counted): {', '.join(missing)}")
    for _, r in peers:
        r["mem"] = n * int(r["code"]) + int(r["fixed"])
        r["recall"], r["ndcg"] = score(r["top"])

    print(f"\n{corpus}: lowdim vs the three best peers that fit each budget (real memory at n={n})\n{header}")
    rows = []
    for B in budgets:
        o = ours[B]
        line(B, "lowdim " + o["name"], o["mem"], o["code"], o["recall"], o["ndcg"], o["seconds"], o["qps"])
        fit = [p for p in peers if p[1]["mem"] <= B * n]
        for name, r in sorted(fit, key=lambda p: -p[1]["recall"].mean())[:3]:
            line(B, "  " + name, r["mem"], int(r["code"]), r["recall"], r["ndcg"], float(r["train_s"]),
                 float(r["qps"]))
        lr = o["recall"]
        row = {"corpus": corpus, "budget": B, "n": n, "lowdim": o["name"], "lowdim_mem_per_vec": o["mem"] / n,
               "lowdim_recall": float(lr.mean()), "lowdim_qps": o["qps"], "lowdim_seconds": o["seconds"],
               "lowdim_ndcg": None if o["ndcg"] is None else float(o["ndcg"].mean()),
               "fp16_minus_fp32_axes": o.get("fp16_minus_fp32")}
        if fit:
            bn, br = max(fit, key=lambda p: p[1]["recall"].mean())
            lo, hi = paired_bootstrap(lr, br["recall"])
            d = lr.mean() - br["recall"].mean()
            win = "lowdim" if lo > 0 else (bn if hi < 0 else "tie (CI spans 0)")
            print(f"{'':6s} |   Δ recall vs best peer {bn}: {d:+.4f} [{lo:+.4f}, {hi:+.4f}] → {win}; "
                  f"q/s lowdim/peer {o['qps'] / float(br['qps']):.2f}")
            row.update(peer=bn, peer_mem_per_vec=br["mem"] / n, peer_recall=float(br["recall"].mean()),
                       peer_qps=float(br["qps"]), delta=float(d), delta_ci=[lo, hi], winner=win)
        else:
            print(f"{'':6s} |   no peer fits {B} B/vector at n={n}")
            row.update(peer=None, winner="lowdim (no peer fits)")
        rows.append(row)
    scalar_throughput(X, Q, n)
    return rows


def _source_hash() -> str:
    import hashlib

    import lowdim.compress as pkg

    h = hashlib.sha256()
    for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def cached_pick(corpus, X, Q, B, score, line, use_cache) -> dict:
    """:func:`lowdim_pick`, cached per corpus, budget and version of the lowdim.compress sources."""
    f = cache_dir() / "results" / corpus / f"lowdim-{_source_hash()}-B{B}.npz"
    if use_cache and f.is_file():
        with np.load(f) as z:
            o = {k: (z[k] if k == "top" else z[k].item()) for k in z.files}
        o["recall"], o["ndcg"] = score(o["top"])
        line(B, "lowdim " + o["name"] + " (cached)", o["mem"], o["code"], o["recall"], o["ndcg"], o["seconds"],
             o["qps"])
        if o.get("fp16_minus_fp32") == o.get("fp16_minus_fp32"):
            print(f"{'':6s} |   float16 − float32 axes (same choice, whole corpus): {o['fp16_minus_fp32']:+.4f}")
        else:
            o.pop("fp16_minus_fp32", None)
        return o
    o = lowdim_pick(X, Q, B, score, line)
    f.parent.mkdir(parents=True, exist_ok=True)
    np.savez(f, **{k: v for k, v in o.items() if k not in ("recall", "ndcg")},
             **({} if "fp16_minus_fp32" in o else {"fp16_minus_fp32": float("nan")}))
    return o


def lowdim_pick(X, Q, B, score, line) -> dict:
    """``recommend`` label-free at budget B, then scored on the benchmark queries; float16 vs float32 axes."""
    from threadpoolctl import threadpool_limits

    from lowdim.compress import Codec, recommend
    from lowdim.compress.evaluate import paired_bootstrap

    n = len(X)
    t = time.perf_counter()
    rec = recommend(X, budget_bytes=B)  # label-free: its own held-out rows, not Q
    secs = time.perf_counter() - t
    c = rec.codec
    codes = c.encode(X)
    with threadpool_limits(limits=1, user_api="blas"):
        _, top = c.search(Q, codes, 10)
        qps = _qps(lambda q: c.search(q, codes, 10), Q)
    lr, lnd = score(top)
    out = {"name": c.name, "mem": c.memory_bytes(n), "code": c.code_bytes, "recall": lr, "ndcg": lnd,
           "seconds": secs, "qps": qps, "top": top}
    line(B, "lowdim " + c.name, out["mem"], c.code_bytes, lr, lnd, secs, qps)
    if c.name.startswith("pca"):  # the same choice with float32 PCA axes: what float16 costs in recall
        red, q = c.name.split("+")
        base = "pca" if q.startswith("alloc") else re.sub(r"-f32$", "", red)
        # both fitted on the whole corpus, so only the dtype of the axes differs
        c16, c32 = Codec.from_name(base + "+" + q).fit(X), Codec.from_name(base + "-f32+" + q).fit(X)
        r16, r32 = (score(cc.search(Q, cc.encode(X), 10)[1])[0] for cc in (c16, c32))
        lo, hi = paired_bootstrap(r16, r32)
        out["fp16_minus_fp32"] = float(r16.mean() - r32.mean())
        print(f"{'':6s} |   axes float16 {c16.name} {c16.memory_bytes(n) / n:.1f} B/vec recall {r16.mean():.4f} vs "
              f"float32 {c32.name} {c32.memory_bytes(n) / n:.1f} B/vec recall {r32.mean():.4f}: "
              f"fp16 − fp32 = {out['fp16_minus_fp32']:+.4f} [{lo:+.4f}, {hi:+.4f}]", flush=True)
    return out


def scalar_throughput(X: np.ndarray, Q: np.ndarray, n: int) -> None:
    """The same scalar codes scanned by lowdim and by FAISS (one thread each), queries/s."""
    import faiss
    from threadpoolctl import threadpool_limits

    from lowdim.compress import Codec

    print(f"  flat-scan throughput, same codes, n={n}, {len(Q)} queries, 1 thread (q/s):")
    with threadpool_limits(limits=1, user_api="blas"):
        for ours, theirs in (("int8", "SQ8"), ("int4", "SQ4"), ("binary-hamming", None)):
            c = Codec.from_name(ours).fit(X)
            codes = c.encode(X)
            q_l = _qps(lambda q, c=c, codes=codes: c.search(q, codes, 10), Q)
            if theirs is None:
                b = faiss.IndexBinaryFlat(X.shape[1])
                b.add(np.packbits(X > 0, axis=1))
                qb = np.packbits(Q > 0, axis=1)
                q_f, theirs = _qps(lambda q, b=b, qb=qb: b.search(qb, 10), Q), "IndexBinaryFlat"
            else:
                idx = faiss.index_factory(X.shape[1], theirs, faiss.METRIC_INNER_PRODUCT)
                idx.train(X)
                idx.add(X)
                q_f = _qps(lambda q, idx=idx: idx.search(q, 10), Q)
            print(f"    lowdim {ours:15s} {q_l:9.0f}   faiss {theirs:16s} {q_f:9.0f}   ratio {q_l / q_f:5.2f}")


if __name__ == "__main__":
    main()
