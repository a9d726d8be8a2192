"""The ``lowdim`` command. Thin: parse, call the public API, print or save.

Each subcommand lives in its own module and is registered here explicitly.
Bad input exits with code 2 and one line on stderr (no traceback).
"""

from __future__ import annotations

import sys

import typer

from lowdim.cli import compress_cmd, d90_cmd, demo_cmd, embed_cmd, id_cmd, layers_cmd
from lowdim.errors import LowdimError

app = typer.Typer(
    name="lowdim",
    help="How many dimensions does this really need? Intrinsic dimension of data, "
    "representations and training tasks, and compression that uses it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("id")(id_cmd.id_command)
app.command("compress")(compress_cmd.compress_command)
app.command("embed")(embed_cmd.embed_command)
app.command("demo")(demo_cmd.demo_command)
app.command("d90")(d90_cmd.d90_command)
app.command("layers")(layers_cmd.layers_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lowdim`` console script."""
    import warnings

    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        err.print(f"[yellow]warning:[/] {message}")

    warnings.showwarning = show_warning
    try:
        app(args=argv, prog_name="lowdim", standalone_mode=False)
    except LowdimError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/] (partial results, if any, were saved atomically)")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and friends
        import click

        if isinstance(exc, click.exceptions.Abort):
            err.print("[red]aborted[/]")
            sys.exit(130)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
