"""Seconds-scale tour of lowdim.lowrank part 2: the char-LM bed with five parameterisations /
optimisers, and LR²VQ vs PQ on sklearn digits. Numbers at this size only show that everything
runs; the comparisons live in benchmarks/pretrain_bed.py and benchmarks/lr2vq.py.

    python examples/lowrank_part2_quick.py
"""

from __future__ import annotations

import copy

import torch

from lowdim.lowrank.charlm import CharLMBed, CharLMConfig
from lowdim.lowrank.dct_adamw import DCTAdamW
from lowdim.lowrank.lost import lost_factory, lowrank_factory
from lowdim.lowrank.lr2vq import quantize, storage, to_lrr
from lowdim.lowrank.sltrain import sltrain_factory
from lowdim.lowrank.sst import sst_factory, sst_on_step


def main() -> None:
    torch.set_num_threads(1)
    bed = CharLMBed(CharLMConfig(d_model=32, n_layers=2, n_heads=2, seq_len=32),
                    max_train_chars=200_000, max_eval_chars=4096)
    r = 8

    def dct(model, lr):
        return DCTAdamW(model.parameters(), lr=lr, rank=r, update_interval=20)

    runs = {
        "full AdamW": {},
        "W = BA": dict(linear_factory=lowrank_factory(rank=r)),
        "SLTrain": dict(linear_factory=sltrain_factory(rank=r)),
        "SST": dict(linear_factory=sst_factory(rank=r), on_step=sst_on_step(round_steps=20)),
        "DCT-AdamW": dict(optimizer_factory=dct),
        "LOST": dict(linear_factory=lost_factory(rank=r)),
    }
    print(f"{'method':12s} {'ppl':>7s} {'trainable':>9s} {'opt state':>10s}")
    for name, kw in runs.items():
        res = bed.train(steps=60, batch_size=8, seed=0, name=name, **kw)
        print(f"{name:12s} {res['perplexity']:7.2f} {res['trainable_params']:9,d} "
              f"{res['optimizer_state_bytes'] / 1024:8.1f}KB")

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X[:1400]), y[:1400]).backward()
        opt.step()

    def acc(m):
        return float((m(X[1400:]).argmax(1) == y[1400:]).float().mean())

    for label, d in (("PQ", None), ("LR²VQ d̃=ID", "id"), ("LR²VQ d̃=2", 2)):
        m = copy.deepcopy(net)
        if d is not None:
            to_lrr(m, m=8, d_tilde=d, min_subvectors=256)
        quantize(m, m=8, k=16)
        s = storage(m)
        print(f"{label:12s} digits accuracy {acc(m):.3f} at {s['bits_per_weight']:.2f} bits/weight "
              f"(float model {acc(net):.3f}; no fine-tuning)")


if __name__ == "__main__":
    main()
