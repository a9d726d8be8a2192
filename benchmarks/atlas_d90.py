"""aTLAS (Zhang et al., NeurIPS 2024) vs Li et al.'s random Fastfood subspace: d90 on held-out tasks.

Task vectors τ_t = θ_t − θ₀ come from full fine-tuning of one θ₀ (MLP 64-64-10, init seed 0) on
the source tasks of the digits family (lowdim.subspace.task_family.DIGITS_SOURCES: rotations,
noise, label subsets). On each held-out task, find_d90 searches the smallest number of trained
coordinates that reaches 90 % of full training, once in the task-vector subspace
(projection="task_vectors", one coefficient per (task vector, tensor), ≤ T·4 coordinates) and
once in the random Fastfood subspace. The held-out tasks are a new rotation, a new rotation with
noise, and a label permutation (outside the family's span).

    python benchmarks/atlas_d90.py [--seeds 3] [--held-out rot15,rot45_noise,label_shift]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--held-out", default="rot15,rot45_noise,label_shift")
    ap.add_argument("--fastfood-d-max", type=int, default=2000)
    args = ap.parse_args()

    import torch

    from lowdim.subspace import find_d90
    from lowdim.subspace.task_family import DIGITS_HELD_OUT, DIGITS_SOURCES, digits_variant
    from lowdim.subspace.task_vectors import build_task_vectors

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sources = [digits_variant(**v) for v in DIGITS_SOURCES]
    tau = build_task_vectors(sources, init_seed=0)
    print(f"{len(sources)} task vectors from {[t.name for t in sources]} in {time.perf_counter() - t0:.1f} s; "
          f"norms {[round(float(n), 2) for n in tau.norm(dim=1)]}")
    rows = []
    for name in args.held_out.split(","):
        task = digits_variant(**DIGITS_HELD_OUT[name])
        t1 = time.perf_counter()
        tv = find_d90(task, projection="task_vectors", basis=tau, seeds=args.seeds, d_min=1)
        t2 = time.perf_counter()
        ff = find_d90(task, projection="fastfood", seeds=args.seeds, baseline=tv.baseline,
                      d_max=args.fastfood_d_max)
        t3 = time.perf_counter()
        best_tv = max(r["mean"] for r in tv.per_d)
        rows.append((task.name, tv.baseline, tv.d90, tv.ci, best_tv, tv.n_params and tau.shape[0] * 4,
                     ff.d90, ff.ci, t2 - t1, t3 - t2))
    print(f"\nd90 (90 % of full training, mean over {args.seeds} seeds; Fastfood uses the same baseline)")
    print(f"{'held-out task':32} {'full acc':>8} {'aTLAS d90':>9} {'interval':>12} {'best aTLAS':>10} "
          f"{'max d':>5} {'Fastfood d90':>12} {'interval':>13} {'s aTLAS':>8} {'s FF':>6}")
    for name, base, d_tv, ci_tv, best, cap, d_ff, ci_ff, s_tv, s_ff in rows:
        print(f"{name:32} {base:8.3f} {d_tv!s:>9} {ci_tv!s:>12} {best:10.3f} {cap:5d} {d_ff!s:>12} {ci_ff!s:>13} "
              f"{s_tv:8.1f} {s_ff:6.1f}")


if __name__ == "__main__":
    main()
