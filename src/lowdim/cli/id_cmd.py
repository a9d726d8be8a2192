"""``lowdim id PATH``: intrinsic dimension of a point cloud stored in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def id_command(
    path: Annotated[Path, typer.Argument(help="Points: .npy .npz .csv .parquet .safetensors .pt, or a folder of .npy shards / .zarr")],
    method: Annotated[str, typer.Option("--method", "-m", help="Estimator name, or 'auto'")] = "auto",
    k: Annotated[int | None, typer.Option("--k", help="Neighbourhood size (local ID, MLE, …)")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Array name inside .npz/.safetensors")] = None,
    local: Annotated[Path | None, typer.Option("--local", help="Save per-point local ID to this .npy")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print IDResult.to_json() only")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the scale curve / local-ID histogram (.png/.svg)")] = None,
    duplicates: Annotated[str, typer.Option("--duplicates", help="drop | error | keep")] = "drop",
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address: k-NN on that cluster")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Dask local cluster with N worker processes")] = None,
) -> None:
    """Estimate the intrinsic dimension of the points in PATH."""
    from lowdim.api import estimate
    from lowdim.cli._common import out, print_json
    from lowdim.io import load_points, save_array

    params: dict = {"duplicates": duplicates, "random_state": seed}
    if k is not None:
        import inspect

        from lowdim.estimators.registry import AUTO, get_estimator

        cls = get_estimator(AUTO if method.lower() == "auto" else method)
        if "n_neighbors" not in inspect.signature(cls.__init__).parameters:
            from lowdim.errors import LowdimError

            raise LowdimError(f"--k does not apply to method {cls.name!r} (it has no neighbourhood size); "
                              "drop --k or use --method twonn / mle")
        params["n_neighbors"] = k
    from lowdim.scale.shards import is_distributed_input

    if scheduler is not None or workers is not None or is_distributed_input(path):
        # PATH may also be a folder of .npy shards or a .zarr array (see docs/scaling.md)
        from lowdim.scale.client import connect

        with connect(scheduler=scheduler, workers=workers) as client:
            X = path if is_distributed_input(path) else load_points(path, key=key)
            res = estimate(X, method=method, local=local is not None, client=client, **params)
    else:
        X = load_points(path, key=key)
        res = estimate(X, method=method, local=local is not None, **params)
    if local is not None:
        save_array(local, res.local)
    if plot is not None:
        from lowdim.report.plots import plot_id_result

        plot_id_result(res, plot, title=path.name)
    if json_out:
        print_json(res.to_json())
        return
    if quiet:
        return
    from rich.table import Table

    t = Table(title=f"intrinsic dimension of {path.name}")
    for col in ("method", "dimension", "95% CI", "points", "duplicates dropped", "neighbours", "seconds"):
        t.add_column(col)
    lo, hi = res.ci
    t.add_row(res.method, f"{res.dimension:.2f}", f"[{lo:.2f}, {hi:.2f}]", str(res.n_samples),
              str(res.n_duplicates_dropped), str(res.neighbors or "-"), f"{res.seconds:.2f}")
    out.print(t)
    for note in res.notes:
        out.print(f"note: {note}")
    if res.local is not None:
        import numpy as np

        out.print(f"local ID: median {np.median(res.local):.2f}, 5–95 % [{np.quantile(res.local, .05):.2f}, "
                  f"{np.quantile(res.local, .95):.2f}] → {local}")
