"""``lowdim demo``: run every section on embedded data and write an HTML report."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (created): index.html, "
                                      "results.json and the plots")] = Path("lowdim-demo"),
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this section (repeat): "
                                                   "{sections}")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of every section")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables; still prints "
                                        "the result: the report's path")] = False,
) -> None:
    """Run lowdim's measurements on embedded data sets; write tables, plots and index.html."""
    from lowdim.cli import _common as c
    from lowdim.demo import run_demo, select_sections

    select_sections(only)  # unknown section names are refused before any work
    c.check_output("--out", out, folder=True)
    c.on_interrupt(f"the report was not written; plots of finished sections may be in {str(out)!r}; "
                   "run the command again to rebuild it")
    command = "lowdim " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "lowdim demo"
    with c.progress(quiet) as p:
        sections, html = run_demo(out, quiet=quiet, seed=seed, only=only, progress=p, command=command)
    for s in sections:
        for note in s.skipped:
            c.err.print(f"skipped: {note}", markup=False)
    if not quiet:
        for s in sections:
            t = c.table(f"{s.title}  ({s.seconds:.1f} s)", [str(col) for col in s.columns])
            for r in s.rows:
                t.add_row(*[_fmt(v) for v in r])
            c.out.print(t)
    c.out.print(f"report: {html}")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)
