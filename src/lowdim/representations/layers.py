"""Per-layer measurements of a representation: one :class:`LayerReport` per layer.

For every layer one k-NN graph (:func:`lowdim.kneighbors`) on a seeded subsample serves the
global ID (:func:`lowdim.estimate`) and the local ID (:func:`lowdim.local_id`); DSE/DSMI read the
same points; effective rank and participation ratio come from the covariance spectrum.

- Effective rank: Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
  EUSIPCO 2007: ``exp(H(p))`` with ``p_i = s_i / Σ s_j`` over the singular values of the
  (here: centred) activation matrix.
- Participation ratio: ``(Σ λ_i)² / Σ λ_i²`` over the covariance eigenvalues (Gao et al. 2017;
  used for layers by Recanatesi et al. 2019).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.validation import as_points, check_int

__all__ = ["LayerReport", "effective_rank", "layer_report", "measure_layer", "participation_ratio"]


@dataclass(frozen=True)
class LayerReport:
    """Measurements of one layer's representation.

    Attributes
    ----------
    name : str
    n_samples : int
        Points measured (after subsampling and duplicate removal).
    dimension : float
        Global intrinsic dimension (``method``), with 95 % interval ``ci``.
    local_mean, local_median : float
        Mean and median of the per-point local ID (``local_method`` over ``n_neighbors``).
    local_quantiles : dict
        Local-ID quantiles ``{"q05", "q25", "q75", "q95"}``.
    effective_rank, participation_ratio : float
    dse : float or None
        Diffusion spectral entropy (bits), at bandwidth ``dse_sigma`` and diffusion time ``dse_t``.
    dsmi : float or None
        DSMI with the labels (bits), when labels were given (same σ and t as ``dse``).
    dse_sigma, dse_t : float or None
        The Gaussian bandwidth and diffusion time behind ``dse`` / ``dsmi`` (None without DSE).
    dse_sigma_rule : str
        How σ was chosen: "half median distance" (default), "paper (10)" or "given".
    label_sharpness : float or None
        K_F with the labels, when labels were given, over ``label_sharpness_m`` points.
    label_sharpness_m : int or None
        M, the points K_F's maximum ran over (the paper: 1,000; K_F grows with M).
    step : int or None
        Training step, for reports recorded over training.
    """

    name: str
    n_samples: int
    n_features: int
    dimension: float
    ci: tuple[float, float]
    method: str
    local_method: str
    n_neighbors: int
    local_mean: float
    local_median: float
    local_quantiles: dict[str, float]
    effective_rank: float
    participation_ratio: float
    dse: float | None = None
    dsmi: float | None = None
    label_sharpness: float | None = None
    step: int | None = None
    neighbors: str = ""
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    dse_sigma: float | None = None
    dse_t: float | None = None
    dse_sigma_rule: str = ""
    label_sharpness_m: int | None = None

    @property
    def dse_label(self) -> str:
        """Column label naming the DSE setting, e.g. ``"DSE (σ=10, t=1)"``."""
        if self.dse_sigma is None:
            return "DSE"
        return f"DSE (σ={self.dse_sigma:.3g}, t={self.dse_t:g})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = [float(self.ci[0]), float(self.ci[1])]
        d["notes"] = list(self.notes)
        for k, v in d.items():  # JSON has no inf/NaN
            if isinstance(v, float) and not np.isfinite(v):
                d[k] = None
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerReport:
        d = dict(d)
        d["ci"] = tuple(d["ci"])
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)

    def __str__(self) -> str:
        return (f"{self.name}: ID {self.dimension:.2f} [{self.ci[0]:.2f}, {self.ci[1]:.2f}], local mean "
                f"{self.local_mean:.2f}, PR {self.participation_ratio:.2f}, erank {self.effective_rank:.2f}"
                + (f", {self.dse_label} {self.dse:.2f}" if self.dse is not None else "")
                + (f", K_F {self.label_sharpness:.3g} (M={self.label_sharpness_m})"
                   if self.label_sharpness is not None else ""))


def _spectrum(A: np.ndarray) -> np.ndarray:
    """Singular values of the centred matrix, from the eigenvalues of its smaller Gram matrix."""
    Ac = A.astype(np.float64) - A.mean(0, dtype=np.float64)
    C = Ac.T @ Ac if Ac.shape[1] <= Ac.shape[0] else Ac @ Ac.T
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small dense eigensolves: threads only contend
        lam = np.clip(np.linalg.eigvalsh(C)[::-1], 0.0, None)
    return np.sqrt(lam)


def _erank(s: np.ndarray) -> float:
    s = s[s > s.max() * 1e-12] if s.size and s.max() > 0 else s[s > 0]
    p = s / s.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def _pr(s: np.ndarray) -> float:
    lam = s ** 2
    return float(lam.sum() ** 2 / np.sum(lam ** 2))


def effective_rank(X: Any) -> float:
    """Effective rank of the centred data (Roy & Vetterli 2007): ``exp`` of the singular-value entropy.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(5000, 3)) @ np.eye(3, 10)
    >>> round(effective_rank(X), 1)
    3.0
    """
    return _erank(_spectrum(as_points(X, min_samples=2)))


def participation_ratio(X: Any) -> float:
    """Participation ratio ``(Σλ)² / Σλ²`` of the covariance eigenvalues ``λ``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(5000, 4)) @ np.eye(4, 10)
    >>> round(participation_ratio(X), 1)
    4.0
    """
    return _pr(_spectrum(as_points(X, min_samples=2)))


def measure_layer(X: Any, *, name: str = "layer", labels: Any = None, method: str = "auto",
                  local_method: str = "twonn", n_neighbors: int = 20, max_samples: int = 2000,
                  dse: bool = True, dse_t: float | None = None, dse_sigma: float | None = None,
                  dse_paper: bool = False, sharpness_samples: int | None = 1000, step: int | None = None,
                  random_state: int = 0) -> LayerReport:
    """Measure one layer's activations (rows = samples or tokens).

    Parameters
    ----------
    X : array-like of shape (n, D) or a folder of ``.npy`` shards
    name : str
        Layer name, used in messages and in the report.
    labels : array-like of shape (n,), optional
        Enables DSMI and label sharpness.
    method : str, default="auto"
        Global estimator (:func:`lowdim.estimate`).
    local_method : {"twonn", "mle"}, default="twonn"
    n_neighbors : int, default=20
        Neighbourhood of the local ID.
    max_samples : int, default=2000
        Seeded subsample of rows measured (one k-NN graph over these serves every estimate).
    dse : bool, default=True
    dse_t, dse_sigma : float, optional
        DSE/DSMI diffusion time (default 3) and bandwidth (default half the median distance);
        both are recorded in the report.
    dse_paper : bool, default=False
        The paper's σ = 10, t = 1 (Liao et al.).
    sharpness_samples : int or None, default=1000
        M of label sharpness K_F: a seeded subset of this many of the measured points (the
        paper's M = 1,000; None: all of them). Recorded as ``label_sharpness_m``.
    step : int, optional
    random_state : int

    Returns
    -------
    LayerReport
    """
    from lowdim.api import estimate, local_id
    from lowdim.neighbors import kneighbors
    from lowdim.representations.dse import (
        _entropy_from_eigs,
        diffusion_eigenvalues,
        diffusion_spectral_mutual_information,
        dse_settings,
    )
    from lowdim.representations.sharpness import label_sharpness

    t0 = time.perf_counter()
    sigma0, dse_t, sigma_rule = dse_settings(paper=dse_paper, sigma=dse_sigma, t=dse_t)
    if sharpness_samples is not None:
        sharpness_samples = check_int("sharpness_samples", sharpness_samples, low=2)
    n_neighbors = check_int("n_neighbors", n_neighbors, low=2)
    max_samples = check_int("max_samples", max_samples, low=n_neighbors + 2)
    y_all = None
    if labels is not None:
        y_all = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels).reshape(-1)
    n_total = None
    if isinstance(X, str):
        from pathlib import Path

        X = Path(X)
    if not isinstance(X, np.ndarray) and hasattr(X, "is_dir"):  # a folder of streamed shards
        from lowdim.representations.capture import read_shard_rows

        n_total = sum(int(np.load(p, mmap_mode="r").shape[0]) for p in sorted(X.glob("part-*.npy")))
        X, rows = read_shard_rows(X, max_samples, random_state=random_state)
        if y_all is not None:
            if len(y_all) != n_total:
                raise LowdimError(f"labels have {len(y_all)} entries but layer {name!r} has {n_total} samples; "
                                  "give one label per row")
            y_all = y_all[rows]
    raw = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X)
    if raw.ndim == 2 and raw.size and not np.isfinite(raw).all():
        bad = np.argwhere(~np.isfinite(raw))[0]
        raise LowdimError(f"layer {name!r} has {int((~np.isfinite(raw)).sum())} non-finite activations "
                          f"(NaN or inf; first at row {bad[0]}, column {bad[1]}) in shape {raw.shape}; "
                          "fix the model's numerics or leave this layer out")
    A = as_points(raw, name=f"layer {name!r}", min_samples=n_neighbors + 2, why=f"n_neighbors={n_neighbors}")
    y = y_all
    if y is not None:
        if len(y) != len(A):
            raise LowdimError(f"labels have {len(y)} entries but layer {name!r} has {len(A)} samples "
                              f"(shape {A.shape}); give one label per row")
    notes: list[str] = []
    if len(A) > max_samples:
        idx = np.sort(np.random.default_rng(random_state).choice(len(A), size=max_samples, replace=False))
        A = A[idx]
        y = y[idx] if y is not None else None
        notes.append(f"subsampled {max_samples} of {len(raw)} rows")
    elif n_total is not None and n_total > len(A):
        notes.append(f"subsampled {len(A)} of {n_total} rows (read from shards)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb = kneighbors(A, n_neighbors, random_state=random_state)
    notes += [str(w.message) for w in caught]
    g = estimate(nb, method=method, random_state=random_state)
    loc = local_id(nb, method=local_method, n_neighbors=n_neighbors)
    loc = loc[np.isfinite(loc)]
    yk = y[nb.kept] if y is not None else None
    d_dse = d_mi = ks = sigma = m_sharp = None
    if dse:  # one bandwidth for DSE and DSMI, recorded with t
        ev, sigma = diffusion_eigenvalues(nb, sigma=sigma0, random_state=random_state)
        d_dse = _entropy_from_eigs(ev, dse_t)
    if yk is not None:
        if dse:
            d_mi = diffusion_spectral_mutual_information(nb.points, yk, t=dse_t, sigma=sigma,
                                                         random_state=random_state)
        ks = label_sharpness(nb.points, yk, max_samples=sharpness_samples, random_state=random_state)
        m_sharp = nb.n_points if sharpness_samples is None else min(sharpness_samples, nb.n_points)
    q = np.quantile(loc, [0.05, 0.25, 0.75, 0.95])
    sv = _spectrum(nb.points)
    return LayerReport(
        name=name, n_samples=nb.n_points, n_features=int(A.shape[1]), dimension=float(g.dimension),
        ci=(float(g.ci[0]), float(g.ci[1])), method=g.method, local_method=local_method,
        n_neighbors=n_neighbors, local_mean=float(loc.mean()), local_median=float(np.median(loc)),
        local_quantiles={"q05": float(q[0]), "q25": float(q[1]), "q75": float(q[2]), "q95": float(q[3])},
        effective_rank=_erank(sv), participation_ratio=_pr(sv),
        dse=d_dse, dsmi=d_mi, label_sharpness=ks, step=step, neighbors=nb.backend,
        seconds=time.perf_counter() - t0, notes=(*notes, *g.notes),
        dse_sigma=None if sigma is None else float(sigma), dse_t=float(dse_t) if dse else None,
        dse_sigma_rule=sigma_rule if dse else "", label_sharpness_m=m_sharp,
    )


def layer_report(activations: Any, *, labels: Any = None, step: int | None = None,
                 **params: Any) -> list[LayerReport]:
    """Measure every layer of captured activations.

    Parameters
    ----------
    activations : Activations, or mapping name -> array
        From :func:`capture_activations` / :func:`capture_hidden_states`, or a dict of arrays.
    labels : array-like, optional
        Default ``activations.labels``.
    step : int, optional
    **params
        Passed to :func:`measure_layer` (``method``, ``n_neighbors``, ``max_samples``, …).

    Returns
    -------
    list of LayerReport, in layer order

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> acts = {"flat": rng.normal(size=(600, 2)) @ rng.normal(size=(2, 30)),
    ...         "wide": rng.uniform(size=(600, 3)) @ rng.normal(size=(3, 30))}
    >>> [round(r.dimension) for r in layer_report(acts, dse=False)]
    [2, 3]
    """
    if labels is None:
        labels = getattr(activations, "labels", None)
    items: Iterable[tuple[str, Any]]
    if isinstance(activations, Mapping):
        items = activations.items()
    elif hasattr(activations, "names"):
        items = ((n, activations.source(n)) for n in activations.names)
    else:
        raise LowdimError(f"activations must be an Activations object or a dict name -> array, "
                          f"got {type(activations).__name__}")
    out = [measure_layer(A, name=str(n), labels=labels, step=step, **params) for n, A in items]
    if not out:
        raise LowdimError("no layers to measure (empty activations)")
    return out


def reports_to_json(reports: list[LayerReport]) -> dict[str, Any]:
    """``{"layers": [...]}``: what ``lowdim layers --json`` prints."""
    return {"layers": [r.to_dict() for r in reports]}
