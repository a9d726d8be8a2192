"""Reproduction (a): ID of an MLP's last hidden layer over training, true vs shuffled labels.

Ansuini, Laio, Macke & Zoccolan, "Intrinsic dimension of data representations in deep neural
networks", NeurIPS 2019: the ID of the last hidden layer falls during training and is lower for
networks that generalise; networks trained on shuffled labels keep a higher last-layer ID. Here a
64-256-256-10 ReLU MLP on sklearn digits (1,400 training images), TwoNN on the training images'
last hidden layer (the same code as ``lowdim demo``'s representation section, longer).

Run:  python examples/repro_digits_mlp.py [--epochs 60] [--shuffled-epochs 150] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

from lowdim.demo.layers_section import train_digits_mlp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--shuffled-epochs", type=int, default=150)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    t0 = time.perf_counter()
    print("labels    seed  epoch: last-hidden ID (train acc / test acc) ...")
    for shuffled in (False, True):
        for seed in a.seeds:
            res = train_digits_mlp(shuffle_labels=shuffled, epochs=a.shuffled_epochs if shuffled else a.epochs,
                                   every=a.every, seed=seed)
            cells = [f"{r.step}: {r.dimension:.2f} ({tr:.2f}/{te:.2f})"
                     for r, tr, te in zip(res["history"], res["train_acc"], res["test_acc"])]
            print(f"{'shuffled' if shuffled else 'true':9} {seed:4}  " + "  ".join(cells), flush=True)
            prof = "  ".join(f"{r.name}:{r.dimension:.1f}" for r in res["reports"])
            print(f"{'':15}final profile (input→output modules): {prof}", flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
