"""Run the Typer app and turn every way a command can end into one exit code and one stderr line.

This is the only place that maps exceptions to exit codes; every command registered on the app
(including groups added later with ``app.add_typer``) gets it, because :func:`run` wraps the click
command tree itself rather than the individual commands.

====  ==========================================================================================
code  meaning
====  ==========================================================================================
0     success (also ``-h``/``--help``, ``--version``, and bare ``lowdim``, which prints the help)
1     an internal error (a bug: please report it); ``LOWDIM_TRACEBACK=1`` shows the traceback
2     bad input or usage: unknown option, missing or malformed argument, :class:`~lowdim.LowdimError`
3     an optional dependency is missing; the line names ``pip install "lowdim[extra]"``
130   interrupted (Ctrl-C); the line says what was saved and how to resume
====  ==========================================================================================

Both click and the copy of click vendored by typer ≥ 0.2x (``typer._click``) are handled, so a
typer upgrade cannot turn usage errors back into tracebacks.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from lowdim.cli import _common
from lowdim.errors import EXTRA_OF_MODULE, LowdimError, MissingExtraError

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MISSING_EXTRA", "run"]

EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_MISSING_EXTRA, EXIT_INTERRUPTED = 1, 2, 3, 130


def _click_modules() -> list[Any]:
    mods = []
    for name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            pass
    return mods


def _classes(attr: str) -> tuple[type, ...]:
    return tuple(getattr(m, attr) for m in _click_modules() if hasattr(m, attr))


def _say(kind: str, message: str) -> None:
    """Exactly one line on stderr."""
    from rich.markup import escape

    line = " ".join(str(message).split())
    if _common.err.is_terminal:
        _common.err.print(f"[bold red]{kind}:[/] {escape(line)}")
    else:
        print(f"{kind}: {line}", file=sys.stderr, flush=True)


def _instrument(cmd: Any, path: str) -> None:
    """Wrap every leaf command's callback so it first records its name and its flags."""
    subs = getattr(cmd, "commands", None)
    if subs is not None:
        for name, sub in subs.items():
            _instrument(sub, f"{path} {name}")
        return
    callback = cmd.callback
    if callback is None or getattr(callback, "_lowdim_wrapped", False):
        return
    flags = {}
    for p in cmd.params:
        opts = [o for o in p.opts if o.startswith("--")] or list(p.opts)
        if p.name and opts:
            flags[p.name] = opts[0] if opts[0].startswith("-") else opts[0].upper()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _common.begin_command(path, flags)
        return callback(*args, **kwargs)

    wrapped._lowdim_wrapped = True  # type: ignore[attr-defined]
    cmd.callback = wrapped


def _fill_help(cmd: Any) -> None:
    """Fill the registry placeholders of every help text (only when help is being shown)."""
    cmd.help = _common.fill_help(cmd.help)
    for p in cmd.params:
        if getattr(p, "help", None):
            p.help = _common.fill_help(p.help)
    for sub in (getattr(cmd, "commands", None) or {}).values():
        _fill_help(sub)


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                  line: Any = None) -> None:
    _say("warning", _common.translate(str(message)))


def run(app: Any, argv: Sequence[str] | None = None) -> int:
    """Run ``app`` on ``argv`` (default ``sys.argv[1:]``); return the exit code, never raise."""
    import typer.main

    args = list(sys.argv[1:] if argv is None else argv)
    old_show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        cmd = typer.main.get_command(app)
        _instrument(cmd, "lowdim")
        if {"-h", "--help"} & set(args):
            _fill_help(cmd)
        with cmd.make_context("lowdim", args) as ctx:
            cmd.invoke(ctx)
        return 0
    except BaseException as exc:  # the one place that maps every ending
        return _handle(exc)
    finally:
        warnings.showwarning = old_show
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass


def _handle(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    if isinstance(exc, _classes("Exit")):
        return int(getattr(exc, "exit_code", 0) or 0)
    if isinstance(exc, _classes("NoArgsIsHelpError")):
        # bare `lowdim` or a bare command group: its help, like -h
        ctx = getattr(exc, "ctx", None)
        print(ctx.get_help() if ctx is not None else "run 'lowdim -h' for help")
        return 0
    if isinstance(exc, _classes("UsageError")):
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "lowdim"
        _say("error", f"{exc.format_message()} (see '{where} -h')")
        return EXIT_BAD_INPUT
    if isinstance(exc, _classes("ClickException")):
        _say("error", exc.format_message())
        return int(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    if isinstance(exc, (KeyboardInterrupt, *_classes("Abort"))):
        _say("interrupted", _common.interrupt_message())
        return EXIT_INTERRUPTED
    if isinstance(exc, MissingExtraError):
        _say("error", f"{_common.command_path()}: {exc}")
        return EXIT_MISSING_EXTRA
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in EXTRA_OF_MODULE:
        top = (exc.name or "").split(".")[0]
        _say("error", f"{_common.command_path()}: {MissingExtraError(top, EXTRA_OF_MODULE[top])}")
        return EXIT_MISSING_EXTRA
    if isinstance(exc, LowdimError):
        _say("error", _common.translate(str(exc)))
        return EXIT_BAD_INPUT
    if isinstance(exc, BrokenPipeError):
        return EXIT_INTERNAL
    if isinstance(exc, OSError) and exc.filename is not None:
        # the user's file system said no (permission, disk full, …): not a bug in lowdim
        _say("error", f"{exc.strerror or exc}: {exc.filename!s}")
        return EXIT_BAD_INPUT
    if os.environ.get("LOWDIM_TRACEBACK"):
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    _say("internal error", f"{type(exc).__name__}: {exc} — this is a bug in lowdim, please report it "
         "(LOWDIM_TRACEBACK=1 shows the traceback)")
    return EXIT_INTERNAL
