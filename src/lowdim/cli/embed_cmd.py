"""``lowdim embed TEXTS -o EMB.npy``: offline all-MiniLM-L6-v2 embeddings of your own texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def embed_command(
    texts: Annotated[Path, typer.Argument(help="A .txt file (one text per line) or .jsonl with a text field")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the embeddings (.npy)")],
    field: Annotated[str, typer.Option("--field", help="Text field of .jsonl rows")] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per batch")] = 32,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary")] = False,
) -> None:
    """Embed TEXTS with the bundled all-MiniLM-L6-v2 (384-d, unit length); never downloads."""
    from lowdim.cli._common import err
    from lowdim.embed import embed_texts, read_texts
    from lowdim.errors import LowdimError
    from lowdim.io import save_array

    if output.suffix.lower() != ".npy":
        raise LowdimError(f"--output {str(output)!r} must end in .npy")
    rows = read_texts(texts, field=field)
    E = embed_texts(rows, batch_size=batch_size, show_progress=not quiet)
    save_array(output, E)
    if not quiet:
        err.print(f"embedded {len(rows)} texts → {output} ({E.shape[0]} × {E.shape[1]}, float32, unit length)")
