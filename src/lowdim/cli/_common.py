"""Small helpers shared by the subcommands: consoles, --json output, progress bars."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Print JSON on stdout and nothing else (``--json`` output is machine-readable)."""
    if isinstance(obj, str):
        text = obj
    else:
        from lowdim.io import _json_default

        text = json.dumps(obj, indent=2, default=_json_default)
    print(text)


@contextmanager
def progress(quiet: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr, or a do-nothing stand-in when quiet."""
    if quiet:
        yield _NullProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as p:
        yield p


class _NullProgress:
    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        pass

    def advance(self, *a: Any, **k: Any) -> None:
        pass
