"""``lowdim demo``: every measurement on embedded data, as a table and an HTML report.

Each section is a module with ``run(ctx: DemoContext) -> Section``; the list below is explicit.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "DemoContext", "Section", "run_demo", "section_names", "select_sections"]

#: Section modules, in page order. Each defines ``TITLE`` and ``run(ctx) -> Section``.
SECTIONS: list[str] = [
    "lowdim.demo.id_section",
    "lowdim.demo.layers_section",
    "lowdim.demo.d90_section",
    "lowdim.demo.compress_section",
    "lowdim.demo.lowrank_section",
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
    skipped: list[str] = field(default_factory=list)  # parts that could not run, and why


def section_names() -> list[str]:
    """Short names of the sections, for ``only=`` and ``lowdim demo --only`` (e.g. ``"id"``)."""
    return [m.rsplit(".", 1)[-1].removesuffix("_section") for m in SECTIONS]


def select_sections(only: list[str] | None) -> list[str]:
    """The section modules ``only`` names (all when empty); an unknown name raises LowdimError."""
    from lowdim.errors import LowdimError

    if not only:
        return list(SECTIONS)
    names = section_names()
    wanted = {o.removesuffix("_section") for o in only}
    unknown = sorted(wanted - set(names))
    if unknown:
        raise LowdimError(f"unknown demo section {', '.join(map(repr, unknown))}; choose from: {', '.join(names)}")
    return [m for m, n in zip(SECTIONS, names) if n in wanted]


def run_demo(out_dir: str | Path = "lowdim-demo", *, quiet: bool = False, seed: int = 0,
             only: list[str] | None = None, progress: Any = None,
             command: str | None = None) -> tuple[list[Section], Path]:
    """Run the demo sections and write ``index.html`` plus plots and ``results.json``.

    Parameters
    ----------
    out_dir : path, default="lowdim-demo"
    quiet : bool
    seed : int
    only : list of str, optional
        Sections to run, by the names of :func:`section_names` (``"id"``, ``"layers"``, ``"d90"``,
        ``"compress"``; ``"id_section"`` also works); default all. An unknown name is refused.
    command : str, optional
        The command line that produced the report, shown in it (default: this Python call).

    Returns
    -------
    sections, path of the HTML report
    """
    import lowdim
    from lowdim.io import write_json
    from lowdim.report.html import write_report

    selected = select_sections(only)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out_dir=out, quiet=quiet, seed=seed, progress=progress)
    sections: list[Section] = []
    t_all = time.perf_counter()
    for mod_name in selected:
        mod = importlib.import_module(mod_name)
        t0 = time.perf_counter()
        sec = mod.run(ctx)
        sec.seconds = time.perf_counter() - t0
        sections.append(sec)
    meta = {"lowdim": lowdim.__version__, "seed": seed,
            "command": command or f"lowdim.demo.run_demo({str(out_dir)!r}, seed={seed}, only={only!r})",
            "seconds": round(time.perf_counter() - t_all, 1),
            "sections": {s.title: round(s.seconds, 1) for s in sections}}
    write_json(out / "results.json", {"meta": meta, **{s.title: {"seconds": s.seconds, "skipped": s.skipped,
                                                                **s.data} for s in sections}})
    html = write_report(out / "index.html", sections, title="lowdim demo", meta=meta)
    return sections, html
