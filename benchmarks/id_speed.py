"""Speed of lowdim's exact TwoNN pipeline against DADApy and against its floor, in one run.

Usage::

    python benchmarks/id_speed.py --peer-python /work/peers-venv/bin/python     # full table
    python benchmarks/id_speed.py --n 20000 --big-n 100000 --repeats 3

Data (float32, 768 features): (a) ``plane``: an ID-10 Gaussian plane + 1e-3 ambient noise
(linearly low-rank: the PCA-bounded exact search applies); (b) ``manifold``: ``tanh(Z W₁) W₂``, Z
uniform in 12-D, 256 hidden units, rows normalised — full-rank (its span needs ~170 components
for 99 % of the variance), so exact search is bounded by one GEMM.

Rows, all measured in this run (the machine may be shared: ratios, medians of ``--repeats``):
1. cold process: a fresh interpreter that imports, loads the .npy and estimates (what a CLI user
   pays) — lowdim ``estimate(X, method="twonn")`` vs DADApy ``Data(X).compute_id_2NN()``;
2. warm (second call in one process) for both;
3. the warm TwoNN estimate against one ``kneighbors(X, 2)``, and ``kneighbors(X, 2)`` against one
   bare float32 GEMM of the same shape (N×768 by 768×N, all BLAS threads, output discarded);
4. TwoNN on the plane at ``--big-n`` points; DADApy extrapolated as O(N²) from N (said so).
DADApy runs in its own venv (``--peer-python``; it pins numpy<2), at its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def plane(n: int, D: int = 768, d: int = 10, noise: float = 1e-3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, d)))[0]
    X = rng.normal(size=(n, d)) @ basis.T + noise * rng.normal(size=(n, D))
    return X.astype(np.float32)


def manifold(n: int, D: int = 768, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(12, 256)), rng.normal(size=(256, D))
    X = np.tanh(rng.uniform(-1, 1, size=(n, 12)) @ W1) @ W2
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


WORKER = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy as np
who, path, warm = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
X = np.load(path)
def run():
    if who == "dadapy":
        from dadapy import Data
        return float(Data(X.astype(np.float64)).compute_id_2NN()[0])
    import lowdim
    return float(lowdim.estimate(X, method="twonn").dimension)
if warm:
    run()
t = time.perf_counter()
d = run()
print(json.dumps({"estimate_s": time.perf_counter() - t, "process_s": time.perf_counter() - t0, "dimension": d}))
'''


def subprocess_time(python: str, who: str, path: str, warm: bool) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    out = subprocess.run([python, "-c", WORKER, who, path, "1" if warm else "0"], capture_output=True,
                         text=True, timeout=7200, env=env)
    wall = time.perf_counter() - t
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    return res


def bare_gemm_seconds(X: np.ndarray, rows: int = 2048) -> float:
    Y = X.copy()  # a distinct operand: BLAS cannot use the cheaper symmetric product
    out = np.empty((rows, len(X)), np.float32)
    t = time.perf_counter()
    for s in range(0, len(X), rows):
        blk = X[s:s + rows]
        np.matmul(blk, Y.T, out=out[: len(blk)])
    return time.perf_counter() - t


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--big-n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default=None, help="python of the venv with dadapy (numpy<2)")
    a = ap.parse_args()
    import lowdim

    print(f"# lowdim {lowdim.__version__}, numpy {np.__version__}, cores {len(os.sched_getaffinity(0))}, "
          f"load {os.getloadavg()[0]:.1f}")
    tmp = tempfile.mkdtemp()
    data = {"plane": plane(a.n), "manifold": manifold(a.n)}
    paths = {}
    for name, X in data.items():
        paths[name] = os.path.join(tmp, f"{name}.npy")
        np.save(paths[name], X)
    print(f"\n## TwoNN on N = {a.n:,} × 768 float32: lowdim vs DADApy (seconds, median of {a.repeats})\n")
    print(row("data", "mode", "lowdim", "DADApy", "DADApy / lowdim", "ID lowdim", "ID DADApy"))
    print(row(*["---"] * 7))
    for name in data:
        for warm in (False, True):
            ours = [subprocess_time(sys.executable, "lowdim", paths[name], warm) for _ in range(a.repeats)]
            key = "estimate_s" if warm else "wall_s"
            t_ours = float(np.median([o[key] for o in ours]))
            peer = ([subprocess_time(a.peer_python, "dadapy", paths[name], warm) for _ in range(a.repeats)]
                    if a.peer_python else [{"error": "no --peer-python"}])
            if "error" in peer[0]:
                t_peer, d_peer, ratio = "n/a", "n/a", peer[0]["error"]
            else:
                t_peer = float(np.median([p[key] for p in peer]))
                d_peer, ratio = f"{peer[0]['dimension']:.2f}", f"{t_peer / t_ours:.2f}x"
                t_peer = f"{t_peer:.2f}"
            print(row(name, "warm" if warm else "cold process", f"{t_ours:.2f}", t_peer, ratio,
                      f"{ours[0]['dimension']:.2f}", d_peer))
    print(f"\n## Against the floor (in this process, warm, median of {a.repeats})\n")
    print(row("data", "twonn estimate", "kneighbors(X, 2)", "bare float32 GEMM", "estimate / kNN",
              "kNN / GEMM", "kNN backend", "proof stages"))
    print(row(*["---"] * 8))
    for name, X in data.items():
        lowdim.estimate(X, method="twonn")
        t_est, _ = median_time(lambda X=X: lowdim.estimate(X, method="twonn"), a.repeats)
        t_nb, nb = median_time(lambda X=X: lowdim.kneighbors(X, 2, duplicates="keep"), a.repeats)
        t_gemm, _ = median_time(lambda X=X: bare_gemm_seconds(X), a.repeats)
        print(row(name, f"{t_est:.2f}", f"{t_nb:.2f}", f"{t_gemm:.2f}", f"{t_est / t_nb:.2f}x",
                  f"{t_nb / t_gemm:.2f}x", nb.backend, nb.info.get("stages")))
    if a.big_n:
        Xb = plane(a.big_n, seed=1)
        t_big, r = median_time(lambda: lowdim.estimate(Xb, method="twonn"), 1)
        print(f"\n## TwoNN on the plane at N = {a.big_n:,}: {t_big:.2f} s (ID {r.dimension:.2f}, {r.neighbors})")
        if a.peer_python:
            peer = subprocess_time(a.peer_python, "dadapy", paths["plane"], True)
            if "error" not in peer:
                extra = peer["estimate_s"] * (a.big_n / a.n) ** 2
                print(f"DADApy warm at N = {a.n:,}: {peer['estimate_s']:.2f} s, extrapolated as O(N²) to "
                      f"{a.big_n:,}: {extra:.0f} s -> DADApy / lowdim = {extra / t_big:.1f}x (extrapolated)")


if __name__ == "__main__":
    main()
