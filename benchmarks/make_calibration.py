"""Generate the calibration table of the calibrated TwoNN estimator (``method="ctwonn"``).

For every sample size N and dimension d on a grid, draw uniform samples of the d-ball and of the
d-sphere, compute the plain TwoNN statistic exactly as the estimator does
(:func:`lowdim.estimators.ctwonn.twonn_statistic`) and store its mean, its standard deviation and
the number of repetitions. Only these generic shapes are used: neither the 24 benchmark manifolds
nor the out-of-family suite play any part.

Reproducible from the seed: repetition r of cell (shape, N, d) draws from
``np.random.default_rng([seed, shape, N, d, r])`` and the number of repetitions is decided by a
deterministic rule — at least ``--min-reps``, then batches of ``--min-reps`` until the cell's
standard error (std / sqrt(reps)) is below ``--target`` (default 0.4 %) of its mean, or
``--max-reps``. The table records ``reps`` per cell and a ``version`` (seed + a hash of the means);
the estimator folds each cell's error into its interval.

Cost. TwoNN's relative spread on N points is about 1.05 / sqrt(N), so a cell needs about
(1.05 / target)² ≈ 70,000 points at 0.4 %, whatever N: the work is ≈ 70,000 · N · D
multiply-adds per cell, ≈ 1.5e13 for the whole grid (2 shapes × 10 N × 48 d), dominated by
N ≥ 5,000. Measured on the shared 2-core machine (1 process, heavily loaded): the N = 200 row
(96 cells, 372–572 repetitions each, max cell error 0.40 %) took 37 CPU seconds (440 s wall);
the script prints its CPU throughput and an estimate for the rows it did not compute. Rows can be
computed separately and merged::

    python benchmarks/make_calibration.py --n-grid 20,50,100,200,500,1000,2000 --merge   # what fits
    python benchmarks/make_calibration.py --jobs 16                                       # everything
"""

from __future__ import annotations

import argparse
import hashlib
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lowdim.estimators.ctwonn import CALIBRATION_FILE, twonn_statistic
from lowdim.io import atomic_path
from lowdim.neighbors import kneighbors

N_GRID = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
D_GRID = (*range(1, 21), *range(22, 41, 2), *range(45, 101, 5), *range(110, 161, 10))
SHAPES = ("ball", "sphere")


def sample(shape: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform sample of the unit d-ball (in R^d) or of the unit d-sphere (in R^{d+1})."""
    if shape == "sphere":
        V = rng.standard_normal((n, d + 1))
        return V / np.linalg.norm(V, axis=1, keepdims=True)
    V = rng.standard_normal((n, d))
    return V * (rng.random((n, 1)) ** (1.0 / d) / np.linalg.norm(V, axis=1, keepdims=True))


def two_nn(X: np.ndarray) -> np.ndarray:
    """First and second neighbour distances: float64 brute force for n <= 1000 (exact, and without
    the per-call overhead that dominates tiny searches), lowdim's exact k-NN engine above."""
    if X.shape[0] > 1000:
        return kneighbors(X, 2, duplicates="keep").distances
    X = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", X, X)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0)
    np.fill_diagonal(D2, np.inf)
    return np.sqrt(np.sort(np.partition(D2, 1, axis=1)[:, :2], axis=1))


def cell(args: tuple[str, int, int, int, int, int, float]) -> tuple[float, float, int, float]:
    """Mean, standard deviation and repetitions of the TwoNN statistic in one cell (deterministic),
    and the CPU seconds it took."""
    shape, n, d, seed, min_reps, max_reps, target = args
    c0 = time.process_time()
    vals: list[float] = []
    while len(vals) < max_reps:
        for r in range(len(vals), min(len(vals) + min_reps, max_reps)):
            rng = np.random.default_rng([seed, SHAPES.index(shape), n, d, r])
            vals.append(twonn_statistic(two_nn(sample(shape, n, d, rng))))
        m, s = float(np.mean(vals)), float(np.std(vals, ddof=1))
        if s / np.sqrt(len(vals)) <= target * m:
            break
    return float(np.mean(vals)), float(np.std(vals, ddof=1)), len(vals), time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--target", type=float, default=0.004, help="cell standard error / mean (default 0.4 %%)")
    ap.add_argument("--min-reps", type=int, default=4)
    ap.add_argument("--max-reps", type=int, default=20000)
    ap.add_argument("--n-grid", default=None, help="comma-separated subset of N to compute (default all)")
    ap.add_argument("--merge", action="store_true", help="keep the other rows of the existing table at --out")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one search each)")
    args = ap.parse_args()
    n_todo = [int(v) for v in args.n_grid.split(",")] if args.n_grid else list(N_GRID)
    if not set(n_todo) <= set(N_GRID):
        raise SystemExit(f"--n-grid must be a subset of {N_GRID}")
    shape3 = (len(SHAPES), len(N_GRID), len(D_GRID))
    mean, std, reps = np.zeros(shape3), np.zeros(shape3), np.zeros(shape3, dtype=np.int64)
    if args.merge and args.out.exists():
        from lowdim.estimators.ctwonn import load_calibration

        old = load_calibration(str(args.out))
        mean[:], std[:], reps[:] = old.mean, old.std, old.reps
    t0, work, cpu = time.perf_counter(), 0.0, 0.0
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for n in n_todo:
            j = N_GRID.index(n)
            jobs = [(s, n, d, args.seed, args.min_reps, args.max_reps, args.target) for s in SHAPES for d in D_GRID]
            for (s, _, d, *_), (m, sd, r, c) in zip(jobs, pool.map(cell, jobs), strict=True):
                i, k = SHAPES.index(s), D_GRID.index(d)
                mean[i, j, k], std[i, j, k], reps[i, j, k] = m, sd, r
                work += r * n * n * (d + (s == "sphere"))
                cpu += c
            err = (std[:, j] / np.sqrt(reps[:, j]) / mean[:, j]).max()
            print(f"N={n:6d} done ({time.perf_counter() - t0:.0f} s wall, {cpu:.0f} CPU s, {work / cpu:.3g} "
                  f"multiply-adds per CPU s); max cell error {err:.2%}; reps {reps[:, j].min()}–{reps[:, j].max()}",
                  flush=True)
    rest = sum(70_000 * n * sum(d + e for d in D_GRID for e in (0, 1)) for n in N_GRID if n not in n_todo)
    if rest:  # the small-N rows are overhead-bound, so this extrapolation is a lower bound for them
        print(f"rows not computed this run: about {rest / max(work / max(cpu, 1e-9), 1):.3g} CPU s at this "
              "run's throughput")
    cell_err = std / np.sqrt(np.maximum(reps, 1)) / np.where(mean > 0, mean, 1)
    digest = hashlib.sha256(np.ascontiguousarray(mean).tobytes()).hexdigest()[:12]
    version = f"seed{args.seed}-target{args.target:g}-{digest}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, shapes=np.array(SHAPES), n_grid=np.array(N_GRID), d_grid=np.array(D_GRID),
                            mean=mean, std=std, reps=reps, seed=np.array(args.seed), version=np.array(version))
    print(f"wrote {args.out} ({version}) in {time.perf_counter() - t0:.0f} s; max cell error over the table "
          f"{cell_err.max():.2%}, cells above 0.5 %: {(cell_err > 0.005).mean():.0%}")


if __name__ == "__main__":
    main()
