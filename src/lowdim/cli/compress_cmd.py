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
    emb: Annotated[Path, typer.Argument(help="Corpus embeddings (.npy/.npz/… one row per document)")],
    queries: Annotated[Path | None, typer.Option("--queries", help="Query embeddings; default: held-out corpus rows (label-free)")] = None,
    qrels: Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV (needs --beir or id files for row ids)")] = None,
    beir: Annotated[Path | None, typer.Option("--beir", help="BEIR folder: corpus/query ids (and qrels/test.tsv) for the rows")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Bytes per vector ('96B') or compression ratio ('16x')")] = None,
    min_recall: Annotated[float | None, typer.Option("--min-recall", help="Smallest codec with recall@10 ≥ R")] = None,
    metric: Annotated[str, typer.Option("--metric", help="ip | cosine")] = "ip",
    key: Annotated[str | None, typer.Option("--key", help="Array name inside .npz for the corpus")] = None,
    query_key: Annotated[str | None, typer.Option("--query-key", help="Array name inside .npz for the queries")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Save the fitted codec (.npz)")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the front plot (.png/.svg/.pdf)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON only")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, no progress")] = False,
) -> None:
    """Pick a codec for EMB under a budget (default 16x) and show bytes vs recall@10."""
    from lowdim.cli._common import out as console
    from lowdim.cli._common import print_json, progress
    from lowdim.compress.frontier import recommend
    from lowdim.errors import LowdimError
    from lowdim.io import load_points

    if budget is not None and min_recall is not None:
        raise LowdimError("give --budget or --min-recall, not both")
    budget_bytes, ratio = parse_budget(budget) if budget is not None else (None, None)
    if budget is None and min_recall is None:
        ratio = 16.0
    X = load_points(emb, key=key)
    Q = load_points(queries, key=query_key) if queries is not None else None
    rel = doc_ids = query_ids = None
    if beir is not None or qrels is not None:
        rel, doc_ids, query_ids = _judgments(beir, qrels, X, Q)
    with progress(quiet or json_out) as bar:
        task = bar.add_task("evaluating codecs", total=None)
        rec = recommend(X, Q, budget_bytes=budget_bytes, ratio=ratio, min_recall=min_recall, qrels=rel,
                        doc_ids=doc_ids, query_ids=query_ids, metric=metric, random_state=seed,
                        progress=lambda name: bar.update(task, description=f"evaluating {name}", advance=1))
    if out is not None:
        rec.codec.save(out)
    if plot is not None:
        from lowdim.report.compress_plots import plot_frontier

        plot_frontier(rec.frontier, plot, chosen=rec.report, title=emb.name)
    if json_out:
        print_json(rec.to_dict())
        return
    if quiet:
        return
    from rich.table import Table

    fr = rec.frontier
    t = Table(title=f"{emb.name}: {fr.n_corpus} × {fr.dim}, intrinsic dimension {fr.dimension:.1f} "
                    f"[{fr.dimension_ci[0]:.1f}, {fr.dimension_ci[1]:.1f}]"
                    + (" (label-free: held-out corpus rows as queries)" if fr.label_free else ""))
    cols = ["codec", "bytes/vector", "ratio", "recall@10 [95% CI]", "nDCG@10", "encode vec/s", "on front"]
    for c in cols:
        t.add_column(c)
    front = {id(r) for r in fr.front}
    for r in sorted(fr.reports, key=lambda r: -r.bytes_per_vector):
        mark = "[bold green]◀ chosen[/]" if r is rec.report else ("yes" if id(r) in front else "")
        t.add_row(r.name, str(r.bytes_per_vector), f"{r.compression_ratio:.0f}x",
                  f"{r.recall:.3f} [{r.recall_ci[0]:.3f}, {r.recall_ci[1]:.3f}]",
                  "-" if r.ndcg_at_10 is None else f"{r.ndcg_at_10:.4f}", f"{r.encode_vectors_per_s:,.0f}", mark)
    console.print(t)
    if fr.float32_ndcg is not None:
        console.print(f"float32 exact search: nDCG@10 = {fr.float32_ndcg:.4f}")
    console.print(f"chosen: {rec.report.name} ({rec.reason}); {fr.seconds:.1f} s"
                  + (f"; saved to {out}" if out else ""))


def _judgments(beir: Path | None, qrels: Path | None, X, Q):  # type: ignore[no-untyped-def]
    """Qrels plus the ids of the corpus and query rows, from a BEIR folder."""
    from lowdim.datasets.beir import load_beir, load_qrels
    from lowdim.errors import LowdimError

    if Q is None:
        raise LowdimError("qrels need the query embeddings: pass --queries Q.npy")
    if beir is None:
        raise LowdimError("--qrels needs --beir DIR (corpus.jsonl/queries.jsonl give the ids of the rows)")
    col = load_beir(beir, split="test")
    rel = load_qrels(qrels) if qrels is not None else col.qrels
    if len(col.doc_ids) != len(X):
        raise LowdimError(f"{beir}: corpus.jsonl has {len(col.doc_ids)} documents but the embeddings have "
                          f"{len(X)} rows; they must be in the same order")
    qids = col.query_ids
    if len(qids) != len(Q):
        judged = [q for q in qids if q in rel]
        if len(judged) != len(Q):
            raise LowdimError(f"{beir}: queries.jsonl has {len(qids)} queries ({len(judged)} judged) but the "
                              f"query embeddings have {len(Q)} rows")
        qids = judged
    return rel, col.doc_ids, qids
