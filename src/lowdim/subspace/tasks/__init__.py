"""Built-in tasks for :func:`lowdim.subspace.find_d90`, all offline.

``get_task(name, **options)`` builds one; :data:`TASKS` lists them. Options common to all:
``device`` ("cpu"/"cuda"), ``epochs``, ``batch_size``, ``patience``, ``threads`` (torch
threads during a run; 0 = leave as is, the small tasks default to 1); the MNIST tasks take
``data_dir`` (or ``$LOWDIM_MNIST_DIR``), the MiniLM task ``pretrained``, ``n_train``, ``n_eval``, ``max_length``.

One input layout for every image task: float32 rows ``(N, n_features)`` (images flattened in C
order, also the 28×28 MNIST IDX images); a model that needs the spatial layout restores it in its
first layer (see :mod:`lowdim.subspace.tasks.vision`). Each task also knows its test-set size
(``n_test``) and majority-class rate (``chance``), which :func:`~lowdim.subspace.find_d90` uses
for its intervals and its refusal of an untrained baseline.
"""

from __future__ import annotations

import importlib
from typing import Any

from lowdim.subspace.tasks.base import ClassificationData, Task, accuracy, fit_classifier
from lowdim.validation import check_choice

__all__ = ["TASKS", "ClassificationData", "Task", "accuracy", "fit_classifier", "get_task"]

#: task name -> "module:function" building it
TASKS: dict[str, str] = {
    "digits_mlp": "lowdim.subspace.tasks.vision:digits_mlp",
    "mnist1d_mlp": "lowdim.subspace.tasks.vision:mnist1d_mlp",
    "mnist1d_cnn": "lowdim.subspace.tasks.vision:mnist1d_cnn",
    "mnist_fc": "lowdim.subspace.tasks.vision:mnist_fc",
    "mnist_lenet": "lowdim.subspace.tasks.vision:mnist_lenet",
    "mnist5k_fc": "lowdim.subspace.tasks.vision:mnist5k_fc",
    "mnist5k_lenet": "lowdim.subspace.tasks.vision:mnist5k_lenet",
    "minilm_scifact": "lowdim.subspace.tasks.minilm:minilm_scifact",
}


def get_task(name: str, **options: Any) -> Task:
    """Build a built-in task by name.

    Examples
    --------
    >>> get_task("digits_mlp").model_fn(0)[1].in_features
    64
    """
    check_choice("task", name, TASKS)
    mod, fn = TASKS[name].split(":")
    return getattr(importlib.import_module(mod), fn)(**options)
