"""Cost of subspace training relative to plain training of the same MLP (same run, same machine).

For MLPs with D ≈ 1e5 / 1e6 / 1e7 trainable parameters (input 256, two hidden layers of width w,
10 classes; batch 128, Adam), the time of one training step of ``SubspaceModel(mlp, d=1000)``
(fastfood, dense where its matrix fits the limit, sparse) is divided by the time of a plain step
(forward, backward, Adam on all D parameters). Then the peak memory of training at one size
(default D = 1e7) is compared: peak RSS growth measured in a fresh subprocess per variant on
CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Both include the model itself.

Targets (issue 3): CPU fastfood ≤ 3× at 1M and ≤ 4× at 10M; memory ≤ 3× at 10M; CUDA ≤ 3× at 100M.

Usage::

    python benchmarks/subspace_overhead.py                       # CPU, 1e5,1e6,1e7
    python benchmarks/subspace_overhead.py --device cuda --sizes 1e6,1e7,1e8 --memory-size 1e8
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time


def width_for(D: float, n_in: int = 256, n_out: int = 10) -> int:
    # D = n_in*w + w + w*w + w + w*n_out + n_out
    a, b, c = 1.0, n_in + n_out + 2, n_out - D
    return max(1, int((-b + math.sqrt(b * b - 4 * a * c)) / 2))


def make_mlp(D: float, device: str):
    import torch

    torch.manual_seed(0)
    w = width_for(D)
    net = torch.nn.Sequential(torch.nn.Linear(256, w), torch.nn.ReLU(), torch.nn.Linear(w, w),
                              torch.nn.ReLU(), torch.nn.Linear(w, 10)).to(device)
    return net


def make_step(model, device: str, batch: int):
    import torch

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 256, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_interleaved(steps: dict, device: str, min_time: float, max_rounds: int) -> dict:
    """Median step time of each variant, measured round-robin so load changes hit all alike."""
    for step in steps.values():
        for _ in range(2):
            step()
    sync(device)
    times: dict = {k: [] for k in steps}
    t_end = time.perf_counter() + min_time * len(steps)
    rounds = 0
    while (rounds < 3 or time.perf_counter() < t_end) and rounds < max_rounds:
        for k, step in steps.items():
            t0 = time.perf_counter()
            step()
            sync(device)
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: statistics.median(v) for k, v in times.items()}


def build(variant: str, D: float, d: int, device: str, max_dense_bytes: int):
    net = make_mlp(D, device)
    if variant == "plain":
        return net, sum(p.numel() for p in net.parameters())
    from lowdim.subspace import SubspaceModel

    sm = SubspaceModel(net.cpu(), d, projection=variant, seed=0, max_dense_bytes=max_dense_bytes).to(device)
    return sm, sm.n_params_


def rss_bytes(field: str = "VmRSS") -> int:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process, in bytes.

    VmHWM belongs to the address space, so unlike ``ru_maxrss`` it is not inherited from the
    parent across fork/exec, and writing "5" to /proc/self/clear_refs resets it.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def memory_child(variant: str, D: float, d: int, device: str, batch: int, max_dense_bytes: int) -> None:
    import torch

    if device.startswith("cuda"):
        torch.zeros(1, device=device)
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    else:
        torch.zeros(1)
        start = rss_bytes()
        with open("/proc/self/clear_refs", "w") as fh:  # reset the peak to the current RSS
            fh.write("5")
    model, _ = build(variant, D, d, device, max_dense_bytes)
    step = make_step(model, device, batch)
    for _ in range(3):
        step()
    sync(device)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - start
    else:
        peak = rss_bytes("VmHWM") - start
    print(json.dumps({"peak": peak}))


def measure_memory(variant: str, D: float, args) -> float | None:
    cmd = [sys.executable, __file__, "--_memory", variant, "--memory-size", str(D), "--d", str(args.d),
           "--device", args.device, "--batch", str(args.batch), "--max-dense-gib", str(args.max_dense_gib)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["peak"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--projections", default="fastfood,dense,sparse")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timed steps per variant")
    ap.add_argument("--max-steps", type=int, default=50)
    ap.add_argument("--max-dense-gib", type=float, default=2.0)
    ap.add_argument("--memory-size", type=float, default=1e7)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: default)")
    ap.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    max_dense = int(args.max_dense_gib * 2**30)
    if args._memory:
        memory_child(args._memory, args.memory_size, args.d, args.device, args.batch, max_dense)
        return
    dev_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} torch threads"
    print(f"# subspace training overhead — device: {dev_name}; torch {torch.__version__}; "
          f"d={args.d}, batch={args.batch}, Adam")
    projs = [p for p in args.projections.split(",") if p]
    header = ["D", "plain ms/step", *[f"{p} ms (×plain)" for p in projs]]
    rows = []
    for s in args.sizes.split(","):
        D = float(s)
        net, n = build("plain", D, args.d, args.device, max_dense)
        steps = {"plain": make_step(net, args.device, args.batch)}
        skipped = {}
        for p in projs:
            if p == "dense" and 4 * n * args.d > max_dense:
                skipped[p] = f"n/a (P needs {4 * n * args.d / 2**30:.0f} GiB)"
                continue
            model, _ = build(p, D, args.d, args.device, max_dense)
            steps[p] = make_step(model, args.device, args.batch)
        t = time_interleaved(steps, args.device, args.min_time, args.max_steps)
        del steps, net
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        row = [f"{n:,}", f"{t['plain'] * 1e3:.2f}"]
        for p in projs:
            row.append(skipped[p] if p in skipped else f"{t[p] * 1e3:.2f} ({t[p] / t['plain']:.2f}×)")
        rows.append(row)
        print("  ".join(row), file=sys.stderr, flush=True)
    _table(header, rows)
    if args.no_memory:
        return
    print(f"\n# peak training memory at D ≈ {args.memory_size:.0e} "
          f"({'torch.cuda.max_memory_allocated' if args.device.startswith('cuda') else 'peak RSS growth, fresh process'})")
    base = measure_memory("plain", args.memory_size, args)
    mrows = [["plain", f"{base / 2**20:.0f} MiB" if base else "failed", "1.00×"]]
    for p in projs:
        if p == "dense" and 4 * args.memory_size * args.d > max_dense:
            mrows.append([p, "n/a (over the dense limit)", "-"])
            continue
        m = measure_memory(p, args.memory_size, args)
        mrows.append([p, f"{m / 2**20:.0f} MiB" if m else "failed", f"{m / base:.2f}×" if (m and base) else "-"])
    _table(["variant", "peak memory", "×plain"], mrows)


def _table(header, rows) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


if __name__ == "__main__":
    main()
