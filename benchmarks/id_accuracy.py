"""Accuracy of lowdim's ID estimators on the 24 benchmark manifolds, next to scikit-dimension.

For each manifold of :mod:`lowdim.datasets.benchmark` (N points, seeded) the table shows the true
ID, the ambient dimension, lowdim's ``method="auto"`` estimate (and the estimator it used),
lowdim's twonn, mle, gride and ctwonn, the seconds of the auto estimate, and — when
scikit-dimension is importable (``/work/benchvenv/bin/python`` or ``pip install "lowdim[bench]"``) —
skdim's TwoNN and MLE on the same points (DANCo with ``--with-danco``; slow). Footer rows: MPE
(mean of 100·|est − true|/true) over all 24, MPE on the manifolds with ID > 10, MPE ratio to skdim
TwoNN (< 1: better), mean seconds.

Run::

    /work/benchvenv/bin/python benchmarks/id_accuracy.py            # with skdim peers
    python benchmarks/id_accuracy.py                                # peers print "n/a"
    /work/benchvenv/bin/python benchmarks/id_accuracy.py --data skdim   # skdim's own generator
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np

import lowdim
from lowdim.datasets.benchmark import BENCHMARK_MANIFOLDS, benchmark_suite
from lowdim.estimators.registry import REGISTRY

USED: list[str] = []  # the estimator auto used on each manifold


def _skdim() -> object | None:
    try:
        import skdim
    except ImportError:
        return None
    return skdim


def _ours(method: str) -> Callable[[np.ndarray], float]:
    def run(X: np.ndarray) -> float:
        r = lowdim.estimate(X, method=method)
        if method == "auto":
            USED.append(r.method + (f"@n1={r.scale['n1']}" if r.scale else ""))
        return r.dimension
    return run


def _peers(skdim: object | None, with_danco: bool, danco_timeout: float) -> dict[str, Callable[[np.ndarray], float] | None]:
    names = ["skdim_twonn", "skdim_mle", *(["skdim_danco"] if with_danco else [])]
    if skdim is None:
        return dict.fromkeys(names)
    peers = {
        "skdim_twonn": lambda X: skdim.id.TwoNN().fit(X).dimension_,
        "skdim_mle": lambda X: skdim.id.MLE().fit(X).dimension_,
    }
    if with_danco:
        peers["skdim_danco"] = lambda X: _timed_out_nan(_danco, X, danco_timeout)
    return peers


def _danco(X: np.ndarray) -> float:
    import skdim

    return float(skdim.id.DANCo(random_state=0).fit(X).dimension_)


def _run_child(fn: Callable[[np.ndarray], float], X: np.ndarray, q: object) -> None:
    warnings.simplefilter("ignore")
    q.put(fn(X))


def _timed_out_nan(fn: Callable[[np.ndarray], float], X: np.ndarray, seconds: float) -> float:
    """``fn(X)`` in a child process; NaN (printed as t/o) when it runs past ``seconds``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_run_child, args=(fn, X, q))
    p.start()
    p.join(seconds)
    if p.is_alive():
        p.terminate()
        p.join()
        return float("nan")
    return float(q.get()) if not q.empty() else float("nan")


def _data(source: str, n: int, seed: int, skdim: object | None) -> dict[str, tuple[np.ndarray, int]]:
    if source == "lowdim":
        return benchmark_suite(n, random_state=seed)
    if skdim is None:
        raise SystemExit("--data skdim needs scikit-dimension (run with /work/benchvenv/bin/python)")
    gen = skdim.datasets.BenchmarkManifolds(random_state=seed).generate(n=n)
    return {name: (gen[name], BENCHMARK_MANIFOLDS[name][0]) for name in BENCHMARK_MANIFOLDS}


def _mpe(est: list[float | None], true: list[int], mask: list[bool]) -> float | None:
    picked = [(e, t) for e, t, m in zip(est, true, mask, strict=True) if m]
    if any(e is None for e, _ in picked):
        return None
    picked = [(e, t) for e, t in picked if np.isfinite(e)]  # peers that failed / timed out
    if not picked:
        return None
    return float(np.mean([100 * abs(e - t) / t for e, t in picked]))


def main() -> None:
    ap = argparse.ArgumentParser(description="ID accuracy on the 24 benchmark manifolds")
    ap.add_argument("--n", type=int, default=2500, help="points per manifold (default 2500)")
    ap.add_argument("--seed", type=int, default=0, help="manifold i uses seed + i (default 0)")
    ap.add_argument("--data", choices=("lowdim", "skdim"), default="lowdim",
                    help="generator: lowdim.datasets.benchmark (default) or skdim's BenchmarkManifolds")
    ap.add_argument("--with-danco", action="store_true", help="also run skdim DANCo (minutes)")
    ap.add_argument("--danco-timeout", type=float, default=120.0,
                    help="seconds per manifold for DANCo before it counts as timed out (default 120)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    skdim = _skdim()
    ours = {"auto": _ours("auto")}
    ours.update({m: _ours(m) for m in ("twonn", "mle", "gride", "ctwonn") if m in REGISTRY})
    peers = _peers(skdim, args.with_danco, args.danco_timeout)
    cols = [*ours, *peers]
    data = _data(args.data, args.n, args.seed, skdim)

    rows: dict[str, list[float | None]] = {c: [] for c in cols}
    true, secs, peer_secs = [], [], []
    w = max(len(c) for c in cols) + 1
    print(f"N = {args.n}, seed = {args.seed}, data = {args.data}, skdim = "
          f"{getattr(skdim, '__version__', 'present') if skdim else 'not installed'}")
    print(f"{'manifold':20s}{'ID':>4s}{'D':>4s}" + "".join(f"{c:>{w}s}" for c in cols) + f"{'s(auto)':>9s}{'s(skdim2nn)':>12s}  auto used")
    for name, (X, d) in data.items():
        true.append(d)
        line = f"{name:20s}{d:4d}{X.shape[1]:4d}"
        for c in cols:
            fn = ours.get(c) or peers.get(c)
            if fn is None:
                rows[c].append(None)
                line += f"{'n/a':>{w}s}"
                continue
            t0 = time.perf_counter()
            try:
                v = float(fn(X))
            except Exception as exc:  # a peer failing on a manifold is a result, not a crash
                v = float("nan")
                print(f"  ({c} failed on {name}: {type(exc).__name__})")
            dt = time.perf_counter() - t0
            if c.startswith("auto"):
                secs.append(dt)
            if c == "skdim_twonn":
                peer_secs.append(dt)
            rows[c].append(v)
            line += f"{v:{w}.2f}" if np.isfinite(v) else f"{'t/o' if c == 'skdim_danco' else 'nan':>{w}s}"
        line += f"{secs[-1]:9.2f}" + (f"{peer_secs[-1]:12.2f}" if peer_secs else f"{'n/a':>12s}") + f"  {USED[-1]}"
        print(line, flush=True)

    allm = [True] * len(true)
    high = [t > 10 for t in true]
    mpe_all = {c: _mpe(rows[c], true, allm) for c in cols}
    mpe_high = {c: _mpe(rows[c], true, high) for c in cols}

    def fmt(v: float | None) -> str:
        return f"{v:{w}.2f}" if v is not None else f"{'n/a':>{w}s}"

    print("-" * (28 + w * len(cols) + 21))
    print(f"{'MPE % (all 24)':28s}" + "".join(fmt(mpe_all[c]) for c in cols))
    print(f"{f'MPE % (ID > 10, {sum(high)})':28s}" + "".join(fmt(mpe_high[c]) for c in cols))
    ref_all, ref_high = mpe_all.get("skdim_twonn"), mpe_high.get("skdim_twonn")
    for label, mp, ref in (("MPE / skdim TwoNN (all)", mpe_all, ref_all),
                           ("MPE / skdim TwoNN (ID>10)", mpe_high, ref_high)):
        print(f"{label:28s}" + "".join(fmt(mp[c] / ref if ref and mp[c] is not None else None) for c in cols))
    missing = {c: sum(1 for v in rows[c] if v is not None and not np.isfinite(v)) for c in cols}
    for c, m in missing.items():
        if m:
            print(f"  note: {c} has no value on {m} manifolds (failed or timed out); its MPE is over the rest")
    print(f"{'mean seconds (auto)':28s}{np.mean(secs):{w}.3f}   max {np.max(secs):.3f}"
          + (f"   skdim TwoNN mean {np.mean(peer_secs):.3f}" if peer_secs else ""))


if __name__ == "__main__":
    main()
