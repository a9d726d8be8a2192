"""Demo section: which rank for which layer — profile → plan → SoRA learns ranks → exact LoRA export."""

from __future__ import annotations

from lowdim.demo import DemoContext, Section

TITLE = "Low-rank training that learns its rank (profile, plan, SoRA, Maestro)"


def run(ctx: DemoContext) -> Section:
    import numpy as np
    import torch

    from lowdim.lowrank.digits_bed import pretrained_mlp, rotated_digits, run_method
    from lowdim.lowrank.maestro import MaestroLinear, nested_loss
    from lowdim.lowrank.plan import allocate
    from lowdim.lowrank.profile import profile
    from lowdim.lowrank.report import rank_table
    from lowdim.report.lowrank_plots import plot_plan

    bar = ctx.progress
    handle = bar.add_task("low-rank: profile, plan, SoRA", total=4) if bar else None
    torch.manual_seed(ctx.seed)
    net, acc0 = pretrained_mlp(0, epochs=30)
    data = rotated_digits(45.0)
    prof = profile(net, [data.train[0]], what=("weights", "inputs"), max_samples=1000)
    if bar:
        bar.advance(handle)
    lora8 = 8 * sum(ms.m + ms.n for ms in prof.modules)
    plan = allocate(prof, budget=lora8, signal="input_variance")
    if bar:
        bar.advance(handle)
    sora = run_method("sora", r=8, lam=2.0, epochs=20, seed=ctx.seed)
    if bar:
        bar.advance(handle)
    # Maestro oracle: a linear autoencoder's nested components are the principal axes (planted spectrum)
    from scipy.linalg import subspace_angles

    rng = np.random.default_rng(ctx.seed)
    X = (rng.normal(size=(1000, 8)) * np.sqrt(2.0 * 0.6 ** np.arange(8))) @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    X = X - X.mean(0)
    torch.manual_seed(ctx.seed)
    ae = MaestroLinear(8, 8, 3, bias=False)
    opt = torch.optim.SGD(ae.parameters(), lr=0.25)
    Xt = torch.tensor(X, dtype=torch.float32)
    for _ in range(400):
        opt.zero_grad()
        nested_loss(ae, Xt, Xt).backward()
        opt.step()
    pcs = np.linalg.svd(X, full_matrices=False)[2].T
    U = ae.U.detach().double().numpy()
    angles = [float(np.degrees(subspace_angles(U[:, :j], pcs[:, :j]).max())) for j in range(1, 4)]
    if bar:
        bar.advance(handle)
    plot_plan(plan, ctx.path("lowrank_plan.png"), learned={"SoRA survivors": sora["ranks"]},
              title="digits MLP → rotated digits: allocated vs learned rank")
    cols, rows = rank_table(plan, {"SoRA (learned)": sora["ranks"]})
    rows.append(["SoRA test accuracy", "", "", "", f"{sora['test_acc']:.3f}"])
    rows.append(["Maestro AE (8-D, planted spectrum): max angle to PCA, j=1..3", "", "", "",
                 " ".join(f"{a:.1f}°" for a in angles)])
    return Section(
        title=TITLE,
        columns=cols,
        rows=rows,
        images=["lowrank_plan.png"],
        text=(f"An MLP pretrained on upright digits (test accuracy {acc0:.3f}) is profiled on rotated digits: "
              f"weight spectra and the inputs' explained variance per layer. The plan spends the budget of "
              f"uniform LoRA r=8 ({lora8:,} parameters) by water-filling on the inputs' explained variance "
              f"({plan.n_params:,} used). SoRA (per-gate L1 proximal gates, λ=2, 20 epochs) then learns its own ranks "
              f"while fine-tuning ({sora['kept_fraction']:.0%} of 24 ranks kept); its export to a plain PEFT "
              f"LoRA reproduces the gated model's outputs to {sora['export_max_rel_diff']:.1e} (relative, "
              f"float32). Maestro's ordered low-rank autoencoder, trained with SGD, recovers the principal "
              f"axes (angles above)."),
        data={"plan": plan.to_dict(), "sora": sora, "maestro_angles_deg": angles, "pretrained_acc": acc0},
    )
