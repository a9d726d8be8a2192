"""MatryoshkaKV on all-MiniLM-L6-v2: attention-output error and SciFact retrieval vs K/V cache size.

Per layer and head, orthogonal K and V projections (lowdim.nested.matryoshka_kv) are initialised
by PCA on calibration text (SciFact *train* queries + random abstracts), then distilled to the
original model with randomly sampled nested ranks. Each configuration keeps a fraction of the
K/V coordinates (uniform rank per head, or greedy per-head ranks under the budget from a
per-head error table: K/V reconstruction error, or with ``--sensitivity output`` the model's
output error with one head cut) and is scored on held-out text by (a) the relative error of every
layer's self-attention output and of the last hidden states, and (b) nDCG@10 of the resulting
embeddings on SciFact's 300 test queries (lowdim.compress.evaluate, paired bootstrap against the
uncompressed model). Sequences are cut to ``--max-seq-length`` tokens.

    LOWDIM_DATA=/work/shared/data python benchmarks/matryoshka_kv_scifact.py [--steps 150] [--max-docs 1000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--calib-texts", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-docs", type=int, default=1000, help="0 = the whole corpus (judged documents first)")
    ap.add_argument("--budgets", default="0.5,0.25,0.125")
    ap.add_argument("--sensitivity", choices=("reconstruction", "output"), default="reconstruction",
                    help="greedy's error table: per-head K/V reconstruction error (one pass) or the model's "
                         "output error with one head cut (a forward pass per head and rank)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from lowdim.compress.evaluate import ground_truth, paired_bootstrap
    from lowdim.datasets.beir import load_beir, load_qrels
    from lowdim.nested.matryoshka_kv import KVProjector, greedy_ranks
    from lowdim.nested.starbucks import _features, load_minilm, sub_embedding

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    col = load_beir("scifact", split="test", data=args.data)
    train_q = load_qrels(col.path / "qrels" / "train.tsv")
    qtext = dict(zip(col.query_ids, col.query_texts))
    judged = {d for rel in col.qrels.values() for d in rel}
    order = [i for i, d in enumerate(col.doc_ids) if d in judged] + \
        [i for i in rng.permutation(len(col.doc_ids)) if col.doc_ids[i] not in judged]
    keep = sorted(order[:args.max_docs] if args.max_docs else order)
    doc_ids, doc_texts = [col.doc_ids[i] for i in keep], [col.doc_texts[i] for i in keep]
    test_q = [q for q in col.query_ids if q in col.qrels]
    calib_texts = [qtext[q] for q in sorted(train_q)[: args.calib_texts // 2]] + \
        [col.doc_texts[i] for i in rng.choice(len(col.doc_texts), args.calib_texts - args.calib_texts // 2,
                                              replace=False)]
    held_out = [qtext[q] for q in test_q[:32]] + doc_texts[:32]

    st = load_minilm()
    st.max_seq_length = args.max_seq_length
    auto = st[0].auto_model.eval()

    def batches(texts):
        out = []
        for a in range(0, len(texts), args.batch_size):
            f = _features(st, texts[a:a + args.batch_size])
            out.append({k: f[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in f})
        return out
    calib, held = batches(calib_texts), batches(held_out)

    def embed(texts):
        E = []
        with torch.no_grad():
            for b in batches(texts):
                h = auto(**b).last_hidden_state
                m = b["attention_mask"].unsqueeze(-1).float()
                E.append(((h * m).sum(1) / m.sum(1)).numpy())
        return sub_embedding(np.concatenate(E), 384)

    attn_out: list = []
    hooks = [layer.attention.self.register_forward_hook(lambda m, i, o: attn_out.append(o[0].detach()))
             for layer in auto.encoder.layer]

    def attention_errors():
        attn_out.clear()
        with torch.no_grad():
            for b in held:
                auto(**b)
        n = len(auto.encoder.layer)
        return [torch.cat([attn_out[k * n + i].flatten() for k in range(len(held))]) for i in range(n)]

    ref_attn = attention_errors()
    t0 = time.perf_counter()
    gt_full = ground_truth(embed(doc_texts), embed([qtext[q] for q in test_q]), qrels=col.qrels,
                           doc_ids=doc_ids, query_ids=test_q)
    t_embed = time.perf_counter() - t0
    kv = KVProjector(auto, calib)
    hd = kv.head_dim
    choices = [hd // 8, hd // 4, hd // 2, hd]
    budgets = [float(b) for b in args.budgets.split(",")]

    rows = []

    def score(label, ranks):
        kv.set_ranks(ranks)
        cur = attention_errors()
        rel = [float((c - r).norm() / r.norm()) for c, r in zip(cur, ref_attn)]
        hid = kv.output_error(held, ranks)
        kv.set_ranks(ranks)
        gt = ground_truth(embed(doc_texts), embed([qtext[q] for q in test_q]), qrels=col.qrels, doc_ids=doc_ids,
                          query_ids=test_q)
        kv.set_ranks(hd)
        lo, hi = paired_bootstrap(gt.ndcg, gt_full.ndcg)
        rows.append((label, kv.cache_fraction(ranks), float(np.mean(rel)), rel[-1], hid, float(gt.ndcg.mean()),
                     lo, hi))
        print(f"  done: {label} ({time.perf_counter() - t1:.0f} s)", flush=True)

    t1 = time.perf_counter()
    for stage in ("PCA", "trained"):
        if stage == "trained":
            t2 = time.perf_counter()
            losses = kv.distill(calib, steps=args.steps, lr=args.lr, seed=args.seed)
            t_train = time.perf_counter() - t2
        E = kv.sensitivity(calib[:1], choices) if args.sensitivity == "output" else \
            kv.reconstruction_errors(calib, choices)
        for b in budgets:
            k = round(b * hd)
            if k in choices:
                score(f"{stage} uniform k={k}", k)
            score(f"{stage} greedy", greedy_ranks(E, choices, b, hd))
    for h in hooks:
        h.remove()
    print(f"MiniLM (6 layers × 12 heads × head dim {hd}), max {args.max_seq_length} tokens; PCA on "
          f"{len(calib_texts)} calibration texts; distillation {args.steps} steps (loss {losses[0]:.4f} → "
          f"{np.mean(losses[-10:]):.4f}) in {t_train:.0f} s; orthogonality error {kv.orthogonality_error():.1e}; "
          f"embedding {len(doc_texts)} docs + {len(test_q)} queries takes {t_embed:.0f} s; all rows "
          f"{time.perf_counter() - t1:.0f} s")
    print(f"\nuncompressed: nDCG@10 {gt_full.ndcg.mean():.4f} ({len(gt_full.ndcg)} test queries, {len(doc_ids)} docs). "
          "Attention error: ‖A' − A‖/‖A‖ of each layer's self-attention output on 64 held-out texts.")
    print(f"{'configuration':24} {'cache kept':>10} {'attn err (mean)':>15} {'attn err L6':>11} "
          f"{'hidden rel. MSE':>15} {'nDCG@10':>8} {'Δ vs full, 95 % interval':>24}")
    for label, frac, am, al, hid, nd, lo, hi in rows:
        print(f"{label:24} {frac:10.3f} {am:15.4f} {al:11.4f} {hid:15.5f} {nd:8.4f} "
              f"{nd - gt_full.ndcg.mean():+8.4f} [{lo:+.4f}, {hi:+.4f}]")


if __name__ == "__main__":
    main()
