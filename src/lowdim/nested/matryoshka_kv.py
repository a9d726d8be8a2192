"""MatryoshkaKV: nested orthogonal projections of attention keys and values, per layer and head.

Lin et al. (2025), "MatryoshkaKV: Adaptive KV Compression via Trainable Orthogonal Projection"
(ICLR; reference code The-kamisato/MatryoshkaKV-cache). For every layer and head an orthogonal
``U ∈ R^{d_h×d_h}`` rotates the keys (another one the values); the cache keeps only the first
``k`` coordinates ``K U[:, :k]``. Queries are rotated by the same ``U`` (scores
``Q U_k (K U_k)ᵀ``), and values are rotated back by ``U_kᵀ`` (foldable into the output
projection), so with ``k = d_h`` the model is unchanged. ``U`` starts from PCA of calibration
keys/values and is trained by distillation to the original model with randomly sampled nested
``k`` per head, staying orthogonal through :func:`torch.nn.utils.parametrizations.orthogonal`;
a greedy per-head search then spends a cache budget where it hurts least.

Implementation. The wrapped ``key``/``value`` layer returns ``K U_k U_kᵀ``: attention scores
``Q (K U_k U_kᵀ)ᵀ = (Q U_k)(K U_k)ᵀ`` and values ``P (V U_k U_kᵀ) = (P V U_k) U_kᵀ`` are exactly
those of the compressed cache, for any attention kernel, while the stored coordinates
(``cache_fraction``) are counted as ``k`` per head. Heads at full rank skip the projection, so
the full-rank model is the original bit for bit. PCA here is of the *uncentred* second moment
``Σ kᵀk`` (the projection must reconstruct K itself, not K − mean).

Works on modules with ``key``/``value`` ``nn.Linear`` layers and ``num_attention_heads`` /
``attention_head_size`` (BERT-family self-attention, e.g. all-MiniLM-L6-v2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

torch = require("torch", "torch")

__all__ = ["HeadProjection", "KVProjector", "greedy_ranks"]


class HeadProjection(torch.nn.Module):
    """``linear(x)`` followed by the per-head projection ``y_h ↦ y_h U_h[:, :k_h] U_h[:, :k_h]ᵀ``."""

    def __init__(self, linear: Any, n_heads: int, U0: Any) -> None:
        super().__init__()
        from torch.nn.utils.parametrizations import orthogonal

        self.linear, self.n_heads = linear, int(n_heads)
        self.head_dim = int(U0.shape[-1])
        self.U = torch.nn.Parameter(torch.eye(self.head_dim).repeat(self.n_heads, 1, 1))
        orthogonal(self, "U")
        with torch.no_grad():
            self.U = U0.to(torch.float32)
        self.register_buffer("ranks", torch.full((self.n_heads,), self.head_dim, dtype=torch.long))
        self.force = False  # tests: project even at full rank

    def forward(self, x: Any) -> Any:
        y = self.linear(x)
        if not self.force and bool((self.ranks == self.head_dim).all()):
            return y
        yh = y.view(*y.shape[:-1], self.n_heads, self.head_dim)
        U = self.U.to(y.dtype)
        mask = (torch.arange(self.head_dim, device=y.device) < self.ranks[:, None]).to(y.dtype)
        c = torch.einsum("...hd,hde->...he", yh, U) * mask
        return torch.einsum("...he,hde->...hd", c, U).reshape(y.shape)


def _attention_modules(model: Any) -> list[Any]:
    mods = [m for m in model.modules() if isinstance(getattr(m, "key", None), torch.nn.Linear)
            and isinstance(getattr(m, "value", None), torch.nn.Linear) and hasattr(m, "num_attention_heads")]
    if not mods:
        raise LowdimError(f"{type(model).__name__} has no self-attention modules with key/value Linear layers and "
                          "num_attention_heads (BERT-family); MatryoshkaKV cannot attach")
    return mods


class KVProjector:
    """Attach MatryoshkaKV projections to a transformer, initialise them by PCA, train, search ranks.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The encoder (e.g. ``SentenceTransformer[0].auto_model``); changed in place: its ``key``
        and ``value`` layers become :class:`HeadProjection` wrappers (:meth:`detach` undoes it).
        Its own weights are frozen; only the ``U`` matrices are trainable.
    calibration : sequence of dict
        Batches of model inputs (``input_ids``, ``attention_mask`` …) for the PCA.

    Attributes
    ----------
    shape : (n_layers, 2, n_heads)
        Layout of a rank array (axis 1: 0 = keys, 1 = values).
    eigenvalues_ : ndarray of shape (n_layers, 2, n_heads, head_dim)
        Calibration second-moment spectrum per head, descending.
    """

    def __init__(self, model: Any, calibration: Sequence[dict]) -> None:
        self.model = model
        self.attn = _attention_modules(model)
        a0 = self.attn[0]
        self.n_heads, self.head_dim = int(a0.num_attention_heads), int(a0.attention_head_size)
        self.shape = (len(self.attn), 2, self.n_heads)
        for p in model.parameters():
            p.requires_grad_(False)
        moments = self._moments(calibration)
        evals = np.zeros((*self.shape, self.head_dim))
        self.projections: list[list[HeadProjection]] = []
        for i, a in enumerate(self.attn):
            row = []
            for j, name in enumerate(("key", "value")):
                w, V = torch.linalg.eigh(moments[i][j])  # ascending
                w, V = w.flip(-1), V.flip(-1)
                evals[i, j] = w.clamp_min(0).numpy()
                proj = HeadProjection(getattr(a, name), self.n_heads, V.float())
                setattr(a, name, proj)
                row.append(proj)
            self.projections.append(row)
        self.eigenvalues_ = evals

    def _moments(self, calibration: Sequence[dict]) -> list:
        if not calibration:
            raise LowdimError("calibration is empty; pass at least one batch of model inputs")
        acc = [[torch.zeros(self.n_heads, self.head_dim, self.head_dim, dtype=torch.float64) for _ in range(2)]
               for _ in self.attn]
        hooks = []
        state: dict = {}

        def hook(i: int, j: int) -> Any:
            def fn(_m: Any, _inp: Any, out: Any) -> None:
                mask = state["mask"].reshape(-1).bool()
                y = out.detach().reshape(-1, self.n_heads, self.head_dim)[mask].double()
                acc[i][j] += torch.einsum("nhd,nhe->hde", y, y)
            return fn
        for i, a in enumerate(self.attn):
            hooks += [a.key.register_forward_hook(hook(i, 0)), a.value.register_forward_hook(hook(i, 1))]
        try:
            with torch.no_grad():
                for batch in calibration:
                    state["mask"] = batch["attention_mask"]
                    self.model(**batch)
        finally:
            for h in hooks:
                h.remove()
        return acc

    # ---------------------------------------------------------------------------- ranks
    def full_ranks(self) -> np.ndarray:
        return np.full(self.shape, self.head_dim, dtype=np.int64)

    def set_ranks(self, ranks: Any) -> None:
        """Ranks per (layer, key/value, head); an int sets every head."""
        r = np.broadcast_to(np.asarray(ranks, dtype=np.int64), self.shape)
        if r.min() < 0 or r.max() > self.head_dim:
            raise LowdimError(f"ranks must lie in 0..{self.head_dim} (head dimension), got {r.min()}..{r.max()}")
        for i, row in enumerate(self.projections):
            for j, p in enumerate(row):
                p.ranks.copy_(torch.from_numpy(np.array(r[i, j])))

    def ranks(self) -> np.ndarray:
        return np.array([[p.ranks.numpy() for p in row] for row in self.projections])

    def cache_fraction(self, ranks: Any = None) -> float:
        """Stored K/V coordinates relative to the uncompressed cache."""
        r = self.ranks() if ranks is None else np.asarray(ranks)
        return float(np.broadcast_to(r, self.shape).sum() / (np.prod(self.shape) * self.head_dim))

    def parameters(self) -> list[Any]:
        return [p.parametrizations.U.original for row in self.projections for p in row]

    def detach(self) -> Any:
        """Put the original key/value layers back and return the model."""
        for a, row in zip(self.attn, self.projections):
            a.key, a.value = row[0].linear, row[1].linear
        return self.model

    def orthogonality_error(self) -> float:
        """max |UᵀU − I| over all projections."""
        eye = torch.eye(self.head_dim)
        with torch.no_grad():
            return max(float((p.U.transpose(-1, -2) @ p.U - eye).abs().max()) for row in self.projections for p in row)

    # ---------------------------------------------------------------------------- training
    def _hidden(self, batch: dict) -> Any:
        return self.model(**batch).last_hidden_state

    def distill(self, batches: Sequence[dict], *, steps: int = 100, lr: float = 1e-3,
                choices: Sequence[int] | None = None, seed: int = 0) -> list[float]:
        """Train the ``U`` matrices to reproduce the original model's token states.

        Each step draws one batch and, for every (layer, key/value, head), a rank from
        ``choices`` (default ``head_dim/8, 2·head_dim/8, …, head_dim``); the loss is the mean
        squared error of the last hidden states over real tokens, relative to the original's
        mean square. Returns the loss of every step; ranks are reset to full at the end.
        """
        choices = np.asarray(choices if choices is not None else
                             [self.head_dim * i // 8 for i in range(1, 9)], dtype=np.int64)
        if len(batches) == 0 or choices.min() < 1 or choices.max() > self.head_dim:
            raise LowdimError(f"distill needs batches and choices in 1..{self.head_dim}, got {len(batches)} batches, "
                              f"choices={choices.tolist()}")
        rng = np.random.default_rng(seed)
        self.set_ranks(self.head_dim)
        with torch.no_grad():
            teachers = [self._hidden(b) for b in batches]
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        losses = []
        for _ in range(int(steps)):
            i = int(rng.integers(len(batches)))
            self.set_ranks(rng.choice(choices, size=self.shape))
            m = batches[i]["attention_mask"].unsqueeze(-1).to(teachers[i].dtype)
            t = teachers[i]
            loss = (((self._hidden(batches[i]) - t) ** 2) * m).sum() / ((t ** 2) * m).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        self.set_ranks(self.head_dim)
        return losses

    def output_error(self, batches: Sequence[dict], ranks: Any, *, teachers: Sequence[Any] | None = None) -> float:
        """Relative squared error of the last hidden states at ``ranks`` (over real tokens)."""
        with torch.no_grad():
            if teachers is None:
                self.set_ranks(self.head_dim)
                teachers = [self._hidden(b) for b in batches]
            self.set_ranks(ranks)
            num = den = 0.0
            for b, t in zip(batches, teachers):
                m = b["attention_mask"].unsqueeze(-1).to(t.dtype)
                num += float((((self._hidden(b) - t) ** 2) * m).sum())
                den += float(((t ** 2) * m).sum())
        self.set_ranks(self.head_dim)
        return num / den

    def sensitivity(self, batches: Sequence[dict], choices: Sequence[int]) -> np.ndarray:
        """Error table ``E[layer, kv, head, c]``: output error with only that head cut to ``choices[c]``."""
        self.set_ranks(self.head_dim)
        with torch.no_grad():
            teachers = [self._hidden(b) for b in batches]
        E = np.zeros((*self.shape, len(choices)))
        for idx in np.ndindex(*self.shape):
            for c, k in enumerate(choices):
                r = self.full_ranks()
                r[idx] = k
                E[(*idx, c)] = 0.0 if k == self.head_dim else self.output_error(batches, r, teachers=teachers)
        return E

    def reconstruction_errors(self, batches: Sequence[dict], choices: Sequence[int]) -> np.ndarray:
        """Cheap error table: relative reconstruction error ``‖Y − Y U_k U_kᵀ‖² / ‖Y‖²`` of each head's
        keys/values at each rank in ``choices``, from one forward pass over ``batches`` (current U)."""
        caught: dict = {}
        hooks = []
        for i, row in enumerate(self.projections):
            for j, p in enumerate(row):
                def fn(_m: Any, _inp: Any, out: Any, key: tuple = (i, j)) -> None:
                    caught.setdefault(key, []).append((out.detach(), state["mask"]))
                hooks.append(p.linear.register_forward_hook(fn))
        state: dict = {}
        try:
            with torch.no_grad():
                for b in batches:
                    state["mask"] = b["attention_mask"].reshape(-1).bool()
                    self.model(**b)
        finally:
            for h in hooks:
                h.remove()
        E = np.zeros((*self.shape, len(choices)))
        with torch.no_grad():
            for (i, j), items in caught.items():
                Y = torch.cat([o.reshape(-1, self.n_heads, self.head_dim)[m] for o, m in items]).double()
                C = torch.einsum("nhd,hde->nhe", Y, self.projections[i][j].U.double())  # rotated coordinates
                energy = (C ** 2).sum(0)  # (heads, head_dim): energy per coordinate
                total = energy.sum(1)
                for c, k in enumerate(choices):
                    E[i, j, :, c] = (energy[:, int(k):].sum(1) / total).numpy()
        return E


def greedy_ranks(errors: np.ndarray, choices: Sequence[int], budget: float, head_dim: int) -> np.ndarray:
    """Greedy per-head ranks under a cache budget from a separable error table.

    Starting with every head at ``head_dim``, repeatedly lower the one head whose next smaller
    rank in ``choices`` adds the least error per cache coordinate saved, until the stored
    coordinates are at most ``budget`` × the full cache. ``errors[..., c]`` is the error of a head
    at rank ``choices[c]`` with all other heads full (:meth:`KVProjector.sensitivity`); errors of
    different heads are assumed to add up.

    Examples
    --------
    >>> E = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0]])  # head 0 is free to cut, head 1 is not
    >>> greedy_ranks(E, [8, 16, 32], 0.625, 32).tolist()
    [8, 32]
    """
    choices = [int(c) for c in choices]
    if sorted(choices) != choices or choices[-1] != head_dim or len(set(choices)) != len(choices):
        raise LowdimError(f"choices={choices} must be strictly increasing and end at head_dim={head_dim}")
    if not 0 < budget <= 1:
        raise LowdimError(f"budget={budget!r} must be a fraction of the full cache in (0, 1]")
    E = np.asarray(errors, dtype=float)
    shape = E.shape[:-1]
    level = np.full(shape, len(choices) - 1)
    total, target = np.prod(shape) * head_dim, budget * np.prod(shape) * head_dim
    used = float(total)
    while used > target + 1e-9:
        best, best_cost = None, np.inf
        for idx in np.ndindex(*shape):
            c = level[idx]
            if c == 0:
                continue
            saved = choices[c] - choices[c - 1]
            cost = (E[(*idx, c - 1)] - E[(*idx, c)]) / saved
            if cost < best_cost:
                best, best_cost = idx, cost
        if best is None:
            raise LowdimError(f"budget={budget} is below the smallest cache the choices allow "
                              f"({choices[0] / head_dim:.3f} of full)")
        used -= choices[level[best]] - choices[level[best] - 1]
        level[best] -= 1
    return np.asarray(choices)[level]
