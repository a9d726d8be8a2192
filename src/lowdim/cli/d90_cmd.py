"""``lowdim d90 --task NAME``: intrinsic dimension of a training task (subspace training, d90)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def d90_command(
    task: Annotated[str, typer.Option("--task", "-t", help="Built-in task: {tasks}")] = "digits_mlp",
    projection: Annotated[str, typer.Option("--projection", "-p", help="fastfood | dense | sparse")] = "fastfood",
    said: Annotated[bool, typer.Option("--said", help="Structure-aware (one scale per tensor, Aghajanyan et al.)")] = False,
    per_tensor: Annotated[bool, typer.Option("--per-tensor", help="Unit-norm columns per tensor "
                                             "(one projection each) instead of over the whole network")] = False,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds (projections) per d")] = 3,
    threshold: Annotated[float, typer.Option("--threshold", help="Fraction in (0, 1] (of the baseline, or "
                                             "of the metric with --rule absolute)")] = 0.9,
    rule: Annotated[str, typer.Option("--rule", help="relative (× measured baseline) | absolute (metric ≥ threshold)")] = "relative",
    baseline: Annotated[float | None, typer.Option("--baseline", help="Known full-training metric (skip measuring it)")] = None,
    d_min: Annotated[int | None, typer.Option("--d-min", help="Smallest d of the log grid")] = None,
    d_max: Annotated[int | None, typer.Option("--d-max", help="Largest d of the log grid (default D)")] = None,
    max_bisect: Annotated[int, typer.Option("--max-bisect", help="Bisection steps after the grid")] = 6,
    lr: Annotated[list[float] | None, typer.Option("--lr", help="Subspace learning rate(s) to try per run (repeat)")] = None,
    lr_scaling: Annotated[str | None, typer.Option("--lr-scaling", help="constant | sqrt (lr · √(1000/d): one "
                                                   "rate for a whole sweep, --lr is then the rate at d=1000); "
                                                   "default: the task's")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epoch budget per run (early stopping inside)")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu | cuda")] = "cpu",
    random_init: Annotated[bool, typer.Option("--random-init", help="minilm_scifact: start from a random "
                                              "initialisation instead of the pretrained weights")] = False,
    data: Annotated[Path | None, typer.Option("--data", help="Data folder: MNIST IDX files (mnist_*) or BEIR SciFact (minilm_scifact)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for runs.jsonl, d90.json and d90.png")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/runs.jsonl (same settings)")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout, nothing else")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save metric vs d (.png/.svg/.pdf)")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address (dask extra)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local Dask cluster of N workers (needs the dask extra)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes; the result is still printed")] = False,
) -> None:
    """Find d90: the smallest random-subspace dimension whose training reaches the threshold."""
    from lowdim.cli import _common as c
    from lowdim.errors import LowdimError
    from lowdim.subspace.tasks import TASKS

    # every check before any work (the library checks them again, with Python names)
    c.flag_aliases(threshold_rule="--rule", lrs="--lr", normalize="--per-tensor", data_dir="--data",
                   results="--out", pretrained="--random-init")
    c.check_choice("--task", task, TASKS)
    c.check_choice("--projection", projection, ("fastfood", "dense", "sparse"))
    c.check_choice("--rule", rule, ("relative", "absolute"))
    if lr_scaling is not None:
        c.check_choice("--lr-scaling", lr_scaling, ("constant", "sqrt"))
    c.check_choice("--device", device, ("cpu", "cuda"))
    c.check_range("--threshold", threshold, low=0.0, high=1.0, low_open=True)
    c.check_range("--seeds", seeds, low=1)
    c.check_range("--d-min", d_min, low=1)
    c.check_range("--d-max", d_max, low=max(1, d_min or 1))
    c.check_range("--max-bisect", max_bisect, low=0)
    c.check_range("--epochs", epochs, low=1)
    c.check_range("--workers", workers, low=1)
    c.check_range("--baseline", baseline, low=0.0)
    for x in lr or []:
        c.check_range("--lr", x, low=0.0, low_open=True)
    c.check_input("--data", data, kind="folder")
    c.check_output("--out", out, folder=True)
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)
    if resume and out is None:
        raise LowdimError("--resume needs --out DIR (the folder holding runs.jsonl)")
    if random_init and task != "minilm_scifact":
        raise LowdimError(f"--random-init applies to the pretrained task minilm_scifact, not {task!r}")
    if device == "cuda":
        from lowdim.errors import require

        if not require("torch", "torch").cuda.is_available():
            raise LowdimError("--device cuda: this torch build sees no CUDA GPU; use --device cpu or install "
                              "a CUDA build of torch")
    options: dict = {"device": device}
    if epochs is not None:
        options["epochs"] = epochs
    if data is not None:
        options["data_dir"] = str(data)
    if random_init:
        options["pretrained"] = False
    c.on_interrupt(f"finished runs are saved in {str(out / 'runs.jsonl')!r}; continue with the same command "
                   "plus --resume" if out is not None else
                   "no run was saved; pass --out DIR to keep finished runs (then --resume continues them)")
    from lowdim.subspace.search import find_d90

    client = None
    if scheduler is not None or workers is not None:
        from lowdim.scale.client import connect

        client = connect(scheduler=scheduler, workers=workers)
    try:
        with c.progress(quiet or json_out) as bar:
            handle = bar.add_task(f"d90 {task}", total=None)

            def on_run(ev: dict) -> None:
                r = ev["record"]
                what = "baseline" if r["kind"] == "baseline" else f"d={r['d']}"
                bar.update(handle, completed=ev["done"], total=ev["total"],
                           description=f"d90 {task} [{ev['stage']}] {what} seed {r['seed']}: {r['metric']:.3f}")

            res = find_d90(task, task_options=options, projection=projection, said=said,
                           normalize="tensor" if per_tensor else "network", seeds=seeds,
                           threshold=threshold, threshold_rule=rule, baseline=baseline, d_min=d_min,
                           d_max=d_max, max_bisect=max_bisect, lrs=lr or None, lr_scaling=lr_scaling,
                           results=str(out / "runs.jsonl") if out is not None else None, resume=resume,
                           client=client, progress=on_run)
            n_runs = len(res.runs)
            bar.update(handle, completed=n_runs, total=n_runs, description=f"d90 {task}: done")
    finally:
        if client is not None:
            client.close()
    if out is not None:
        from lowdim.io import write_json

        write_json(out / "d90.json", res.to_json())
    plots = [p for p in (plot, out / "d90.png" if out is not None else None) if p is not None]
    if plots:
        from lowdim.report.subspace_plots import plot_d90

        for p in plots:
            plot_d90(res, p)
    if json_out:
        c.print_json(res.to_json())
        return
    t = c.table(f"d90 of {task} ({projection}{', SAID' if said else ''}; D = {res.n_params:,})",
                ("d", f"mean {res.config['metric']}", f"{res.config['confidence'] * 100:g}% CI", "seeds",
                 f"≥ {res.threshold_value:.3f}"))
    for p in res.per_d:
        ci = "-" if p["ci_low"] != p["ci_low"] else f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]"
        t.add_row(str(p["d"]), f"{p['mean']:.3f}", ci, str(p["n"]),
                  "yes" if p["passes"] else "no")
    c.out.print(t)
    rule_txt = (f"{res.threshold:g} × baseline {res.baseline:.3f}" if res.threshold_rule == "relative"
                else f"metric ≥ {res.threshold:g} (absolute)")
    if res.d90 is None:
        c.out.print(f"d90 not reached up to d = {res.config['d_max']} (threshold {res.threshold_value:.3f} = {rule_txt})")
    else:
        c.out.print(f"d90 = {res.d90}  interval {res.ci_text}  "
                      f"threshold {res.threshold_value:.3f} = {rule_txt}; compression D/d90 = "
                      f"{res.compression_ratio:.1f}; {res.seconds:.1f} s")
    if quiet:
        return
    c.out.print(f"intervals: {res.interval_method}")
    for p in plots:
        c.out.print(f"plot → {p}")
    if out is not None:
        c.out.print(f"runs → {out / 'runs.jsonl'}, result → {out / 'd90.json'}")
