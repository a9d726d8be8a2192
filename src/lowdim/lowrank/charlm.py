"""A tiny character-level language model bed for comparing low-rank training methods.

The text is Python's own standard-library source (the ``*.py`` files directly in the running
interpreter's ``stdlib`` directory, found with :mod:`sysconfig`; nothing is downloaded). Each
file goes to the held-out split when ``crc32(file name) % 10 == 0`` (about 10 % of the files),
so the split depends only on the file names, not on their order or on the Python version's file
list. Characters outside ASCII map to one reserved token (0), so the vocabulary is 128.

The model is a pre-LayerNorm causal transformer (GPT-2 layout: token + learned position
embedding, ``n_layers`` blocks of attention and a 4x MLP, tied output head). Every linear map
inside the blocks (``qkv``, ``proj``, ``fc1``, ``fc2``) is built by a ``linear_factory(in, out,
name)`` hook, so a parameterisation (W = BA, sparse + low rank, spectral, ...) replaces them all
at once; embeddings, LayerNorms and the head stay dense, as in GaLore, SLTrain and SST.

:meth:`CharLMBed.train` trains with a fixed token budget (``steps * batch_size * seq_len``) and a
seed, and returns a plain ``dict``: held-out perplexity and bits per character, trainable and
stored parameter counts, optimizer-state bytes (every tensor the optimizer keeps, including
projection matrices inside GaLore-style state objects; the peak over the steps, measured after
``optimizer.step()`` before the ``on_step`` hook, which may reset state), and the median step
time (forward, backward, optimizer step and hook; the state measurement is not timed).

Examples
--------
>>> from lowdim.lowrank.charlm import CharLMBed, CharLMConfig
>>> bed = CharLMBed(CharLMConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32),
...                 max_train_chars=20_000, max_eval_chars=2_048)
>>> res = bed.train(steps=3, batch_size=4, seed=0)
>>> 1 < res["perplexity"] < 1000, res["tokens"], res["trainable_params"] > 0
(True, 384, True)
"""

from __future__ import annotations

import math
import sysconfig
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["CharLMBed", "CharLMConfig", "optimizer_state_bytes", "stdlib_text"]

VOCAB = 128


def stdlib_text(*, split: str = "train", stdlib: str | None = None) -> str:
    """Concatenated source of the top-level ``*.py`` files of the standard library.

    Parameters
    ----------
    split : {"train", "eval"}
        ``"eval"`` keeps the files with ``crc32(name) % 10 == 0``, ``"train"`` the others.
    stdlib : str, optional
        Directory to read; default ``sysconfig.get_paths()["stdlib"]``.
    """
    if split not in ("train", "eval"):
        raise LowdimError(f"split={split!r} is not allowed; use 'train' or 'eval'")
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    if not files:
        raise LowdimError(f"stdlib={str(root)!r} holds no *.py files; pass the directory of a "
                          "Python standard library")
    keep = [f for f in files if (zlib.crc32(f.name.encode()) % 10 == 0) == (split == "eval")]
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in keep)


def encode(text: str) -> np.ndarray:
    """Characters to token ids in [0, 128): ASCII code, non-ASCII to 0."""
    a = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.where(a < VOCAB, a, 0).astype(np.int64)


def optimizer_state_bytes(optimizer: Any) -> int:
    """Bytes of every tensor an optimizer keeps in ``optimizer.state``.

    Tensors nested in lists, tuples, dicts or in plain objects' attributes (GaLore keeps its
    projector as an object holding the projection matrix) are counted once each.
    """
    import torch

    seen: set[int] = set()

    def size(v: Any, depth: int = 0) -> int:
        if isinstance(v, torch.Tensor):
            if id(v) in seen:
                return 0
            seen.add(id(v))
            return v.numel() * v.element_size()
        if depth > 3:
            return 0
        if isinstance(v, dict):
            return sum(size(x, depth + 1) for x in v.values())
        if isinstance(v, (list, tuple)):
            return sum(size(x, depth + 1) for x in v)
        if hasattr(v, "__dict__") and not isinstance(v, torch.nn.Module):
            return sum(size(x, depth + 1) for x in vars(v).values())
        return 0

    return sum(size(s) for s in optimizer.state.values())


@dataclass(frozen=True)
class CharLMConfig:
    """Shape of the character model: width, depth, heads, context length."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    seq_len: int = 128
    mlp_ratio: int = 4

    def check(self) -> None:
        for k in ("d_model", "n_layers", "n_heads", "seq_len", "mlp_ratio"):
            if int(getattr(self, k)) < 1:
                raise LowdimError(f"{k}={getattr(self, k)!r} must be a positive integer")
        if self.d_model % self.n_heads:
            raise LowdimError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                              "choose n_heads dividing d_model")


def _build_model(cfg: CharLMConfig, linear_factory: Callable[..., Any] | None) -> Any:
    torch = require("torch", "torch")
    nn, F = torch.nn, torch.nn.functional

    def lin(i: int, o: int, name: str) -> Any:
        return nn.Linear(i, o) if linear_factory is None else linear_factory(i, o, name)

    class Block(nn.Module):
        def __init__(self, li: int) -> None:
            super().__init__()
            d = cfg.d_model
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv = lin(d, 3 * d, f"blocks.{li}.qkv")
            self.proj = lin(d, d, f"blocks.{li}.proj")
            self.fc1 = lin(d, cfg.mlp_ratio * d, f"blocks.{li}.fc1")
            self.fc2 = lin(cfg.mlp_ratio * d, d, f"blocks.{li}.fc2")

        def forward(self, x: Any) -> Any:
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            h = cfg.n_heads
            q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class CharLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(VOCAB, cfg.d_model)
            self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
            self.blocks = nn.ModuleList(Block(i) for i in range(cfg.n_layers))
            self.ln_f = nn.LayerNorm(cfg.d_model)
            nn.init.normal_(self.tok.weight, std=0.02)  # GPT-2 init: tied head starts near uniform
            nn.init.normal_(self.pos.weight, std=0.02)

        def forward(self, idx: Any) -> Any:
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.ln_f(x) @ self.tok.weight.T

    return CharLM()


class CharLMBed:
    """Data, model builder and training loop of the character-LM comparison.

    Parameters
    ----------
    config : CharLMConfig, optional
        Model shape (default: 4 layers, width 128, 4 heads, context 128).
    max_train_chars, max_eval_chars : int
        Characters kept from the start of each split (the eval text is scored in
        non-overlapping windows of ``seq_len``).
    stdlib : str, optional
        Standard-library directory (default: the running interpreter's).
    """

    def __init__(self, config: CharLMConfig | None = None, *, max_train_chars: int = 4_000_000,
                 max_eval_chars: int = 65_536, stdlib: str | None = None) -> None:
        self.config = config or CharLMConfig()
        self.config.check()
        self.train_ids = encode(stdlib_text(split="train", stdlib=stdlib)[:max_train_chars])
        self.eval_ids = encode(stdlib_text(split="eval", stdlib=stdlib)[:max_eval_chars])
        T = self.config.seq_len
        if len(self.eval_ids) < T + 1 or len(self.train_ids) < 2 * T + 2:
            raise LowdimError(f"max_eval_chars={max_eval_chars} / max_train_chars={max_train_chars} "
                              f"leave too little text for seq_len={T}; raise them")

    def build_model(self, linear_factory: Callable[..., Any] | None = None, *, seed: int = 0) -> Any:
        """A fresh model; ``linear_factory(in_features, out_features, name)`` builds each block linear."""
        torch = require("torch", "torch")
        torch.manual_seed(seed)
        return _build_model(self.config, linear_factory)

    def evaluate(self, model: Any, *, batch_size: int = 32) -> float:
        """Mean negative log-likelihood (nats per character) on the held-out windows."""
        torch = require("torch", "torch")
        T = self.config.seq_len
        dev = next(model.parameters()).device
        ids = torch.from_numpy(self.eval_ids).to(dev)
        n = (len(ids) - 1) // T
        x, y = ids[:n * T].view(n, T), ids[1:n * T + 1].view(n, T)
        total = 0.0
        was = model.training
        model.eval()
        with torch.no_grad():
            for s in range(0, n, batch_size):
                out = model(x[s:s + batch_size])
                total += float(torch.nn.functional.cross_entropy(
                    out.reshape(-1, VOCAB), y[s:s + batch_size].reshape(-1), reduction="sum"))
        model.train(was)
        return total / (n * T)

    def train(self, *, steps: int = 300, batch_size: int = 16, seed: int = 0, lr: float = 3e-3,
              linear_factory: Callable[..., Any] | None = None,
              optimizer_factory: Callable[[Any, float], Any] | None = None,
              on_step: Callable[[int, Any, Any], None] | None = None, warmup: int = 20,
              name: str = "full", trainable_params: Callable[[Any], int] | None = None,
              model: Any = None, device: str | None = None) -> dict[str, Any]:
        """Train one model for ``steps`` and return the result ``dict``.

        Parameters
        ----------
        optimizer_factory : callable, optional
            ``optimizer_factory(model, lr) -> torch.optim.Optimizer``; default AdamW
            (weight decay 0.0, betas (0.9, 0.95)). A linear warm-up of ``warmup`` steps and a
            cosine decay to 10 % of ``lr`` are applied through ``LambdaLR``.
        on_step : callable, optional
            ``on_step(step, model, optimizer)`` after each optimizer step (resampling, re-SVD).
        trainable_params : callable, optional
            Counts trainable parameters (default: elements of parameters with ``requires_grad``).
        model : torch.nn.Module, optional
            A model already built (e.g. a converted one); otherwise :meth:`build_model`.
        device : str, optional
            Move the model (before the optimizer is built) and the batches there, e.g. ``"cuda"``.
        """
        torch = require("torch", "torch")
        if int(steps) < 1 or int(batch_size) < 1:
            raise LowdimError(f"steps={steps}, batch_size={batch_size} must both be >= 1")
        model = model if model is not None else self.build_model(linear_factory, seed=seed)
        if device is not None:
            model = model.to(device)
        opt = (optimizer_factory(model, lr) if optimizer_factory is not None else
               torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                 betas=(0.9, 0.95), weight_decay=0.0))

        def sched(s: int) -> float:
            if s < warmup:
                return (s + 1) / warmup
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))

        lrs = torch.optim.lr_scheduler.LambdaLR(opt, sched)
        T = self.config.seq_len
        data = torch.from_numpy(self.train_ids)
        g = torch.Generator().manual_seed(10_000 + seed)
        offs = torch.arange(T + 1)
        losses, times, state_peak = [], [], 0
        model.train()
        for step in range(steps):
            start = torch.randint(0, len(data) - T - 1, (batch_size,), generator=g)
            chunk = data[start[:, None] + offs].to(device or "cpu")
            t0 = time.perf_counter()
            out = model(chunk[:, :-1])
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, VOCAB), chunk[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lrs.step()
            if chunk.is_cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            if step < 3 or step % 10 == 0:  # peak: a hook may reset state (SST rounds)
                state_peak = max(state_peak, optimizer_state_bytes(opt))
            t0 = time.perf_counter()
            if on_step is not None:
                on_step(step, model, opt)
            times.append(dt + time.perf_counter() - t0)
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                break
        nll = self.evaluate(model) if math.isfinite(losses[-1]) else float("nan")
        counter = trainable_params or (lambda m: sum(p.numel() for p in m.parameters()
                                                     if p.requires_grad))
        stored = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        return {
            "method": name, "seed": seed, "steps": len(losses), "batch_size": batch_size, "lr": lr,
            "tokens": len(losses) * batch_size * T, "eval_chars": len(self.eval_ids),
            "eval_nll": nll, "perplexity": math.exp(nll) if math.isfinite(nll) else float("nan"),
            "bits_per_char": nll / math.log(2), "trainable_params": int(counter(model)),
            "stored_params": int(stored), "optimizer_state_bytes": int(max(state_peak, optimizer_state_bytes(opt))),
            "step_time_s": float(np.median(times[min(5, len(times) - 1):])),
            "train_loss": losses, "config": asdict(self.config),
        }
