"""Record per-layer measurements over training.

:class:`RepresentationCallback` is for plain PyTorch loops: call ``cb(model, step)`` (or
``cb.on_step(model, step)``) after an optimiser step; every ``every`` steps it captures the chosen
layers on a fixed probe loader and appends one :class:`LayerReport` per layer to ``history``.
``HFRepresentationCallback`` wraps the same recorder as a ``transformers.TrainerCallback``
(records every ``every`` steps, or at every checkpoint save with ``every=None``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lowdim.errors import LowdimError
from lowdim.representations.layers import LayerReport, layer_report

__all__ = ["HFRepresentationCallback", "RepresentationCallback"]  # noqa: F822 (built on first access)


class RepresentationCallback:
    """Capture and measure layers every ``every`` steps of a training loop.

    Parameters
    ----------
    loader : iterable of batches
        A fixed probe set (re-iterated at each recording; keep it small and unshuffled).
    layers : str or list of str, default="*"
        Module names or globs (see :func:`capture_activations`).
    every : int or None, default=100
        Record when ``step % every == 0``; None records on every call.
    pool : str, default="mean"
    max_samples : int, default=2000
        Rows kept per layer (seeded).
    path : path, optional
        Write the history as JSON (atomically) after each recording.
    labels : array-like, optional
        Labels of the probe rows (otherwise taken from ``(x, y)`` batches).
    **measure
        Passed to :func:`measure_layer` (``n_neighbors``, ``method``, ``dse``, …).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> probe = [(torch.randn(200, 5), torch.randint(0, 2, (200,)))]
    >>> cb = RepresentationCallback(probe, layers="1", every=10, dse=False)
    >>> for step in range(21):
    ...     _ = cb(net, step)
    >>> [r.step for r in cb.history]
    [0, 10, 20]
    """

    def __init__(self, loader: Iterable[Any], *, layers: str | Sequence[str] = "*", every: int | None = 100,
                 pool: str = "mean", max_samples: int = 2000, path: str | os.PathLike | None = None,
                 labels: Any = None, random_state: int = 0, **measure: Any) -> None:
        if every is not None and (not isinstance(every, int) or every < 1):
            raise LowdimError(f"every={every!r} must be a positive integer or None")
        self.loader = loader
        self.layers = layers
        self.every = every
        self.pool = pool
        self.max_samples = max_samples
        self.path = Path(path) if path is not None else None
        self.labels = labels
        self.random_state = random_state
        self.measure = measure
        self.history: list[LayerReport] = []

    def __call__(self, model: Any, step: int) -> list[LayerReport] | None:
        return self.on_step(model, step)

    def on_step(self, model: Any, step: int) -> list[LayerReport] | None:
        """Record if ``step`` is due; return the new reports (or None)."""
        if self.every is not None and step % self.every != 0:
            return None
        return self.record(model, step)

    def record(self, model: Any, step: int) -> list[LayerReport]:
        """Capture and measure now, whatever the step."""
        from lowdim.representations.capture import capture_activations

        acts = capture_activations(model, self.loader, layers=self.layers, pool=self.pool,
                                   max_samples=self.max_samples, random_state=self.random_state)
        try:
            reps = layer_report(acts, labels=self.labels if self.labels is not None else acts.labels,
                                step=int(step), random_state=self.random_state,
                                max_samples=self.max_samples, **self.measure)
        finally:
            acts.cleanup()
        self.history.extend(reps)
        if self.path is not None:
            self.save(self.path)
        return reps

    def series(self, layer: str, field: str = "local_mean") -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one field of one layer over the recordings."""
        rows = [(r.step, getattr(r, field)) for r in self.history if r.name == layer]
        if not rows:
            names = sorted({r.name for r in self.history})
            raise LowdimError(f"no recordings of layer {layer!r}; recorded layers: {', '.join(names) or 'none'}")
        return [int(s) for s, _ in rows], [float(v) if v is not None else float("nan") for _, v in rows]

    def to_dict(self) -> dict[str, Any]:
        return {"history": [r.to_dict() for r in self.history]}

    def save(self, path: str | os.PathLike) -> None:
        from lowdim.io import write_json

        write_json(path, self.to_dict())


def _make_hf_class() -> type:
    from lowdim.errors import require

    transformers = require("transformers", "hf")

    class HFRepresentationCallback(transformers.TrainerCallback):
        """A ``transformers.TrainerCallback`` that records layer measurements during ``Trainer.train``.

        Parameters
        ----------
        loader : iterable of dict batches
            Tokenised probe batches (``input_ids``, ``attention_mask``, optional ``labels``).
        every : int or None, default=100
            Record every ``every`` global steps; None records at each checkpoint save instead.
        **kwargs
            As :class:`RepresentationCallback` (``layers``, ``pool``, ``path``, …).
        """

        def __init__(self, loader: Iterable[Any], *, every: int | None = 100, **kwargs: Any) -> None:
            self.recorder = RepresentationCallback(loader, every=every, **kwargs)
            self.every = every

        @property
        def history(self) -> list[LayerReport]:
            return self.recorder.history

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if self.every is not None and model is not None and state.global_step % self.every == 0:
                self.recorder.record(model, state.global_step)

        def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if self.every is None and model is not None:
                self.recorder.record(model, state.global_step)

    return HFRepresentationCallback


def __getattr__(name: str) -> Any:
    if name == "HFRepresentationCallback":
        cls = _make_hf_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
