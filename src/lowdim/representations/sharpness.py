"""Label sharpness K_F (Konz & Mazurowski, ICLR 2024).

Konz & Mazurowski, "The Effect of Intrinsic Dataset Properties on Generalization: Unraveling
Learning Differences Between Natural and Medical Images", ICLR 2024 (arXiv:2401.08865), Sec. 3.2:
the label sharpness is the Lipschitz constant of the labelling function on the data,

    K_F = max_{j,k} |y_j − y_k| / ‖x_j − x_k‖,

estimated over a random subset of M points (M = 1,000 in the paper, and lowdim's default in
:func:`label_sharpness` and :func:`~lowdim.representations.measure_layer`, whose report records
M as ``label_sharpness_m``). Being a maximum over M(M − 1)/2 pairs, K_F grows with M: values
at different M are not comparable. Their labels are binary,
so ``|y_j − y_k|`` is 1 for pairs with different labels and 0 otherwise: K_F is the inverse of the
smallest distance between two differently labelled points. For more than two classes we use the
same indicator ``1[y_j ≠ y_k]``. (The authors' released code uses ``y_j == y_k`` in its multiclass
branch, which contradicts the definition; we follow the paper.) K_F has units of 1/distance: it
scales with the inverse of the data's scale.

The smallest cross-label distance comes from the shared k-NN engine: for each class, the nearest
point of any other class (:func:`lowdim.neighbors.knn_search` with k = 1), exact, in O(M²D/blocks)
without an M×M matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.neighbors import knn_search
from lowdim.validation import as_points, check_int

__all__ = ["label_sharpness"]


def label_sharpness(X: Any, y: Any, *, max_samples: int | None = 1000,
                    random_state: int | None = 0) -> float:
    """Label sharpness ``K_F = max over differently labelled pairs of 1 / ‖x_j − x_k‖``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels (any hashable values).
    max_samples : int or None, default=1000
        The paper's M: a seeded random subset of this many points (None: all points).
    random_state : int, optional

    Returns
    -------
    float
        ``inf`` when two identical points carry different labels; ``0.0`` with a single class.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [3.0], [3.5]])
    >>> label_sharpness(X, [0, 0, 1, 1])   # closest cross-label pair: 1.0 and 3.0
    0.5
    """
    A = as_points(X, min_samples=2, allow_constant=True)
    labels = np.asarray(y).reshape(-1)
    if len(labels) != len(A):
        raise LowdimError(f"labels have {len(labels)} entries but X has {len(A)} samples (shape {A.shape}); "
                          "give one label per sample")
    if max_samples is not None:
        m = check_int("max_samples", max_samples, low=2)
        if len(A) > m:
            idx = np.sort(np.random.default_rng(random_state).choice(len(A), size=m, replace=False))
            A, labels = A[idx], labels[idx]
    classes = np.unique(labels)
    if len(classes) < 2:
        return 0.0
    best = np.inf
    for c in classes[:-1]:  # each cross pair is seen from its lower class
        inside = labels == c
        other = ~inside
        d, _, _ = knn_search(A[other], A[inside], 1, backend="exact")
        best = min(best, float(d.min()))
    if best == 0.0:
        return float("inf")
    return 1.0 / best
