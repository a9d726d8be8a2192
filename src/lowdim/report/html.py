"""A self-contained HTML page from demo sections (tables, text and images)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

from lowdim.io import atomic_path

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.5em 0}
.meta{color:#777;font-size:.9em}.skipped{color:#a60}
"""


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


#: What the abbreviated column names of the reports mean (shown under a table that uses them).
GLOSSARY = {
    "PR": "participation ratio (Σλ)² / Σλ² of the covariance spectrum: a linear dimension",
    "DSE": "diffusion spectral entropy (Liao et al. 2023), in bits",
    "erank": "effective rank exp(entropy of the normalised singular values) (Roy & Vetterli 2007)",
    "ID": "intrinsic dimension",
    "CI": "confidence interval",
    "nDCG@10": "normalised discounted cumulative gain of the top 10 against the BEIR relevance judgments",
    "recall@10": "share of the exact float32 top-10 neighbours found by the compressed search",
}


def _glossary(columns: list[Any]) -> str:
    text = " ".join(map(str, columns))
    used = [f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in GLOSSARY.items()
            if re.search(rf"(?<![\w@]){re.escape(k)}(?![\w@])", text)]
    return f"<p class='meta'>{'; '.join(used)}.</p>" if used else ""


def write_report(path: str | os.PathLike, sections: list[Any], *, title: str = "lowdim report",
                 meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (atomically); images are referenced by relative file name.

    ``meta`` (lowdim version, seed, command, total seconds) is shown under the title, and each
    section shows its own time and what it had to skip.
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if meta:
        parts.append("<p class='meta'>" + " · ".join(
            f"{html.escape(str(k))}: <code>{html.escape(str(v))}</code>" for k, v in meta.items()
            if k != "sections") + "</p>")
    parts.append("<ul>" + "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>"
                                  for i, s in enumerate(sections)) + "</ul>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        for note in getattr(s, "skipped", []):
            parts.append(f"<p class='skipped'>skipped: {html.escape(note)}</p>")
        if s.rows:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in s.columns) + "</tr>")
            for r in s.rows:
                parts.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>")
            parts.append("</table>")
            parts.append(_glossary(s.columns))
        for img in s.images:
            parts.append(f"<img src='{html.escape(img)}' alt='{html.escape(img)}'>")
        parts.append(f"<p class='meta'>section time: {s.seconds:.1f} s</p>")
    parts.append("</body></html>\n")
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return p
