"""The estimator shape every ID method follows (scikit-learn style)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from lowdim.errors import LowdimError
from lowdim.neighbors import Neighbors, find_duplicates, kneighbors
from lowdim.result import IDResult, ScaleCurve
from lowdim.validation import as_points, check_choice, check_fraction

__all__ = ["IDEstimator"]


class IDEstimator:
    """Base class of intrinsic-dimension estimators.

    Subclasses set ``name``, store their keyword arguments in ``__init__`` (nothing else), and
    implement ``_fit_neighbors`` (k-NN methods, ``uses_neighbors = True``) or ``_fit_points``.
    ``fit`` validates the input, builds or reuses the shared :class:`~lowdim.Neighbors` graph and
    fills the learned attributes:

    - ``dimension_`` (float), ``ci_`` (low, high)
    - ``scale_curve_`` (:class:`~lowdim.result.ScaleCurve` or None)
    - ``local_dimensions_`` (per input row, only when the estimator was built with ``local=True``;
      the global ``dimension_`` is never overwritten by it)
    - ``n_samples_``, ``n_duplicates_dropped_``, ``neighbors_backend_``, ``seconds_``
    """

    name: ClassVar[str] = "base"
    uses_neighbors: ClassVar[bool] = True
    supports_local: ClassVar[bool] = False

    # common parameters (subclasses list them in their own __init__ signature)
    confidence: float = 0.95
    duplicates: str = "drop"
    local: bool = False
    random_state: int | None = 0

    # ------------------------------------------------------------------ public
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as scikit-learn's ``get_params`` (so ``sklearn.base.clone`` works).

        ``deep`` is accepted for scikit-learn's protocol; an estimator parameter that itself has
        ``get_params`` (none does today) is expanded as ``name__param`` when ``deep``.
        """
        import inspect

        sig = inspect.signature(type(self).__init__)
        out = {p: getattr(self, p) for p, par in sig.parameters.items()
               if p != "self" and par.kind not in (par.VAR_POSITIONAL, par.VAR_KEYWORD)}
        if deep:
            for name, value in list(out.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
        return out

    def set_params(self, **params: Any) -> IDEstimator:
        """Set constructor parameters (``name__param`` sets a nested estimator's); returns self."""
        valid = self.get_params(deep=False)
        nested: dict[str, dict[str, Any]] = {}
        for k, v in params.items():
            name, _, sub = k.partition("__")
            if name not in valid:
                raise LowdimError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = v
            else:
                setattr(self, k, v)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def n_neighbors_needed(self) -> int:
        """Neighbours per point this estimator reads from the k-NN graph (0 if none)."""
        return 0

    def fit(self, X: Any, y: Any = None) -> IDEstimator:
        """Estimate the intrinsic dimension of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or Neighbors
            Points, or a neighbour graph from :func:`lowdim.kneighbors` to reuse.
        y : ignored

        Returns
        -------
        self
        """
        t0 = time.perf_counter()
        self._check_common()
        self._check_params()
        self.local_dimensions_ = None
        self.scale_curve_ = None
        self.notes_: list[str] = []
        self.raw_: dict[str, Any] = {}
        self.interval_method_ = ""
        self.choice_ = self.calibration_ = self.selected_scale_ = None
        if self.uses_neighbors and not isinstance(X, Neighbors) and self._fit_array(X):
            pass  # the estimator searched its own subsets (e.g. ctwonn above 20,000 points)
        elif self.uses_neighbors:
            k = self.n_neighbors_needed()
            if isinstance(X, Neighbors):
                nb = X.require(k, type(self).__name__)
            else:
                nb = kneighbors(X, k, duplicates=self.duplicates, random_state=self.random_state)
            if self.local and not nb.is_full:
                raise LowdimError("local=True needs neighbours of every point; build Neighbors without queries=")
            self.n_samples_ = nb.n_points
            self.n_duplicates_dropped_ = nb.n_duplicates_dropped
            self.neighbors_backend_ = nb.backend
            if not nb.exact:
                rec = nb.info.get("recall_estimate")
                self.notes_.append(f"approximate neighbours ({nb.backend}"
                                   + (f", sampled recall@k {rec:.2f})" if rec is not None else ")"))
            self.n_features_ = int(nb.points.shape[1])
            self._fit_neighbors(nb)
            if self.local:
                self.local_dimensions_ = nb.to_original(self._local_neighbors(nb))
        else:
            if isinstance(X, Neighbors):
                A, n_dup = X.points, X.n_duplicates_dropped
            else:
                A, n_dup = self._drop_duplicates(as_points(X, min_samples=self._min_samples()))
            self.n_samples_ = A.shape[0]
            self.n_duplicates_dropped_ = n_dup
            self.neighbors_backend_ = None
            if self.local:
                raise LowdimError(f"{self.name} has no local (per-point) variant; use method='twonn' or 'mle'")
            self.n_features_ = int(A.shape[1])
            self._fit_points(A)
        d = float(self.dimension_)
        if not np.isfinite(d):
            raise LowdimError(f"{self.name} produced a non-finite dimension ({d}); the data may be degenerate")
        if not np.all(np.isfinite(self.ci_)):
            raise LowdimError(f"{self.name} produced a non-finite confidence interval {tuple(self.ci_)} "
                              f"around {d:.3g}; the data may be degenerate (many tied distances?)")
        nf = getattr(self, "n_features_", None)
        if nf is not None and d > nf:
            self.notes_.append(
                f"the estimate {d:.2f} exceeds the number of features ({nf}): no {nf}-feature data can have "
                f"a larger dimension, so the estimator's assumptions fail here (too few points for this "
                "dimension, noise, tied or discrete values); read it as 'about the number of features, or "
                "unreliable', and compare other methods on the same graph")
        self.seconds_ = time.perf_counter() - t0
        return self

    def result(self) -> IDResult:
        """The fitted estimate as an :class:`~lowdim.IDResult`."""
        if not hasattr(self, "dimension_"):
            raise LowdimError(f"{type(self).__name__} is not fitted yet; call fit(X) first")
        return IDResult(
            dimension=float(self.dimension_),
            ci=(float(self.ci_[0]), float(self.ci_[1])),
            method=self.name,
            n_samples=int(self.n_samples_),
            n_duplicates_dropped=int(self.n_duplicates_dropped_),
            params=self.get_params(),
            scale_curve=self.scale_curve_,
            local=self.local_dimensions_,
            seconds=float(self.seconds_),
            neighbors=self.neighbors_backend_,
            notes=tuple(self.notes_),
            interval_method=str(getattr(self, "interval_method_", "")),
            raw=dict(getattr(self, "raw_", {}) or {}),
            choice=getattr(self, "choice_", None),
            calibration=getattr(self, "calibration_", None),
            scale=getattr(self, "selected_scale_", None),
        )

    def fit_result(self, X: Any) -> IDResult:
        """``fit(X).result()``."""
        return self.fit(X).result()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------- subclasses
    def _check_params(self) -> None:
        """Validate estimator-specific parameters (raise LowdimError)."""

    def _min_samples(self) -> int:
        return 3

    def _fit_array(self, X: Any) -> bool:
        """Handle array input without building the full graph (return True); default: not handled.

        An override sets ``n_samples_``, ``n_duplicates_dropped_``, ``neighbors_backend_``,
        ``n_features_`` and the estimate, as ``_fit_neighbors`` does.
        """
        return False

    def _fit_neighbors(self, nb: Neighbors) -> None:  # pragma: no cover - abstract
        raise LowdimError(f"{self.name} does not work from a neighbour graph")

    def _fit_points(self, X: np.ndarray) -> None:  # pragma: no cover - abstract
        raise LowdimError(f"{self.name} needs a neighbour graph")

    def _local_neighbors(self, nb: Neighbors) -> np.ndarray:  # pragma: no cover - abstract
        raise LowdimError(f"{self.name} has no local (per-point) variant; use method='twonn' or 'mle'")

    # ---------------------------------------------------------------- helpers
    def _drop_duplicates(self, X: np.ndarray) -> tuple[np.ndarray, int]:
        """Exact duplicate rows for methods without a neighbour graph (the graph does it otherwise)."""
        if self.duplicates == "keep":
            return X, 0
        kept, _ = find_duplicates(X)
        n_dup = X.shape[0] - len(kept)
        if n_dup and self.duplicates == "error":
            raise LowdimError(f"X (shape {X.shape}) has {n_dup} duplicate rows; remove them "
                              "(np.unique(X, axis=0)) or pass duplicates='drop'")
        if n_dup:
            X = X[kept]
            if X.shape[0] < self._min_samples():
                raise LowdimError(f"X has {X.shape[0]} distinct rows after dropping {n_dup} duplicates; "
                                  f"{self.name} needs at least {self._min_samples()}")
        return X, n_dup

    def _check_common(self) -> None:
        check_fraction("confidence", self.confidence, low=0.0, high=1.0, high_open=True)
        check_choice("duplicates", self.duplicates, ("drop", "error", "keep"))
        if self.local and not self.supports_local:
            raise LowdimError(f"{self.name} has no local (per-point) variant; use method='twonn' or 'mle'")

    @staticmethod
    def _curve(scale: Any, dim: Any, lo: Any, hi: Any, label: str) -> ScaleCurve:
        return ScaleCurve(np.asarray(scale, float), np.asarray(dim, float), np.asarray(lo, float),
                          np.asarray(hi, float), label)
