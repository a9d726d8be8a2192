"""Scale-out benchmark: ID of 2M × 128 points on a Dask LocalCluster, 1 vs 2 workers.

Method (stated in the table): TwoNN (k = 2) from a seeded random subsample of query points,
each matched exactly against the FULL reference set, which lives on disk as a folder of ``.npy``
shards (one Dask task per shard: validate + row hashes for duplicates, then per-shard top-k of the
broadcast queries with the shared engine ``lowdim.neighbors.knn_search``; merge on the
coordinator). Workers are single-threaded processes, so "1 worker" uses one core and "2 workers"
two. The single-process engine on the same data (``lowdim.kneighbors(X, 2, queries=...)`` with all
cores) runs in the same script as the baseline, and the estimates must be identical.

It also times one shard's work in-process on one core (the per-shard cost used for the
projection in docs/scaling.md) and reads each worker's peak RSS.

    python benchmarks/scale_out.py                      # 2M × 128, 5,000 queries, 20 shards
    python benchmarks/scale_out.py --n 200000 --queries 1000   # quick
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from pathlib import Path

import numpy as np


def make_shards(folder: Path, n: int, D: int, shard_rows: int, seed: int = 0) -> None:
    """A 12-dimensional curved manifold in D dimensions plus small noise, float32, as .npy shards."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.npy"))) == -(-n // shard_rows):
        return
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(12, D)) / np.sqrt(12)
    B = rng.normal(size=(12, D)) / np.sqrt(12)
    for i, s in enumerate(range(0, n, shard_rows)):
        m = min(shard_rows, n - s)
        z = rng.normal(size=(m, 12))
        X = z @ A + np.sin(z) @ B + 0.01 * rng.normal(size=(m, D))
        np.save(folder / f"part_{i:04d}.npy", X.astype(np.float32))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): unlike ru_maxrss it is not inherited across fork/exec, so
    a worker spawned by a big coordinator reports its own peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_shard_cost(folder: Path, queries: int) -> dict:
    """One shard's scan and k-NN on one core, in this process."""
    from threadpoolctl import threadpool_limits

    from lowdim.neighbors import knn_search
    from lowdim.scale.dask_knn import _scan_shard

    f = sorted(folder.glob("*.npy"))[0]
    R = np.load(f)
    Q = R[np.random.default_rng(1).choice(len(R), size=min(queries, len(R)), replace=False)] + 0.001
    with threadpool_limits(1):
        t0 = time.perf_counter()
        _scan_shard((np.load, str(f)), np.dtype(np.float32), f.name, 0, True)
        t_scan = time.perf_counter() - t0
        t0 = time.perf_counter()
        knn_search(R, Q, 3, backend="exact", n_jobs=1)
        t_knn = time.perf_counter() - t0
    return {"rows": len(R), "D": R.shape[1], "queries": len(Q), "scan_s": t_scan, "knn_s": t_knn}


def projection(data: Path, *, D: int = 768, shard_rows: int = 100_000, q_measured: int = 1000,
               n_total: float = 100e6, nodes: int = 16, cores: int = 16, q_target: int = 10_000) -> None:
    """Measure one 100,000 × 768 shard on one core / one worker; project 100M × 768 on 16 nodes."""
    import lowdim  # noqa: F401
    from lowdim.scale import connect, dask_kneighbors

    folder = data / f"proj_n{shard_rows}_d{D}"
    make_shards(folder, shard_rows, D, shard_rows, seed=1)
    c = per_shard_cost(folder, q_measured)
    with connect(workers=1, timeout=60) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        dask_kneighbors(folder, 2, client=client, queries=q_measured)
        t_task = time.perf_counter() - t0
        rss = max(client.run(peak_rss_mb).values())
    n_shards = int(n_total // shard_rows)
    gb_shard = shard_rows * D * 4 / 1e9
    knn_target = c["knn_s"] * q_target / q_measured
    core_s = n_shards * (c["scan_s"] + knn_target)
    workers = nodes * cores
    wall = core_s / workers
    rounds = -(-n_shards // workers)
    print(f"\nprojection input, one {shard_rows:,} × {D} float32 shard ({gb_shard:.3f} GB) on one core: "
          f"scan {c['scan_s']:.2f} s, k-NN of {q_measured:,} queries {c['knn_s']:.2f} s; "
          f"as a 1-worker Dask job {t_task:.2f} s, worker peak RSS {rss:.0f} MB")
    print(f"projection: {n_total:,.0f} × {D} float32 = {n_total * D * 4 / 1e9:,.0f} GB in {n_shards:,} shards; "
          f"TwoNN from {q_target:,} random queries; {nodes} nodes × {cores} single-threaded workers = {workers}")
    print(f"  k-NN per shard = {c['knn_s']:.2f} s × {q_target:,}/{q_measured:,} = {knn_target:.1f} s; "
          f"+ scan {c['scan_s']:.2f} s")
    print(f"  total = {n_shards:,} × ({c['scan_s']:.2f} + {knn_target:.1f}) s = {core_s:,.0f} core-s; "
          f"/ {workers} workers = {wall:,.0f} s = {wall / 60:.1f} min ({rounds} rounds of shards)")
    print(f"  memory per worker ≈ measured peak RSS {rss:.0f} MB (one shard + engine copies); per node "
          f"{cores} × {rss / 1024:.2f} GB = {cores * rss / 1024:.1f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    ap.add_argument("--device", default=None, help="'cuda': per-shard search on the workers' GPU (extra rows)")
    ap.add_argument("--projection-only", action="store_true", help="only the 100M × 768 projection")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lowdim_scale_bench")
    args = ap.parse_args()

    import lowdim
    from lowdim.scale import connect, dask_kneighbors

    if args.projection_only:
        projection(args.data)
        return
    folder = args.data / f"n{args.n}_d{args.dim}_s{args.shard_rows}"
    t0 = time.perf_counter()
    make_shards(folder, args.n, args.dim, args.shard_rows)
    print(f"data: {folder} ({args.n:,} × {args.dim} float32, {-(-args.n // args.shard_rows)} shards of "
          f"{args.shard_rows:,} rows; ready in {time.perf_counter() - t0:.1f} s)")
    print(f"load before: {os.getloadavg()}  (cores: {os.cpu_count()})")

    rows = []
    results = {}
    configs = [(w, None) for w in args.workers] + ([(w, args.device) for w in (1, 2)] if args.device else [])
    for w, dev in configs:
        with connect(workers=w, timeout=60) as client, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            nb = dask_kneighbors(folder, 2, client=client, queries=args.queries, random_state=0, device=dev)
            r = lowdim.estimate(nb, method="twonn")
            dt = time.perf_counter() - t0
            rss = client.run(peak_rss_mb)
        results[(w, dev)] = (nb, r)
        rows.append((f"dask, {w} worker{'s' if w > 1 else ''} (1 thread each){', ' + dev if dev else ''}", dt,
                     r.dimension, max(rss.values())))
        print(f"  {rows[-1][0]}: {dt:.1f} s, load {os.getloadavg()[0]:.2f}", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        X = np.concatenate([np.load(f) for f in sorted(folder.glob("*.npy"))])
        nb1 = lowdim.kneighbors(X, 2, queries=args.queries, random_state=0)
        r1 = lowdim.estimate(nb1, method="twonn")
        dt1 = time.perf_counter() - t0
    rows.append((f"single process, all {os.cpu_count()} cores (load + search)", dt1, r1.dimension, peak_rss_mb()))
    same = all(np.array_equal(nb.distances, nb1.distances) and np.array_equal(nb.indices, nb1.indices)
               for (w, dev), (nb, _) in results.items() if dev is None)
    same_gpu = [np.array_equal(nb.indices, nb1.indices) for (w, dev), (nb, _) in results.items() if dev]

    base = rows[0][1]
    print(f"\nTwoNN ID of {args.n:,} × {args.dim} points: {args.queries:,} random queries against the full "
          f"sharded reference (exact k-NN)")
    print(f"{'configuration':<48} {'seconds':>8} {'queries/s':>10} {'vs 1 worker':>12} {'ID':>7} {'peak RSS MB':>12}")
    for name, dt, d, rss in rows:
        print(f"{name:<48} {dt:8.1f} {args.queries / dt:10.0f} {base / dt:11.2f}× {d:7.3f} {rss:12.0f}")
    print(f"\nneighbours and ID identical across the CPU runs and the single process: {same}")
    if same_gpu:
        print(f"GPU-worker runs: same neighbour indices as the CPU engine: {all(same_gpu)}")
    print(f"load after: {os.getloadavg()}")

    c = per_shard_cost(folder, args.queries)
    unit = c["knn_s"] / (c["rows"] * c["queries"] * c["D"])
    print(f"\nper-shard cost on one core ({c['rows']:,} rows × {c['D']}, float32): scan (read + validate + "
          f"hash) {c['scan_s']:.2f} s = {c['scan_s'] / (c['rows'] * c['D'] * 4) * 1e9:.2f} s/GB; "
          f"k-NN of {c['queries']:,} queries {c['knn_s']:.2f} s = {unit * 1e12:.2f} s per 1e12 "
          "query·reference·dimension")
    projection(args.data)


if __name__ == "__main__":
    main()
