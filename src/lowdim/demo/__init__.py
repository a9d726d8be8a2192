"""``lowdim demo``: every measurement on embedded data, as a table and an HTML report.

Each section is a module with ``run(ctx: DemoContext) -> Section``; the list below is explicit.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "DemoContext", "Section", "run_demo"]

#: Section modules, in page order. Each defines ``TITLE`` and ``run(ctx) -> Section``.
SECTIONS: list[str] = [
    "lowdim.demo.id_section",
    "lowdim.demo.layers_section",
    "lowdim.demo.d90_section",
    "lowdim.demo.compress_section",
]


@dataclass
class DemoContext:
    """What a section gets: where to write, how loud to be, a seed, and a progress bar."""

    out_dir: Path
    quiet: bool = False
    seed: int = 0
    progress: Any = None  # rich Progress or a null stand-in

    def path(self, name: str) -> Path:
        return self.out_dir / name


@dataclass
class Section:
    """One block of the demo report.

    Attributes
    ----------
    title : str
    columns : list of str
        Header of the section's summary table.
    rows : list of list
        Table rows (printed on the console and in the HTML).
    images : list of str
        File names (inside the output folder) of the section's plots.
    text : str
        A paragraph of explanation (plain text; HTML-escaped in the page).
    data : dict
        Machine-readable results, written to ``results.json``.
    """

    title: str
    columns: list[str]
    rows: list[list[Any]]
    images: list[str] = field(default_factory=list)
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(out_dir: str | Path = "lowdim-demo", *, quiet: bool = False, seed: int = 0,
             only: list[str] | None = None, progress: Any = None) -> tuple[list[Section], Path]:
    """Run the demo sections and write ``index.html`` plus plots and ``results.json``.

    Parameters
    ----------
    out_dir : path, default="lowdim-demo"
    quiet : bool
    seed : int
    only : list of str, optional
        Section module suffixes to run (e.g. ``["id_section"]``); default all.

    Returns
    -------
    sections, path of the HTML report
    """
    from lowdim.io import write_json
    from lowdim.report.html import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out_dir=out, quiet=quiet, seed=seed, progress=progress)
    sections: list[Section] = []
    for mod_name in SECTIONS:
        if only and not any(mod_name.endswith(o) for o in only):
            continue
        mod = importlib.import_module(mod_name)
        t0 = time.perf_counter()
        sec = mod.run(ctx)
        sec.seconds = time.perf_counter() - t0
        sections.append(sec)
    write_json(out / "results.json", {s.title: {"seconds": s.seconds, **s.data} for s in sections})
    html = write_report(out / "index.html", sections, title="lowdim demo")
    return sections, html
