"""Generate the calibration table of the calibrated TwoNN estimator (``method="ctwonn"``).

For every sample size N and dimension d on a grid, draw uniform samples of the d-ball and of the
d-sphere (seeded), compute the plain TwoNN statistic exactly as the estimator does
(:func:`lowdim.estimators.ctwonn.twonn_statistic`) and store its mean over repetitions. The
estimator inverts these curves at fit time. Only these generic shapes are used: the benchmark
manifolds of ``benchmarks/id_accuracy.py`` play no part in the calibration.

Run (about 5–10 minutes on 2 cores)::

    python benchmarks/make_calibration.py            # writes src/lowdim/estimators/data/ctwonn_calibration.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lowdim.estimators.ctwonn import CALIBRATION_FILE, twonn_statistic
from lowdim.io import atomic_path
from lowdim.neighbors import kneighbors

N_GRID = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
D_GRID = (*range(1, 21), *range(22, 41, 2), *range(45, 101, 5), *range(110, 161, 10))
SHAPES = ("ball", "sphere")
POINTS_PER_CELL = 40_000  # repetitions per (N, d): max(2, POINTS_PER_CELL // N)


def sample(shape: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform sample of the unit d-ball (in R^d) or of the unit d-sphere (in R^{d+1})."""
    if shape == "sphere":
        V = rng.standard_normal((n, d + 1))
        return V / np.linalg.norm(V, axis=1, keepdims=True)
    V = rng.standard_normal((n, d))
    return V * (rng.random((n, 1)) ** (1.0 / d) / np.linalg.norm(V, axis=1, keepdims=True))


def cell(shape: str, n: int, d: int, seed: int) -> tuple[float, float]:
    """Mean and standard deviation of the TwoNN statistic over the repetitions of one cell."""
    reps = max(2, POINTS_PER_CELL // n)
    vals = []
    for r in range(reps):
        rng = np.random.default_rng([seed, SHAPES.index(shape), n, d, r])
        nb = kneighbors(sample(shape, n, d, rng), 2, duplicates="keep")
        vals.append(twonn_statistic(nb.distances))
    return float(np.mean(vals)), float(np.std(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("--seed", type=int, default=20260101)
    args = ap.parse_args()
    t0 = time.perf_counter()
    mean = np.zeros((len(SHAPES), len(N_GRID), len(D_GRID)))
    std = np.zeros_like(mean)
    for i, shape in enumerate(SHAPES):
        for j, n in enumerate(N_GRID):
            for k, d in enumerate(D_GRID):
                mean[i, j, k], std[i, j, k] = cell(shape, n, d, args.seed)
            print(f"{shape:6s} N={n:6d} done ({time.perf_counter() - t0:.0f} s); "
                  f"d=10 -> {mean[i, j, D_GRID.index(10)]:.2f}, d=70 -> {mean[i, j, D_GRID.index(70)]:.2f}",
                  flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, shapes=np.array(SHAPES), n_grid=np.array(N_GRID), d_grid=np.array(D_GRID),
                            mean=mean, std=std, seed=np.array(args.seed))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
