"""A family of related tasks for task vectors: sklearn digits under rotations, noise, label maps.

Every variant trains the same MLP 64-64-10 as the built-in ``digits_mlp`` task (same θ₀ for the
same ``init_seed``) on the same 60/20/20 split of sklearn's 1,797 8×8 digits, with the images
and labels transformed:

- ``rotation`` — degrees, bilinear (``scipy.ndimage.rotate``, same 8×8 frame);
- ``noise`` — standard deviation of additive Gaussian pixel noise (pixels in [0, 1]), fixed seed;
- ``classes`` — keep only these digits (a label subset; the head keeps 10 outputs);
- ``label_shift`` — relabel y → (y + shift) mod 10 (a permutation of the head's rows).

:func:`digits_variant` builds one variant as a :class:`~lowdim.subspace.tasks.Task`;
:data:`DIGITS_SOURCES` and :data:`DIGITS_HELD_OUT` are the family the aTLAS benchmark uses.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.subspace.tasks.base import ClassificationData, Task, accuracy, fit_classifier

__all__ = ["DIGITS_HELD_OUT", "DIGITS_SOURCES", "digits_variant"]

#: source tasks whose task vectors span the aTLAS subspace
DIGITS_SOURCES: tuple[dict, ...] = (
    {"rotation": 0.0}, {"rotation": 30.0}, {"rotation": -30.0}, {"rotation": 60.0}, {"rotation": -60.0},
    {"noise": 0.3}, {"classes": (0, 1, 2, 3, 4)}, {"classes": (5, 6, 7, 8, 9)},
)
#: held-out tasks: in the family's span (a new angle with noise) and outside it (permuted labels)
DIGITS_HELD_OUT: dict[str, dict] = {
    "rot45_noise": {"rotation": 45.0, "noise": 0.2},
    "rot15": {"rotation": 15.0},
    "label_shift": {"label_shift": 3},
}


def _key(rotation: float, noise: float, classes: tuple | None, label_shift: int) -> tuple:
    return (float(rotation), float(noise), None if classes is None else tuple(sorted(int(c) for c in classes)),
            int(label_shift) % 10)


@functools.lru_cache(maxsize=16)
def _data(key: tuple) -> ClassificationData:
    import torch
    from scipy.ndimage import rotate
    from sklearn.datasets import load_digits

    rotation, noise, classes, shift = key
    ds = load_digits()
    X, y = ds.data / 16.0, ds.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(y))  # the split of the built-in digits task
    a, b = int(0.6 * len(y)), int(0.6 * len(y)) + int(0.2 * len(y))
    if rotation:
        X = rotate(X.reshape(-1, 8, 8), rotation, axes=(1, 2), reshape=False, order=1, mode="constant")
        X = X.reshape(-1, 64)
    if noise:
        X = X + np.random.default_rng(12345).normal(0.0, noise, X.shape)
    y = (y + shift) % 10
    keep = np.isin(ds.target, classes) if classes is not None else np.ones(len(y), bool)
    parts = []
    for p in (idx[:a], idx[a:b], idx[b:]):
        p = p[keep[p]]
        parts.append((torch.as_tensor(X[p], dtype=torch.float32), torch.as_tensor(y[p])))
    return ClassificationData(*parts, n_classes=10)


def _train(model: Any, *, lr: float, seed: int, key: tuple, epochs: int, patience: int) -> dict:
    return fit_classifier(model, _data(key), lr=lr, seed=seed, epochs=epochs, batch_size=128, patience=patience)


def _evaluate(model: Any, *, key: tuple) -> float:
    return accuracy(model, _data(key).test)


def digits_variant(*, rotation: float = 0.0, noise: float = 0.0, classes: Any = None, label_shift: int = 0,
                   epochs: int = 60, patience: int = 10) -> Task:
    """One member of the digits family (MLP 64-64-10; same θ₀ as ``digits_mlp``).

    Examples
    --------
    >>> t = digits_variant(rotation=30.0, classes=(0, 1))
    >>> t.name, t.model_fn(0)[1].in_features
    ('digits[rot=30,classes=0-1]', 64)
    """
    if not np.isfinite(rotation) or not np.isfinite(noise) or noise < 0:
        raise LowdimError(f"rotation={rotation!r} must be finite and noise={noise!r} finite and ≥ 0")
    if classes is not None:
        classes = tuple(int(c) for c in classes)
        if not classes or not set(classes) <= set(range(10)):
            raise LowdimError(f"classes={classes!r} must be a non-empty subset of the digits 0-9")
    key = _key(rotation, noise, classes, label_shift)
    from lowdim.subspace.tasks import get_task

    parts = [f"rot={rotation:g}" if rotation else "", f"noise={noise:g}" if noise else "",
             f"classes={'-'.join(map(str, key[2]))}" if classes is not None else "",
             f"shift={key[3]}" if key[3] else ""]
    return Task(
        name="digits[" + ",".join(p for p in parts if p) + "]",
        model_fn=get_task("digits_mlp").model_fn,
        train_fn=functools.partial(_train, key=key, epochs=int(epochs), patience=int(patience)),
        evaluate_fn=functools.partial(_evaluate, key=key),
        lrs=(0.1,), baseline_lrs=(3e-3,), metric="test accuracy",
        description="sklearn digits variant, MLP 64-64-10", info={"threads": 1, "variant": repr(key)},
    )
