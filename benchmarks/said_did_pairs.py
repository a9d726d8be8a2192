"""More paired seeds for SAID − DID at one d on the MiniLM task (issue 17), and the comparison.

Runs pretrained DID and SAID at ``--d`` for ``--seeds`` (e.g. 3,4,5) against the measured
baseline of ``subspace_fidelity.py --experiment minilm --bracket ...``'s DID file in ``--out``
(given as a (mean, low, high) triple, so no new baseline runs), with the same task options as that
bracket run; then pairs every seed found at ``--d`` in the bracket files and the new files and
prints ``summary.paired_difference`` with the runs' per-example correctness.

Usage::

    python benchmarks/said_did_pairs.py run --which did  --seeds 3,4,5 --out fid --data ../shared/data/scifact
    python benchmarks/said_did_pairs.py run --which said --seeds 3,4,5 --out fid --data ../shared/data/scifact
    python benchmarks/said_did_pairs.py compare --out fid
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _runs(path: Path, d: int) -> dict:
    if not path.exists():
        return {}
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {r["seed"]: r for r in recs if r.get("type") == "run" and r.get("d") == d}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "compare"])
    ap.add_argument("--which", choices=["did", "said"], default="did")
    ap.add_argument("--seeds", default="3,4,5")
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--out", default="fidelity-out")
    ap.add_argument("--data", default="")
    args = ap.parse_args()
    out = Path(args.out)
    bracket = out / "minilm_pretrained_did_bracket.jsonl"
    seeds = [int(x) for x in args.seeds.split(",")]
    tag = f"{args.d}_seeds{''.join(str(s) for s in seeds)}"
    if args.action == "run":
        import subspace_fidelity as sf
        from lowdim.subspace.summary import accuracy_interval

        recs = [json.loads(x) for x in bracket.read_text().splitlines() if x.strip()]
        opts = {**recs[0]["task_options"], **({"data_dir": args.data} if args.data else {})}
        base = [r["metric"] for r in recs if r.get("kind") == "baseline"]
        n_test = sf_n_test(opts)
        m, lo, hi = accuracy_interval(base, n_test)
        sf.run(f"minilm_pretrained_{args.which}_{tag}", "minilm_scifact", opts, argparse.Namespace(out=str(out)),
               seeds=seeds, said=args.which == "said", d_min=args.d, d_max=args.d, grid_factor=2.0, max_bisect=0,
               runner=sf._AllAtOnce(), lr_scaling=None, baseline=(m, lo, hi))
        return
    from lowdim.subspace.summary import accuracy_interval, paired_difference, unpack_correct

    did, said = {}, {}
    for f in sorted(out.glob("minilm_pretrained_*.jsonl")):
        side = did if "_did_" in f.name else said if "_said_" in f.name else None
        if side is not None:
            side.update(_runs(f, args.d))
    both = sorted(set(did) & set(said))
    if not both:
        sys.exit(f"no seed has both DID and SAID runs at d = {args.d} in {out}")
    a, b = [did[s]["metric"] for s in both], [said[s]["metric"] for s in both]
    n = did[both[0]].get("correct", {}).get("n")
    print(f"d = {args.d}, seeds {both}\nDID  {[round(x, 4) for x in a]}\nSAID {[round(x, 4) for x in b]}")
    if all("correct" in did[s] and "correct" in said[s] for s in both):
        bits = ([unpack_correct(did[s]["correct"]) for s in both], [unpack_correct(said[s]["correct"]) for s in both])
        print("SAID − DID, seed spread + paired per-example test-set variance:",
              [round(x, 4) for x in paired_difference(a, b, correct=bits)])
    print("SAID − DID, seed spread only (this test set):", [round(x, 4) for x in paired_difference(a, b)])
    if n:
        print("SAID − DID, seed spread + Cauchy–Schwarz bound:", [round(x, 4) for x in paired_difference(a, b, n_test=n)])
        print("DID", [round(x, 4) for x in accuracy_interval(a, n)], "SAID", [round(x, 4) for x in accuracy_interval(b, n)])


def sf_n_test(opts: dict) -> int:
    from lowdim.subspace.tasks import get_task

    keep = ("data_dir", "model_dir", "max_length", "n_train", "n_eval", "device")
    return int(get_task("minilm_scifact", pretrained=True, **{k: opts[k] for k in keep if k in opts}).n_test)


if __name__ == "__main__":
    main()
