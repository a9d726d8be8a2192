"""Quick tour of issue 15 B–D: aTLAS task-vector subspaces, Starbucks sub-models, MatryoshkaKV caches.

Runs in a few minutes on a CPU (all offline):

1. aTLAS — task vectors of 3 digits variants; train 12 coefficients (3 vectors × 4 tensors) on a
   held-out rotation and compare with a 12-dimensional random Fastfood subspace.
2. Starbucks — fine-tune MiniLM for a few steps on SciFact pairs and embed with its (2, 32) sub-model.
3. MatryoshkaKV — PCA-initialised K/V projections on MiniLM, hidden-state error at 25 % of the cache.

Run:  LOWDIM_DATA=/work/shared/data python examples/nested_quick.py
"""

from __future__ import annotations

import numpy as np
import torch

from lowdim.subspace import SubspaceModel
from lowdim.subspace.task_family import digits_variant
from lowdim.subspace.task_vectors import build_task_vectors


def atlas() -> None:
    sources = [digits_variant(rotation=r) for r in (0.0, 30.0, -30.0)]
    tau = build_task_vectors(sources)
    task = digits_variant(rotation=15.0)
    for proj, kw in (("task_vectors", {"basis": tau}), ("fastfood", {})):
        model = SubspaceModel(task.model_fn(0), 12, projection=proj, **kw)
        task.train_fn(model, lr=0.1, seed=0)
        print(f"aTLAS demo: {proj:12} d=12 → test accuracy {task.evaluate_fn(model):.3f} on {task.name}")


def starbucks() -> None:
    from lowdim.datasets.beir import load_beir
    from lowdim.nested.starbucks import fine_tune, layer_embeddings, load_minilm, sub_embedding

    col = load_beir("scifact")
    docs, queries = dict(zip(col.doc_ids, col.doc_texts)), dict(zip(col.query_ids, col.query_texts))
    pairs = [(queries[q], docs[next(iter(rel))]) for q, rel in list(col.qrels.items())[:32]]
    model = load_minilm()
    losses = fine_tune(model, pairs, epochs=1, batch_size=8, max_seq_length=64)
    E = layer_embeddings(model, [p[0] for p in pairs[:4]] + [p[1] for p in pairs[:4]], [2])[2]
    S = sub_embedding(E, 32)
    print(f"Starbucks demo: {len(losses)} steps, loss {losses[0]:.2f} → {losses[-1]:.2f}; (2, 32) sub-model "
          f"query→own-document hits {int((np.argmax(S[:4] @ S[4:].T, 1) == np.arange(4)).sum())}/4")


def matryoshka_kv() -> None:
    from lowdim.datasets.beir import load_beir
    from lowdim.nested.matryoshka_kv import KVProjector
    from lowdim.nested.starbucks import _features, load_minilm

    col = load_beir("scifact")
    st = load_minilm()
    st.max_seq_length = 64
    auto = st[0].auto_model.eval()
    f = _features(st, col.doc_texts[:16])
    calib = [{k: f[k] for k in ("input_ids", "attention_mask", "token_type_ids")}]
    kv = KVProjector(auto, calib)
    print(f"MatryoshkaKV demo: hidden-state relative MSE at 25 % of the K/V cache (PCA only) "
          f"{kv.output_error(calib, 8):.4f}; at 100 % {kv.output_error(calib, 32):.1e}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    atlas()
    starbucks()
    matryoshka_kv()
