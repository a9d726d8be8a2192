"""CUDA check and timing of the k-NN engine's torch backend (run on a GPU machine).

Usage::

    python benchmarks/knn_gpu.py            # needs torch with CUDA

1. Correctness: CUDA neighbours equal the numpy engine's on 20,000 × 768 float32.
2. Speed: TwoNN on N × 768 from a CUDA tensor against one bare float32 GEMM of the same size
   on the same GPU (the floor), for N in 100k and 300k.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,300000")
    a = ap.parse_args()
    import torch

    import lowdim
    import lowdim.api

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    print(f"# {torch.cuda.get_device_name()} torch {torch.__version__}")
    rng = np.random.default_rng(0)

    def plane(n: int) -> np.ndarray:
        basis = np.linalg.qr(rng.normal(size=(768, 10)))[0]
        return (rng.normal(size=(n, 10)) @ basis.T + 1e-3 * rng.normal(size=(n, 768))).astype(np.float32)

    X = plane(20_000)
    a_np = lowdim.kneighbors(X, 10)
    a_cu = lowdim.kneighbors(torch.as_tensor(X, device="cuda"), 10)
    same = (a_np.indices == a_cu.indices).mean()
    print(f"correctness 20k×768 k=10: backend {a_cu.backend}, identical indices {same:.6f}, "
          f"max |Δdist| {np.abs(a_np.distances - a_cu.distances).max():.2e}")
    r_np = lowdim.estimate(X, method="twonn", decimation=False)
    r_cu = lowdim.estimate(torch.as_tensor(X, device="cuda"), method="twonn", decimation=False)
    print(f"twonn numpy {r_np.dimension:.6f} cuda {r_cu.dimension:.6f}")
    print(f"{'N':>8} | {'GEMM floor s':>12} | {'lowdim twonn s':>14} | {'ratio':>6} | ID")
    for n in [int(float(s)) for s in a.sizes.split(",")]:
        Xc = torch.as_tensor(plane(n), device="cuda")
        Y = Xc.clone()
        rows = 16384
        out = torch.empty(rows, n, device="cuda")
        torch.cuda.synchronize()
        t = time.perf_counter()
        for s in range(0, n, rows):
            blk = Xc[s:s + rows]
            torch.mm(blk, Y.T, out=out[: len(blk)])
        torch.cuda.synchronize()
        t_gemm = time.perf_counter() - t
        del out, Y
        lowdim.estimate(Xc[:2000], method="twonn", decimation=False)  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        r = lowdim.estimate(Xc, method="twonn", decimation=False)
        t_ours = time.perf_counter() - t
        print(f"{n:>8} | {t_gemm:>12.3f} | {t_ours:>14.3f} | {t_ours / t_gemm:>6.2f} | {r.dimension:.2f} ({r.neighbors})")


if __name__ == "__main__":
    main()
