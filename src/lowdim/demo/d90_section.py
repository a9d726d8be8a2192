"""Demo section: intrinsic dimension of a training task (d90 of an MLP on sklearn digits)."""

from __future__ import annotations

from lowdim.demo import DemoContext, Section

TITLE = "Intrinsic dimension of a training task (d90, subspace training)"


def run(ctx: DemoContext) -> Section:
    from lowdim.report.subspace_plots import plot_d90
    from lowdim.subspace import find_d90

    bar = ctx.progress
    handle = bar.add_task("d90 of digits MLP", total=None) if bar else None

    def on_run(ev: dict) -> None:
        if bar:
            bar.update(handle, completed=ev["done"], total=ev["total"])

    res = find_d90("digits_mlp", task_options={"epochs": 20, "patience": 5}, seeds=2, d_min=32,
                   d_max=1024, max_bisect=2, rel_tol=0.15, progress=on_run)
    plot_d90(res, ctx.path("d90_digits.png"), title="sklearn digits, MLP 64-64-10: accuracy vs d")
    rows = [[p["d"], f"{p['mean']:.3f}",
             "-" if p["ci_low"] != p["ci_low"] else f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
             "yes" if p["passes"] else "no"] for p in res.per_d]
    lo, hi = res.ci
    hi_txt = hi if hi is not None else "no tested d clearly above"
    rows.append(["d90", str(res.d90), f"interval [{lo}, {hi_txt}]",
                 f"D/d90 = {res.compression_ratio:.0f}" if res.compression_ratio else "not reached"])
    return Section(
        title=TITLE,
        columns=["d", "mean test accuracy (2 seeds)", "95% CI", f"≥ {res.threshold_value:.3f}"],
        rows=rows,
        images=["d90_digits.png"],
        text=(f"Training only z in θ = θ₀ + P z (Fastfood P, unit-norm columns; Li et al. 2018) for an "
              f"MLP with D = {res.n_params:,} parameters. The full-training baseline is "
              f"{res.baseline:.3f}; d90 is the smallest d whose mean test accuracy reaches 90 % of it "
              f"(threshold {res.threshold_value:.3f}), found by a log-grid sweep then bisection."),
        data={"d90": res.d90, "ci": list(res.ci), "baseline": res.baseline,
              "threshold_value": res.threshold_value, "per_d": res.per_d, "n_params": res.n_params},
    )
