"""``lowdim demo``: run every section on embedded data and write an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder")] = Path("lowdim-demo"),
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these sections (e.g. id_section)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run lowdim's measurements on embedded data sets; write tables, plots and index.html."""
    from rich.table import Table

    from lowdim.cli._common import out as console
    from lowdim.cli._common import progress
    from lowdim.demo import run_demo

    with progress(quiet) as p:
        sections, html = run_demo(out, quiet=quiet, seed=seed, only=only, progress=p)
    if quiet:
        return
    for s in sections:
        t = Table(title=f"{s.title}  ({s.seconds:.1f} s)")
        for c in s.columns:
            t.add_column(str(c))
        for r in s.rows:
            t.add_row(*[_fmt(v) for v in r])
        console.print(t)
    console.print(f"report: {html}")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)
