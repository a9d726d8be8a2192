"""Reproduction (c): grokking on modular addition, and the local ID of the representation.

"Less is More: Local Intrinsic Dimensions of Contextual Language Models" (2025) reports that the
mean local (TwoNN) ID of the representation drops *before* the test accuracy jumps when a model
groks. Here: a one-layer transformer learns (a + b) mod p from a fraction of all pairs (Power et
al. 2022; Nanda et al. 2023 set-up: full-batch AdamW), on the CPU. With Nanda et al.'s lr 1e-3 and
weight decay 1, p = 53 and half the pairs, test accuracy was still 0.001 at step 4,600 (we
stopped it); the defaults here (lr 3e-3, weight decay 3) grok in about 1,200 steps. Every
``--every`` steps a :class:`lowdim.representations.RepresentationCallback` captures the
answer-position representation of all p(p+1)/2 unordered inputs and records the global ID, the mean local ID
(k = 20) and DSE; train/test accuracy are logged alongside.

Run:  python examples/repro_grokking.py [--p 53] [--max-steps 6000] [--out grokking.json] [--plot grokking.png]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lowdim.representations import RepresentationCallback


class OneLayer(torch.nn.Module):
    def __init__(self, p: int, d: int = 128, heads: int = 4) -> None:
        super().__init__()
        self.tok = torch.nn.Embedding(p + 1, d)  # p numbers and '='
        self.pos = torch.nn.Parameter(torch.randn(3, d) * 0.02)
        self.block = torch.nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True)
        self.readout = torch.nn.Identity()  # hooked: the residual stream at the answer position
        self.unembed = torch.nn.Linear(d, p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.tok(x) + self.pos)
        return self.unembed(self.readout(h[:, -1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=int, default=53)
    ap.add_argument("--train-fraction", type=float, default=0.5)
    ap.add_argument("--max-steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="grokking.json")
    ap.add_argument("--plot", default="grokking.png")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    p = a.p
    pairs = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    X = torch.cat([pairs, torch.full((p * p, 1), p)], 1)
    Y = (pairs[:, 0] + pairs[:, 1]) % p
    # split by unordered pair, so (a, b) and (b, a) sit on the same side (commutativity cannot leak)
    lo, hi = pairs.min(1).values, pairs.max(1).values
    key = lo * p + hi
    uniq = torch.unique(key)
    chosen = uniq[torch.randperm(len(uniq))[: int(a.train_fraction * len(uniq))]]
    in_train = torch.isin(key, chosen)
    tr, te = torch.nonzero(in_train).ravel(), torch.nonzero(~in_train).ravel()
    model = OneLayer(p)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay, betas=(0.9, 0.98))
    # probe: every unordered pair once (a ≤ b), train and test; (b, a) has a near-copy representation
    canon = torch.nonzero(pairs[:, 0] <= pairs[:, 1]).ravel()
    probe = [(X[canon], Y[canon])]
    cb = RepresentationCallback(probe, layers="readout", every=a.every, max_samples=len(canon), dse=True,
                                random_state=a.seed)
    log = []
    t0 = time.perf_counter()
    for step in range(a.max_steps + 1):
        if step % a.every == 0:
            with torch.no_grad():
                out = model(X)
                acc_tr = float((out[tr].argmax(1) == Y[tr]).float().mean())
                acc_te = float((out[te].argmax(1) == Y[te]).float().mean())
            (r,) = cb(model, step)
            log.append({"step": step, "train_acc": acc_tr, "test_acc": acc_te, "id": r.dimension,
                        "local_mean": r.local_mean, "dse": r.dse})
            print(f"step {step:5d}  train {acc_tr:.3f}  test {acc_te:.3f}  ID {r.dimension:6.2f}  "
                  f"local {r.local_mean:6.2f}  DSE {r.dse:5.2f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
            with open(a.out, "w") as fh:  # after every evaluation: a stopped run keeps its log
                json.dump({"log": log, "args": vars(a)}, fh, indent=2)
            if len(log) > 5 and all(e["test_acc"] >= 0.95 for e in log[-3:]):
                break
        model.train()
        loss = torch.nn.functional.cross_entropy(model(X[tr]), Y[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
    summary = analyse(log)
    print(json.dumps(summary, indent=2))
    with open(a.out, "w") as fh:
        json.dump({"log": log, "summary": summary, "args": vars(a)}, fh, indent=2)
    if a.plot:
        from lowdim.report.layer_plots import plot_over_training

        plot_over_training(cb.history, a.plot, title=f"grokking (a + b) mod {p}",
                           extra={"test acc": [(e["step"], e["test_acc"]) for e in log],
                                  "train acc": [(e["step"], e["train_acc"]) for e in log]})


def analyse(log: list[dict]) -> dict:
    """When did the train set get memorised, the local ID start to fall, the test accuracy jump?"""
    steps = np.array([e["step"] for e in log])
    loc = np.array([e["local_mean"] for e in log])
    te = np.array([e["test_acc"] for e in log])
    trn = np.array([e["train_acc"] for e in log])
    mem = int(np.argmax(trn >= 0.99)) if (trn >= 0.99).any() else None
    out: dict = {"memorised_step": int(steps[mem]) if mem is not None else None}
    for thr in (0.5, 0.9):
        out[f"test_acc_{int(thr * 100)}_step"] = int(steps[np.argmax(te >= thr)]) if (te >= thr).any() else None
    if mem is not None:
        peak = mem + int(np.argmax(loc[mem:]))
        drop = loc[peak] - loc[-1]
        out["local_id_peak_after_memorisation"] = {"step": int(steps[peak]), "value": float(loc[peak])}
        out["local_id_final"] = float(loc[-1])
        if drop > 0:
            first = peak + int(np.argmax(loc[peak:] <= loc[peak] - 0.1 * drop))
            half = peak + int(np.argmax(loc[peak:] <= loc[peak] - 0.5 * drop))
            out["local_id_10pct_drop_step"] = int(steps[first])
            out["local_id_50pct_drop_step"] = int(steps[half])
    t50 = out.get("test_acc_50_step")
    d10 = out.get("local_id_10pct_drop_step")
    out["local_id_drops_before_test_jump"] = (d10 < t50) if (t50 is not None and d10 is not None) else None
    return out


if __name__ == "__main__":
    main()
