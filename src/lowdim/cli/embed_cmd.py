"""``lowdim embed TEXTS -o EMB.npy``: offline all-MiniLM-L6-v2 embeddings of your own texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def embed_command(
    texts: Annotated[Path, typer.Argument(metavar="TEXTS", help="A .txt file (one text per line) or .jsonl "
                                          "with a text field")],
    out: Annotated[Path, typer.Option("--out", "-o", "--output", help="Where to write the embeddings (.npy)")],
    field: Annotated[str, typer.Option("--field", help="Text field of .jsonl rows")] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per batch (≥ 1)")] = 32,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress; the result (summary line) is still printed")] = False,
) -> None:
    """Embed TEXTS with the bundled all-MiniLM-L6-v2 (384-d, unit length); never downloads."""
    from lowdim.cli import _common as c
    from lowdim.embed import embed_texts, read_texts
    from lowdim.io import save_array

    c.check_input("TEXTS", texts)
    c.check_output("--out", out, (".npy",))
    c.check_range("--batch-size", batch_size, low=1)
    rows = read_texts(texts, field=field)
    with c.progress(quiet) as bar:
        bar.add_task(f"embedding {len(rows)} texts", total=None)
        E = embed_texts(rows, batch_size=batch_size)
    save_array(out, E)
    c.out.print(f"embedded {len(rows)} texts → {out} ({E.shape[0]} × {E.shape[1]}, float32, unit length)")
