"""The ``lowdim`` command. Thin: parse, call the public API, print or save.

Each subcommand lives in its own module and is registered here explicitly. How a command ends
(exit codes, the one stderr line, Ctrl-C) is decided in one place, :mod:`lowdim.cli._run`, for every
command registered below; the shared conventions (output options, ``--quiet``, checks before any
work) are in :mod:`lowdim.cli._common`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lowdim.cli import compress_cmd, d90_cmd, demo_cmd, embed_cmd, id_cmd, layers_cmd, lowrank_cmd

app = typer.Typer(
    name="lowdim",
    help="How many dimensions does this really need? Intrinsic dimension of data, "
    "representations and training tasks, and compression that uses it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        from lowdim import __version__

        print(f"lowdim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the lowdim version and exit.",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    """How many dimensions does this really need? Intrinsic dimension of data, representations and
    training tasks, and compression that uses it.

    Exit codes: 0 success, 1 internal error (a bug), 2 bad input or usage, 3 a missing optional
    extra (the message names the pip install command), 130 interrupted.
    """


app.command("id")(id_cmd.id_command)
app.command("compress")(compress_cmd.compress_command)
app.command("embed")(embed_cmd.embed_command)
app.command("demo")(demo_cmd.demo_command)
app.command("d90")(d90_cmd.d90_command)
app.command("layers")(layers_cmd.layers_command)
app.add_typer(lowrank_cmd.app, name="lowrank")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lowdim`` console script: returns on success, else exits with the code
    chosen by :mod:`lowdim.cli._run` (2 bad input, 3 missing extra, 130 interrupted, …)."""
    from lowdim.cli._run import run

    code = run(app, argv)
    if code:
        sys.exit(code)
