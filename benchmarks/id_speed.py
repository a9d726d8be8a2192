"""Speed of lowdim's ID pipeline against its floor (one bare float32 GEMM) and its peers.

Usage::

    python benchmarks/id_speed.py                                  # full run (several minutes)
    python benchmarks/id_speed.py --n 20000 --local-n 200000       # quick
    python benchmarks/id_speed.py --peer-python /work/benchvenv/bin/python   # peers in their venv

Prints three tables, all ratios measured in the same run:
1. TwoNN on N×768 (ID-10 Gaussian plane + 1e-3 noise, float32), exact k-NN, against one bare
   float32 GEMM of the same size (N×768 by 768×N) — the floor — with lowdim's peak memory beyond
   the data (tracemalloc). Peers (DADApy ``compute_id_2NN``, skdim ``TwoNN``) are timed at
   ``--peer-n`` points; their time at N is extrapolated as O(N²) (both are all-pairs).
2. The k-NN engine alone against scikit-learn brute force and FAISS IndexFlatL2 (exact).
3. Local ID of ``--local-n`` points × 128 dims (approximate k-NN allowed; the backend is printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc

import numpy as np


def plane(n: int, D: int, d: int = 10, noise: float = 1e-3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, d)))[0]
    X = rng.normal(size=(n, d)) @ basis.T
    X += noise * rng.normal(size=(n, D))
    return X.astype(np.float32)


def bare_gemm_seconds(X: np.ndarray, rows: int = 2048) -> float:
    """Time of X·Xᵀ as one float32 GEMM's worth of flops (row blocks, output discarded, all BLAS threads)."""
    Y = X.copy()  # a distinct operand, so BLAS cannot use the cheaper symmetric product
    out = np.empty((rows, len(X)), np.float32)
    t = time.perf_counter()
    for s in range(0, len(X), rows):
        blk = X[s:s + rows]
        np.matmul(blk, Y.T, out=out[: len(blk)])
    return time.perf_counter() - t


def peer_worker(name: str, n: int) -> None:
    X = plane(n, 768)
    t = time.perf_counter()
    if name == "dadapy":
        from dadapy import Data

        d = Data(X.astype(np.float64)).compute_id_2NN()[0]
    else:
        import skdim

        d = skdim.id.TwoNN().fit(X).dimension_
    print(json.dumps({"seconds": time.perf_counter() - t, "dimension": float(d)}))


def time_peer(name: str, n: int, python: str | None) -> dict | None:
    try:
        if python is None:
            __import__("dadapy" if name == "dadapy" else "skdim")
            python = sys.executable
        out = subprocess.run([python, __file__, "--peer-worker", name, "--n", str(n)], capture_output=True,
                             text=True, timeout=3600)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as exc:  # peer not installed or failed
        return {"error": f"{type(exc).__name__}"}


def row(*cells: object) -> str:
    return " | ".join(f"{c:>14}" if not isinstance(c, str) else f"{c:<34}" if i == 0 else f"{c:>14}"
                      for i, c in enumerate(cells))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--peer-n", type=int, default=10_000)
    ap.add_argument("--local-n", type=int, default=1_000_000)
    ap.add_argument("--knn-n", type=int, default=20_000)
    ap.add_argument("--peer-python", default=None)
    ap.add_argument("--peer-worker", default=None)
    ap.add_argument("--skip", default="", help="comma list of: peers,knn,local")
    a = ap.parse_args()
    if a.peer_worker:
        peer_worker(a.peer_worker, a.n)
        return
    import lowdim
    import lowdim.api

    skip = set(a.skip.split(",")) if a.skip else set()
    print(f"# lowdim {lowdim.__version__}, numpy {np.__version__}")
    # ---------------------------------------------------------------- 1. TwoNN vs floor and peers
    X = plane(a.n, 768)
    t_gemm = bare_gemm_seconds(X)
    tracemalloc.start()
    t = time.perf_counter()
    r = lowdim.estimate(X, method="twonn", decimation=False)
    t_ours = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    Xs = plane(a.peer_n, 768)
    t = time.perf_counter()
    r_small = lowdim.estimate(Xs, method="twonn", decimation=False)
    t_ours_small = time.perf_counter() - t
    print(f"\n## TwoNN, N={a.n:,} x 768 float32 (ID-10 plane + 1e-3 noise), exact k-NN ({r.neighbors})")
    print(row("what", "seconds", "ID", "ratio"))
    print(row("bare float32 GEMM N×768·768×N", f"{t_gemm:.2f}", "-", "1.00 (floor)"))
    print(row("lowdim twonn", f"{t_ours:.2f}", f"{r.dimension:.2f}", f"{t_ours / t_gemm:.2f}x floor"))
    print(row(f"lowdim twonn at N={a.peer_n:,}", f"{t_ours_small:.2f}", f"{r_small.dimension:.2f}", "-"))
    print(f"peak memory beyond the data: {peak / 2**30:.2f} GiB (data {X.nbytes / 2**30:.2f} GiB)")
    if "peers" not in skip:
        scale = (a.n / a.peer_n) ** 2
        for name in ("dadapy", "skdim"):
            res = time_peer(name, a.peer_n, a.peer_python)
            if not res or "error" in res:
                print(row(f"{name} (N={a.peer_n:,})", "n/a", "n/a", str(res)))
                continue
            s = res["seconds"]
            print(row(f"{name} twonn at N={a.peer_n:,}", f"{s:.2f}", f"{res['dimension']:.2f}",
                      f"{s / t_ours_small:.1f}x slower"))
            print(row(f"{name} extrapolated to N={a.n:,}", f"{s * scale:.0f}", "-",
                      f"{s * scale / t_ours:.1f}x slower"))
    # ---------------------------------------------------------------- 2. the k-NN engine
    if "knn" not in skip:
        k = 10
        Xk = plane(a.knn_n, 768, seed=1)
        print(f"\n## k-NN engine, N={a.knn_n:,} x 768 float32, k={k}, exact")
        print(row("what", "seconds", "recall@k", "ratio"))
        t = time.perf_counter()
        nb = lowdim.kneighbors(Xk, k, duplicates="keep")
        t_nb = time.perf_counter() - t
        print(row("lowdim.kneighbors", f"{t_nb:.2f}", "1.000", "1.00"))
        from sklearn.neighbors import NearestNeighbors

        t = time.perf_counter()
        _, ind = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(Xk).kneighbors(Xk)
        t_sk = time.perf_counter() - t
        rec = np.mean([len(set(a_[1:]) & set(b_)) / k for a_, b_ in zip(ind, nb.indices)])
        print(row("sklearn brute", f"{t_sk:.2f}", f"{rec:.3f}", f"{t_sk / t_nb:.2f}x"))
        try:
            import faiss

            t = time.perf_counter()
            idx = faiss.IndexFlatL2(768)
            idx.add(Xk)
            _, ind = idx.search(Xk, k + 1)
            t_f = time.perf_counter() - t
            rec = np.mean([len(set(a_) & set(b_)) / k for a_, b_ in zip(ind, nb.indices)])
            print(row("faiss IndexFlatL2", f"{t_f:.2f}", f"{rec:.3f}", f"{t_f / t_nb:.2f}x"))
        except ImportError:
            print(row("faiss IndexFlatL2", "n/a", "n/a", "not installed"))
    # ---------------------------------------------------------------- 3. local ID at scale
    if "local" not in skip:
        XL = plane(a.local_n, 128, seed=2)
        t = time.perf_counter()
        nb = lowdim.kneighbors(XL, 20, duplicates="keep")
        t_nb = time.perf_counter() - t
        t = time.perf_counter()
        loc = lowdim.local_id(nb, n_neighbors=20)
        t_loc = time.perf_counter() - t
        print(f"\n## local ID, N={a.local_n:,} x 128 (ID-10 plane), k=20, backend {nb.backend}")
        print(row("what", "seconds", "median ID", "target"))
        print(row("k-NN graph", f"{t_nb:.1f}", "-", "-"))
        print(row("local TwoNN (vectorised)", f"{t_loc:.2f}", f"{np.median(loc):.2f}", "-"))
        print(row("total", f"{t_nb + t_loc:.1f}", "-", "<= 600 s"))


if __name__ == "__main__":
    main()
