"""The task protocol of :func:`lowdim.subspace.find_d90`, and a generic classifier trainer.

A task bundles three callables:

- ``model_fn(init_seed) -> nn.Module`` builds the model at θ₀;
- ``train_fn(model, *, lr, seed) -> dict`` trains the *trainable* parameters of ``model`` (all of
  them for the baseline, ``z`` (+ λ) for a :class:`~lowdim.subspace.SubspaceModel`) and returns at
  least ``{"val": validation metric}`` (used to pick the learning rate); early stopping belongs here;
- ``evaluate_fn(model) -> float`` returns the reported metric (higher is better, e.g. test accuracy).

Optionally, ``correct_fn(model) -> bool array`` gives per-example correctness on the test set (the
built-in tasks have it). :func:`~lowdim.subspace.find_d90` then takes the metric as its mean and
keeps the array with each run (packed bits), so that two configurations can be compared example
by example (:func:`lowdim.subspace.summary.paired_difference`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClassificationData", "Task", "accuracy", "check_training", "fit_classifier",
           "majority_rate"]


@dataclass
class Task:
    """A training task for a d90 search.

    Parameters
    ----------
    name : str
    model_fn, train_fn, evaluate_fn : callables
        See the module docstring. Must be picklable (module-level functions or
        :func:`functools.partial` of them) to run on Dask workers.
    lrs : sequence of float
        Learning rates tried for each subspace run (the one with the best validation metric
        is kept — a per-d, per-seed learning-rate choice).
    baseline_lrs : sequence of float
        Learning rates tried for the full-training baseline.
    lr_scaling : {"constant", "sqrt"}
        How ``lrs`` follow d unless :func:`~lowdim.subspace.find_d90` is told otherwise
        (see :func:`~lowdim.subspace.search.scaled_lr`).
    metric : str
        Name of the metric ``evaluate_fn`` returns. A name containing "accuracy" means a
        fraction in [0, 1]: :func:`~lowdim.subspace.find_d90` then gives intervals inside [0, 1].
    description : str
    n_test : int, optional
        Test examples ``evaluate_fn`` averages over (adds the test-set error to the intervals).
    chance : float, optional
        Majority-class rate of the test set: a baseline whose interval does not clear it is refused.
    correct_fn : callable, optional
        Per-example correctness on the test set, ``evaluate_fn``'s accuracy example by example
        (see the module docstring).
    """

    name: str
    model_fn: Callable[[int], Any]
    train_fn: Callable[..., dict]
    evaluate_fn: Callable[[Any], float]
    lrs: Sequence[float] = (1e-2,)
    baseline_lrs: Sequence[float] = (1e-3,)
    lr_scaling: str = "constant"
    metric: str = "accuracy"
    description: str = ""
    info: dict = field(default_factory=dict)
    n_test: int | None = None
    chance: float | None = None
    correct_fn: Callable[[Any], Any] | None = None


def check_training(epochs: Any, batch_size: Any, patience: Any) -> tuple[int, int, int]:
    """Validate a task's training options (an untrained model's accuracy is chance, not a baseline)."""
    from lowdim.validation import check_int

    return (check_int("epochs", epochs, low=1, fix="every run trains for at least one epoch; an untrained "
                      "model scores at chance, which makes any d look like d90"),
            check_int("batch_size", batch_size, low=1), check_int("patience", patience, low=1))


def majority_rate(labels: Any) -> float:
    """Accuracy of always predicting the most frequent label (the chance level a baseline must beat)."""
    import numpy as np

    y = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).reshape(-1)
    return float(np.unique(y, return_counts=True)[1].max() / len(y)) if len(y) else 0.0


@dataclass
class ClassificationData:
    """Tensors of a classification task: ``inputs`` tuples are passed as ``model(*inputs)``."""

    train: tuple
    val: tuple
    test: tuple
    n_classes: int

    def to(self, device: Any) -> ClassificationData:
        mv = lambda split: tuple(t.to(device) for t in split)  # noqa: E731
        return ClassificationData(mv(self.train), mv(self.val), mv(self.test), self.n_classes)


def accuracy(model: Any, split: tuple, *, batch_size: int = 1024, per_example: bool = False) -> Any:
    """Fraction of correct argmax predictions of ``model`` on ``split = (*inputs, labels)``.

    ``per_example=True`` returns the correctness of each example instead (bool numpy array).
    """
    import numpy as np
    import torch

    *xs, y = split
    was = model.training
    model.eval()
    hits = []
    with torch.no_grad():
        for a in range(0, len(y), batch_size):
            out = model(*(x[a:a + batch_size] for x in xs))
            hits.append((out.argmax(dim=-1) == y[a:a + batch_size]).cpu().numpy())
    model.train(was)
    correct = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    return correct if per_example else int(correct.sum()) / max(1, len(y))


def fit_classifier(model: Any, data: ClassificationData, *, lr: float, seed: int, epochs: int = 30,
                   batch_size: int = 128, patience: int = 5, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.999)) -> dict:
    """Adam on cross-entropy with early stopping on validation accuracy.

    The trainable parameters at the best validation accuracy are restored at the end.

    Returns
    -------
    dict
        ``{"val": best validation accuracy, "epochs": epochs run, "best_epoch": ...}``
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
    gen = torch.Generator().manual_seed(int(seed))
    *xs, y = data.train
    n = len(y)
    best, best_epoch, best_state, epoch = -1.0, -1, None, 0
    loss_fn = torch.nn.functional.cross_entropy
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).to(y.device)
        for a in range(0, n, batch_size):
            idx = order[a:a + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(*(x[idx] for x in xs)), y[idx])
            if not torch.isfinite(loss):
                break
            loss.backward()
            opt.step()
        val = accuracy(model, data.val)
        if val > best:
            best, best_epoch = val, epoch
            best_state = [p.detach().clone() for p in params]
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        with torch.no_grad():
            for p, s in zip(params, best_state):
                p.copy_(s)
    return {"val": best, "epochs": epoch, "best_epoch": best_epoch}


def copy_module(module: Any) -> Any:
    """A deep copy (tasks may cache a θ₀ model and hand out copies)."""
    return copy.deepcopy(module)
