"""What every subcommand shares: consoles, --json output, progress, flag names, checks done before work.

The conventions of the ``lowdim`` command live here, so that each subcommand only parses and calls:

- ``-o/--out PATH`` is a command's main output (a file or a folder, said in its help), ``--plot FILE``
  a figure (.png/.svg/.pdf), ``--json`` prints the result as JSON on stdout and nothing else;
- ``--quiet`` silences progress and chatter (notes, "saved to" lines) but still prints the result;
- every argument is checked (:func:`check_choice`, :func:`check_output`, …) before any work starts,
  and errors name the flags the user typed (:func:`flag_aliases`, :func:`translate`);
- a command that saves partial results says how to resume them (:func:`on_interrupt`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from lowdim.errors import LowdimError

# Piped output (CI logs, `| less`) gets a wide console so tables are not wrapped inside cells at 80
# columns; a terminal keeps its own width.
_WIDE = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDE)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PLOT_SUFFIXES = (".png", ".svg", ".pdf")

# ------------------------------------------------------------------ per-command state (set by cli)
_state: dict[str, Any] = {"command": "lowdim", "flags": {}, "interrupt": None}


def begin_command(path: str, flags: dict[str, str]) -> None:
    """Called by :mod:`lowdim.cli` before each command body: its name and ``{param: flag}`` map."""
    _state.update(command=path, flags=dict(flags), interrupt=None)


def command_path() -> str:
    return str(_state["command"])


def flag_aliases(**aliases: str) -> None:
    """Declare library parameter names that a flag of this command sets, e.g. ``n_neighbors="--k"``.

    Error messages from the library that name ``n_neighbors`` then name ``--k`` instead.
    """
    _state["flags"].update(aliases)


def translate(message: str) -> str:
    """Rewrite Python parameter names in ``message`` into the flags of the running command.

    ``name=value`` becomes ``--flag value``; a bare identifier containing ``_`` (``threshold_rule``)
    becomes ``--flag``; plain words (``method``) are left alone unless followed by ``=``.
    """
    for name, flag in sorted(_state["flags"].items(), key=lambda kv: -len(kv[0])):
        if not flag.startswith("-") or name == flag:
            continue
        message = re.sub(rf"(?<![\w\-.']){re.escape(name)}=", flag + " ", message)
        if "_" in name:
            message = re.sub(rf"(?<![\w\-.]){re.escape(name)}(?![\w(])", flag, message)
    return message


def on_interrupt(message: str) -> None:
    """What Ctrl-C should say for the running command (what was saved, how to resume)."""
    _state["interrupt"] = message


def interrupt_message() -> str:
    return str(_state["interrupt"] or "nothing was written (outputs are saved only when a command finishes)")


# ------------------------------------------------------------------------ checks before any work
def check_choice(flag: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (case-sensitive), else a LowdimError naming ``flag``."""
    choices = list(choices)
    if value not in choices:
        raise LowdimError(f"{flag} {value!r} is not one of: {', '.join(map(str, choices))}")
    return value


def check_range(flag: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> Any:
    """A number inside [low, high] (ends open where asked), else a LowdimError naming ``flag``."""
    if value is None:
        return value
    bad = (low is not None and (value < low or (low_open and value == low))) or \
          (high is not None and (value > high or (high_open and value == high)))
    if bad or value != value:
        lb, rb = ("(" if low_open else "["), (")" if high_open else "]")
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise LowdimError(f"{flag} {value!r} is out of range; allowed: {lb}{lo}, {hi}{rb}")
    return value


def check_input(flag: str, path: Path | None, *, kind: str = "file") -> Path | None:
    """An existing input: ``kind`` "file", "folder" or "any"; else a LowdimError naming ``flag``."""
    if path is None:
        return None
    if not path.exists():
        raise LowdimError(f"{flag} {str(path)!r} does not exist; check the path")
    if kind == "file" and path.is_dir():
        raise LowdimError(f"{flag} {str(path)!r} is a folder; pass a file")
    if kind == "folder" and not path.is_dir():
        raise LowdimError(f"{flag} {str(path)!r} is a file; pass a folder")
    return path


def check_output(flag: str, path: Path | None, suffixes: Iterable[str] = (), *, folder: bool = False) -> Path | None:
    """An output path that can be written: the right extension, not a folder (or a folder when
    ``folder``), inside a folder that exists or can be made. Nothing is created here."""
    if path is None:
        return None
    suffixes = tuple(suffixes)
    if folder:
        if path.exists() and not path.is_dir():
            raise LowdimError(f"{flag} {str(path)!r} is a file; pass a folder (it is created if absent)")
    else:
        if suffixes and path.suffix.lower() not in suffixes:
            raise LowdimError(f"{flag} {str(path)!r} must end in {' or '.join(suffixes)}")
        if path.is_dir():
            raise LowdimError(f"{flag} {str(path)!r} is a folder; pass a file name")
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise LowdimError(f"{flag} {str(path)!r}: cannot write into {str(parent)!r} (not a writable folder)")
    return path


# ----------------------------------------------------------------- names listed in --help texts
def _methods() -> str:
    from lowdim.estimators.registry import available

    return ", ".join(available())


def _tasks() -> str:
    from lowdim.subspace.tasks import TASKS

    return ", ".join(TASKS)


def _sections() -> str:
    from lowdim.demo import section_names

    return ", ".join(section_names())


#: Placeholders a help text may contain; filled from the registries only when help is shown
#: (the registries import scipy and friends, too slow for every start of the command).
HELP_LISTS: dict[str, Any] = {"{methods}": _methods, "{tasks}": _tasks, "{sections}": _sections}


def fill_help(text: str | None) -> str | None:
    if not text:
        return text
    for key, fn in HELP_LISTS.items():
        if key in text:
            text = text.replace(key, fn())
    return text


# -------------------------------------------------------------------------------- printing
def print_json(obj: Any) -> None:
    """Print JSON on stdout and nothing else (``--json`` output is machine-readable)."""
    if isinstance(obj, str):
        text = obj
    else:
        from lowdim.io import _json_default

        text = json.dumps(obj, indent=2, default=_json_default)
    print(text)


def table(title: str, columns: Iterable[str]) -> Any:
    """A rich table in the house style (compact box; cells never wrapped in piped output)."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for c in columns:
        t.add_column(c, no_wrap=_WIDE is not None)
    return t


# -------------------------------------------------------------------------------- progress
@contextmanager
def progress(quiet: bool = False) -> Iterator[Any]:
    """Progress on stderr that leaves nothing behind.

    In a terminal: a rich bar (spinner, count, elapsed time) that is erased when the block ends,
    whether it succeeds or fails, so an error message is never preceded by a dead bar. Piped
    stderr: a plain line per change of step, at most every 10 s, and only once a step has run 2 s.
    ``quiet``: nothing.
    """
    if quiet:
        yield _NullProgress()
        return
    if not err.is_terminal:
        yield _LineProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as p:
        yield p


class _NullProgress:
    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        pass

    def advance(self, *a: Any, **k: Any) -> None:
        pass


class _LineProgress(_NullProgress):
    """Rich's Progress API, printing throttled plain lines (for logs)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = -1e9
        self.tasks: dict[int, dict] = {}

    def add_task(self, description: str, total: float | None = None, **k: Any) -> int:
        self.tasks[len(self.tasks)] = {"description": description, "completed": 0, "total": total}
        return len(self.tasks) - 1

    def update(self, task: int, **k: Any) -> None:
        t = self.tasks.setdefault(task, {"description": "", "completed": 0, "total": None})
        t.update({key: v for key, v in k.items() if key in ("description", "completed", "total")})
        if "advance" in k:
            t["completed"] += k["advance"]
        self._maybe_print(t)

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def _maybe_print(self, t: dict) -> None:
        now = time.perf_counter()
        if now - self.t0 < 2.0 or now - self.last < 10.0:
            return
        self.last = now
        count = f" {t['completed']:g}/{t['total']:g}" if t.get("total") else ""
        err.print(f"{t['description']}{count} ({now - self.t0:.0f} s)", markup=False)
