"""``lowdim compress EMB``: choose a codec for a memory budget and show the storage/recall front."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``"96B"``/``"96"`` → (96 bytes, None); ``"16x"`` → (None, 16.0)."""
    from lowdim.errors import LowdimError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bBxX]?)\s*", text)
    if not m:
        raise LowdimError(f"--budget {text!r} is not understood; write bytes per vector ('96B') or a ratio ('16x')")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "x":
        return None, value
    if value != int(value):
        raise LowdimError(f"--budget {text!r}: bytes per vector must be a whole number")
    return int(value), None


def compress_command(
    emb: Annotated[Path, typer.Argument(metavar="EMB", help="Corpus embeddings (.npy/.npz/.csv/.parquet/"
                                        ".safetensors/.pt; one row per document)")],
    queries: Annotated[Path | None, typer.Option("--queries", help="Query embeddings; default: held-out corpus "
                                                 "rows (label-free)")] = None,
    qrels: Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV (needs --beir for the row ids)")] = None,
    beir: Annotated[Path | None, typer.Option("--beir", help="BEIR folder: corpus/query ids (and qrels/test.tsv) "
                                              "of the rows")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Bytes per vector ('96B') or compression ratio "
                                               "('16x'); default 16x")] = None,
    min_recall: Annotated[float | None, typer.Option("--min-recall", help="Instead of --budget: the smallest "
                                                     "codec with recall@10 ≥ R, R in (0, 1]")] = None,
    metric: Annotated[str, typer.Option("--metric", help="ip (inner product) | cosine")] = "ip",
    key: Annotated[str | None, typer.Option("--key", help="Array name inside .npz for the corpus")] = None,
    query_key: Annotated[str | None, typer.Option("--query-key", help="Array name inside .npz for the queries")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the chosen codec (.npz)")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the front plot (.png/.svg/.pdf)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout, nothing else")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    n_vectors: Annotated[int | None, typer.Option("--n-vectors", help="Corpus size to plan memory for (default: the rows of EMB), e.g. 10000000")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes; the result is still printed")] = False,
) -> None:
    """Pick a codec for EMB under a budget (default 16x) and show bytes vs recall@10."""
    from lowdim.cli import _common as c
    from lowdim.compress.frontier import recommend
    from lowdim.errors import LowdimError
    from lowdim.io import load_points

    # every check before any work
    c.flag_aliases(budget_bytes="--budget", ratio="--budget", min_recall="--min-recall", random_state="--seed",
                   queries="--queries", qrels="--qrels", n_vectors="--n-vectors")
    if n_vectors is not None and n_vectors < 1:
        raise LowdimError(f"--n-vectors {n_vectors} must be a positive corpus size, e.g. 10000000")
    if budget is not None and min_recall is not None:
        raise LowdimError("give --budget or --min-recall, not both")
    budget_bytes, ratio = parse_budget(budget) if budget is not None else (None, None)
    if budget is None and min_recall is None:
        ratio = 16.0
    c.check_range("--min-recall", min_recall, low=0.0, high=1.0, low_open=True)
    c.check_choice("--metric", metric, ("ip", "cosine"))
    c.check_input("EMB", emb)
    c.check_input("--queries", queries)
    c.check_input("--qrels", qrels)
    c.check_input("--beir", beir, kind="folder")
    if qrels is not None and beir is None:
        raise LowdimError("--qrels needs --beir DIR (corpus.jsonl/queries.jsonl give the ids of the rows)")
    if beir is not None and queries is None:
        raise LowdimError("--beir needs the query embeddings: pass --queries Q.npy")
    c.check_output("--out", out, (".npz",))
    c.check_output("--plot", plot, c.PLOT_SUFFIXES)

    X = load_points(emb, key=key)
    Q = load_points(queries, key=query_key) if queries is not None else None
    rel = doc_ids = query_ids = None
    if beir is not None:
        from lowdim.datasets.judgments import judgments_for_rows

        rel, doc_ids, query_ids = judgments_for_rows(beir, len(X), len(Q), qrels=qrels)
    with c.progress(quiet or json_out) as bar:
        task = bar.add_task("evaluating codecs", total=None)
        rec = recommend(X, Q, budget_bytes=budget_bytes, ratio=ratio, min_recall=min_recall, qrels=rel,
                        doc_ids=doc_ids, query_ids=query_ids, metric=metric, random_state=seed, n_vectors=n_vectors,
                        progress=lambda name: bar.update(task, description=f"evaluating {name}", advance=1))
    if out is not None:
        rec.codec.save(out)
    if plot is not None:
        from lowdim.report.compress_plots import plot_frontier

        plot_frontier(rec.frontier, plot, chosen=rec.report, title=emb.name)
    if json_out:
        c.print_json(rec.to_dict())
        return
    fr = rec.frontier
    t = c.table(f"{emb.name}: {fr.n_corpus} × {fr.dim}, intrinsic dimension {fr.dimension:.1f} "
                f"[{fr.dimension_ci[0]:.1f}, {fr.dimension_ci[1]:.1f}]"
                + (" (label-free: held-out corpus rows as queries)" if fr.label_free else ""),
                ("codec", "code B", "fixed B", f"memory B/vec @n={fr.n_vectors:,}", "ratio @n (asymptote)",
                 "recall@10 [95% CI]", "nDCG@10", "encode vec/s", "on front"))
    front = {id(r) for r in fr.front}
    for r in sorted(fr.reports, key=lambda r: -r.memory_bytes):
        mark = "◀ chosen" if r is rec.report else ("yes" if id(r) in front else "")
        t.add_row(r.name, str(r.bytes_per_vector), f"{r.fixed_bytes:,}", f"{r.memory_per_vector:.1f}",
                  f"{r.compression_ratio:.1f}x ({r.asymptotic_ratio:.0f}x)",
                  f"{r.recall:.3f} [{r.recall_ci[0]:.3f}, {r.recall_ci[1]:.3f}]",
                  "-" if r.ndcg_at_10 is None else f"{r.ndcg_at_10:.4f}", f"{r.encode_vectors_per_s:,.0f}", mark)
    c.out.print(t)
    if fr.float32_ndcg is not None:
        c.out.print(f"float32 exact search: nDCG@10 = {fr.float32_ndcg:.4f}")
    c.out.print(f"chosen: {rec.report.name} ({rec.reason})" + ("" if quiet else f"; {fr.seconds:.1f} s")
                + (f"; saved to {out}" if out and not quiet else ""))
