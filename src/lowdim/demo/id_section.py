"""Demo section: intrinsic dimension of sklearn's digits and of manifolds of known ID."""

from __future__ import annotations

import numpy as np

from lowdim.demo import DemoContext, Section

TITLE = "Intrinsic dimension of point clouds"


def run(ctx: DemoContext) -> Section:
    from sklearn.datasets import load_digits

    from lowdim.api import estimate
    from lowdim.datasets import make_manifold
    from lowdim.neighbors import kneighbors
    from lowdim.report.plots import plot_id_result

    cases: list[tuple[str, np.ndarray, str]] = []
    digits = load_digits().data
    cases.append(("sklearn digits (1797 × 64)", digits, "?"))
    for name, dim, amb in [("swiss_roll", 2, 3), ("sphere", 5, 20), ("gaussian_plane", 10, 100), ("cube", 12, 12)]:
        X, d = make_manifold(name, 2500, dimension=dim, ambient=amb, random_state=ctx.seed)
        cases.append((f"{name} (d={d}, D={X.shape[1]})", X, str(d)))
    methods = ["auto", "twonn", "mle", "gride", "pca"]
    task = ctx.progress.add_task("ID of point clouds", total=len(cases)) if ctx.progress else None
    rows, images, data = [], [], {}
    import warnings

    for label, X, true in cases:
        row: list = [label, true]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # digits are integer lattice data; the table says so
            nb = kneighbors(X, 64, random_state=ctx.seed)  # one neighbour graph for every method
            for m in methods:
                r = estimate(nb, method=m, random_state=ctx.seed)
                used = f" ({r.method})" if m == "auto" else ""  # the estimator auto actually used
                row.append(f"{r.dimension:.2f} [{r.ci[0]:.2f}, {r.ci[1]:.2f}]{used}")
                data[f"{label} / {m}"] = r.to_dict()
            loc = estimate(nb, method="twonn", local=True, random_state=ctx.seed)
        row.append(f"{np.median(loc.local):.2f}")
        rows.append(row)
        if label.startswith("sklearn digits"):
            plot_id_result(loc, ctx.path("id_digits.png"), title="sklearn digits: TwoNN")
            images.append("id_digits.png")
        if ctx.progress:
            ctx.progress.advance(task)
    return Section(
        title=TITLE,
        columns=["data", "true ID", "auto (estimator used)", "twonn", "mle", "gride", "pca (90 % variance, linear span)",
                 "median local ID (k=20)"],
        rows=rows,
        images=images,
        text=("Global ID with 95 % confidence intervals from one shared neighbour graph per data set, "
              "and the median of the per-point TwoNN ID over 20-neighbourhoods. PCA measures the linear "
              "span, not the manifold. Digits are integer pixel data: duplicate images are dropped."),
        data=data,
    )
