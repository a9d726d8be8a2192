"""``lowdim id PATH``: intrinsic dimension of a point cloud stored in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def id_command(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Points: .npy .npz .csv .tsv .txt .parquet "
                                         ".safetensors .pt, or a folder of .npy shards / a .zarr")],
    method: Annotated[str, typer.Option("--method", "-m", help="Estimator: {methods}")] = "auto",
    k: Annotated[int | None, typer.Option("--k", help="Neighbourhood size of the estimator (twonn, mle, "
                                          "gride, ctwonn …); ≥ 2")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Array name inside .npz/.safetensors/.parquet")] = None,
    local: Annotated[Path | None, typer.Option("--local", help="Also save the per-point local ID to this .npy")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout, nothing else")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the scale curve / local-ID histogram "
                                              "(.png/.svg/.pdf)")] = None,
    duplicates: Annotated[str, typer.Option("--duplicates", help="drop (with a warning) | error | keep")] = "drop",
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes; the result is still printed")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address: k-NN on that cluster "
                                                  "(dask extra)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local Dask cluster of N worker processes "
                                                "(dask extra)")] = None,
) -> None:
    """Estimate the intrinsic dimension of the points in PATH."""
    from lowdim.api import estimate
    from lowdim.cli import _common as c
    from lowdim.estimators.registry import AUTO, get_estimator
    from lowdim.io import load_points, save_array
    from lowdim.scale.shards import is_distributed_input

    # every check before any work
    c.flag_aliases(n_neighbors="--k", random_state="--seed")
    get_estimator(AUTO if method.lower() == "auto" else method)
    c.check_choice("--duplicates", duplicates, ("drop", "error", "keep"))
    c.check_range("--k", k, low=2)
    c.check_range("--workers", workers, low=1)
    c.check_output("--local", local, (".npy",))
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)
    params: dict = {"duplicates": duplicates, "random_state": seed}
    if k is not None:
        params["n_neighbors"] = k

    with c.progress(quiet or json_out) as bar:
        bar.add_task(f"intrinsic dimension of {path.name} ({method})", total=None)
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
        c.print_json(res.to_json())
        return
    t = c.table(f"intrinsic dimension of {path.name}",
                ("method", "dimension", "95% CI", "points", "duplicates dropped", "neighbours", "seconds"))
    lo, hi = res.ci
    t.add_row(res.method, f"{res.dimension:.2f}", f"[{lo:.2f}, {hi:.2f}]", str(res.n_samples),
              str(res.n_duplicates_dropped), str(res.neighbors or "-"), f"{res.seconds:.2f}")
    c.out.print(t)
    if res.local is not None:
        import numpy as np

        c.out.print(f"local ID: median {np.median(res.local):.2f}, 5–95 % [{np.quantile(res.local, .05):.2f}, "
                    f"{np.quantile(res.local, .95):.2f}]" + ("" if quiet else f" → {local}"))
    if not quiet:
        for note in res.notes:
            c.out.print(f"note: {note}")
        if plot is not None:
            c.out.print(f"plot → {plot}")
