"""GaLore (wrapped) and a gradient-spectrum callback that recommends its rank and refresh interval.

GaLore (Zhao et al., ICML 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
Projection") keeps Adam's moments in an r-dimensional projection of each matrix gradient,
refreshed from the gradient's top-r singular vectors every ``T`` steps, and multiplies the
projected-back update by ``scale`` (α = 0.25 in the paper), so compare it with AdamW at a learning
rate about 1/α larger. lowdim does not re-implement it: :func:`galore_optimizer` builds
``pytorch_optimizer.GaLore`` (torch + numpy only; ``pip install "lowdim[lowrank]"``) with one
parameter group per rank, the format a :class:`~lowdim.lowrank.plan.RankPlan` exports.

:class:`GradientSpectrumCallback` measures what GaLore's choice depends on: per matrix, the
gradient's stable rank, the energy captured by its top r directions, the energy rank at a level,
the drift of the top-r subspace between recordings (as a function of lag), and an SVD-free
profile: the energy of the top r columns of G·Q for the orthonormal DCT-II basis Q (the
Trion / DCT-AdamW idea, Modoranu et al., arXiv 2505.17967). From these it recommends r (median
energy rank) and T (the longest measured lag whose mean subspace drift stays below a tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["GradientSpectrumCallback", "dct_basis", "galore_optimizer", "galore_param_groups"]


def _matrix_params(model: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """``{parameter name: parameter}`` of the trainable 2-D weights (optionally only ``names``)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad and p.ndim == 2}
    if names is None:
        return params
    names = list(names)
    missing = [n for n in names if n not in params]
    if missing:
        raise LowdimError(f"parameters {missing[:5]} are not trainable 2-D parameters of "
                          f"{type(model).__name__}; available: {', '.join(list(params)[:20])}")
    return {n: params[n] for n in names}


def galore_param_groups(model: Any, *, rank: int | dict[str, int] = 128, update_proj_gap: int = 200,
                        scale: float = 0.25, projection_type: str = "std",
                        targets: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Parameter groups for ``pytorch_optimizer.GaLore``: one group per rank, plus the rest.

    Parameters
    ----------
    model : torch.nn.Module
    rank : int or dict
        One rank for every target matrix, or ``{parameter name: rank}`` (rank 0: plain Adam).
    update_proj_gap : int, default=200
        T, steps between projection refreshes.
    scale : float, default=0.25
        GaLore's α (multiplies the update).
    projection_type : str, default="std"
    targets : list of str, optional
        Parameter names projected (default: every trainable 2-D weight, or the keys of ``rank``).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> groups = galore_param_groups(net, rank={"0.weight": 4})
    >>> [(g.get("rank"), len(g["params"])) for g in groups]
    [(4, 1), (None, 3)]
    """
    if update_proj_gap < 1:
        raise LowdimError(f"update_proj_gap={update_proj_gap} must be a positive integer (steps between refreshes)")
    if isinstance(rank, dict):
        ranks = {n: int(r) for n, r in rank.items()}
        _matrix_params(model, ranks)
    else:
        if int(rank) < 1:
            raise LowdimError(f"rank={rank} must be a positive integer")
        ranks = {n: int(rank) for n in _matrix_params(model, targets)}
    by_rank: dict[int, list] = {}
    named = dict(model.named_parameters())
    for n, r in ranks.items():
        if r > 0:
            by_rank.setdefault(r, []).append(named[n])
    projected = {id(p) for ps in by_rank.values() for p in ps}
    groups: list[dict[str, Any]] = [
        {"params": ps, "rank": r, "update_proj_gap": int(update_proj_gap), "scale": float(scale),
         "projection_type": projection_type} for r, ps in sorted(by_rank.items(), reverse=True)]
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in projected]
    if rest:
        groups.append({"params": rest})
    return groups


def galore_optimizer(model_or_groups: Any, *, lr: float = 1e-3, weight_decay: float = 0.0,
                     betas: tuple[float, float] = (0.9, 0.999), **group_options: Any) -> Any:
    """``pytorch_optimizer.GaLore`` over a model (groups built by :func:`galore_param_groups`) or groups.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(16, 8)
    >>> opt = galore_optimizer(net, lr=1e-2, rank=2, update_proj_gap=10)
    >>> net(torch.randn(4, 16)).pow(2).sum().backward(); opt.step()
    >>> tuple(opt.state[net.weight]["exp_avg"].shape)  # Adam's moments live in the rank-2 projection
    (2, 16)
    """
    po = require("pytorch_optimizer", "lowrank")
    if hasattr(model_or_groups, "named_parameters"):
        groups = galore_param_groups(model_or_groups, **group_options)
    else:
        if group_options:
            raise LowdimError(f"options {sorted(group_options)} only apply when a model is passed; "
                              "put them into the parameter groups instead")
        groups = list(model_or_groups)
    return po.GaLore(groups, lr=lr, weight_decay=weight_decay, betas=betas)


def dct_basis(n: int) -> np.ndarray:
    """The orthonormal DCT-II basis as an ``n × n`` matrix Q (columns are basis vectors, QᵀQ = I).

    Examples
    --------
    >>> Q = dct_basis(6)
    >>> bool(np.allclose(Q.T @ Q, np.eye(6)))
    True
    """
    k = np.arange(n)[None, :]
    i = np.arange(n)[:, None]
    Q = np.cos(np.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    Q[:, 0] /= math.sqrt(2.0)
    return Q


def _grad_stats(G: np.ndarray, rank: int, energy: float, dct: dict[int, np.ndarray]) -> tuple[dict, np.ndarray]:
    """Spectral statistics of one gradient matrix and its top-``rank`` subspace on GaLore's side."""
    m, n = G.shape
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    e = s ** 2
    tot = float(e.sum())
    r = min(rank, len(s))
    if tot <= 0:
        stats = {"stable_rank": 0.0, "energy_top_r": float("nan"), "energy_rank": 0, "dct_energy_top_r": float("nan")}
        return stats, np.zeros((n if m >= n else m, 0))
    cum = np.cumsum(e) / tot
    # GaLore's "std" projection: the right singular vectors when m >= n, else the left ones
    side = n if m >= n else m
    basis = Vt[:r].T if m >= n else U[:, :r]
    # DCT column energy on the same side as the projection (no SVD): columns of G Q (or Qᵀ G)
    if side not in dct:
        dct[side] = dct_basis(side)
    Q = dct[side]
    col = ((G @ Q) ** 2).sum(0) if m >= n else ((Q.T @ G) ** 2).sum(1)
    col = np.sort(col)[::-1]
    stats = {"stable_rank": tot / float(e[0]), "energy_top_r": float(cum[r - 1]),
             "energy_rank": int(np.searchsorted(cum, energy - 1e-12) + 1),
             "dct_energy_top_r": float(col[:r].sum() / col.sum())}
    return stats, basis


class GradientSpectrumCallback:
    """Record gradient spectra during training; recommend GaLore's rank r and refresh interval T.

    Call ``cb(model, step)`` after ``loss.backward()`` and before ``zero_grad()``.

    Parameters
    ----------
    rank : int, default=8
        The r at which ``energy_top_r``, ``dct_energy_top_r`` and the subspace drift are measured.
    every : int, default=10
        Record when ``step % every == 0``.
    energy : float, default=0.9
        Level of the energy rank (smallest r whose top-r directions hold this fraction of ‖G‖²_F).
    drift_tol : float, default=0.5
        T is the longest measured lag whose mean drift ``1 − ‖P₀ᵀP_lag‖²_F / r`` (mean squared sine
        of the principal angles between the top-r subspaces) stays at or below this.
    params : list of str, optional
        Parameter names to watch (default: every trainable 2-D weight).
    max_lag : int, default=8
        Recordings kept per matrix for the lag curve.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Linear(32, 16)
    >>> cb = GradientSpectrumCallback(rank=2, every=1)
    >>> for step in range(4):
    ...     net.zero_grad()
    ...     net(torch.randn(64, 32)).pow(2).sum().backward()
    ...     _ = cb(net, step)
    >>> rec = cb.recommend()
    >>> rec["rank"] >= 1 and rec["update_proj_gap"] >= 1
    True
    """

    def __init__(self, *, rank: int = 8, every: int = 10, energy: float = 0.9, drift_tol: float = 0.5,
                 params: Sequence[str] | None = None, max_lag: int = 8) -> None:
        if rank < 1 or every < 1 or max_lag < 1:
            raise LowdimError(f"rank={rank}, every={every} and max_lag={max_lag} must be positive integers")
        if not 0 < energy <= 1:
            raise LowdimError(f"energy={energy} must be in (0, 1]")
        self.rank, self.every, self.energy, self.drift_tol = int(rank), int(every), float(energy), float(drift_tol)
        self.params = list(params) if params is not None else None
        self.max_lag = int(max_lag)
        self.history: list[dict[str, Any]] = []
        self._bases: dict[str, list[np.ndarray]] = {}
        self._lag_drift: dict[str, dict[int, list[float]]] = {}
        self._dct: dict[int, np.ndarray] = {}
        self._curves: dict[str, list[np.ndarray]] = {}

    def __call__(self, model: Any, step: int) -> dict[str, dict] | None:
        return self.on_step(model, step)

    def on_step(self, model: Any, step: int) -> dict[str, dict] | None:
        """Record the current gradients if ``step`` is due; return ``{param: stats}`` or None."""
        if step % self.every != 0:
            return None
        out = {}
        for name, p in _matrix_params(model, self.params).items():
            if p.grad is None:
                continue
            G = p.grad.detach().double().cpu().numpy()
            stats, basis = _grad_stats(G, self.rank, self.energy, self._dct)
            e = np.linalg.svd(G, compute_uv=False) ** 2
            if e.sum() > 0:
                self._curves.setdefault(name, []).append(e / e.sum())
            past = self._bases.setdefault(name, [])
            lags = self._lag_drift.setdefault(name, {})
            for lag, old in enumerate(reversed(past), start=1):
                r = min(old.shape[1], basis.shape[1])
                if r:
                    ov = float(np.sum((old[:, :r].T @ basis[:, :r]) ** 2)) / r
                    lags.setdefault(lag * self.every, []).append(1.0 - ov)
            stats["drift"] = lags.get(self.every, [float("nan")])[-1] if past else float("nan")
            past.append(basis)
            del past[:-self.max_lag]
            stats.update(step=int(step), param=name)
            self.history.append(stats)
            out[name] = stats
        return out

    def drift_curve(self) -> dict[int, float]:
        """Mean subspace drift against the lag in steps, over all watched matrices."""
        pooled: dict[int, list[float]] = {}
        for lags in self._lag_drift.values():
            for lag, vals in lags.items():
                pooled.setdefault(lag, []).extend(vals)
        return {lag: float(np.mean(v)) for lag, v in sorted(pooled.items())}

    def recommend(self) -> dict[str, Any]:
        """``{"rank", "update_proj_gap", "per_param", "drift_curve", ...}`` from the recordings.

        ``rank`` is the median over matrices of their median energy rank; ``update_proj_gap`` the
        longest lag with mean drift ≤ ``drift_tol`` (``every`` if even one recording interval
        drifts more; the longest measured lag, flagged ``"capped": True``, if none does).
        """
        if not self.history:
            raise LowdimError("no gradients recorded yet; call the callback after loss.backward() on due steps")
        per: dict[str, dict] = {}
        for h in self.history:
            per.setdefault(h["param"], {"energy_rank": [], "energy_top_r": [], "dct_energy_top_r": [],
                                        "stable_rank": []})
            for k in per[h["param"]]:
                per[h["param"]][k].append(h[k])
        per_param: dict[str, dict[str, Any]] = {
            n: {k: float(np.nanmedian(v)) for k, v in d.items()} for n, d in per.items()}
        for n, curves in self._curves.items():  # mean normalised spectrum: the planner's grad_energy curve
            per_param[n]["energy_curve"] = np.mean(curves, axis=0).tolist()
        r = round(float(np.median([d["energy_rank"] for d in per_param.values()])))
        curve = self.drift_curve()
        ok: list[int] = []
        for lag, d in curve.items():  # the prefix of lags that all stay within the tolerance
            if not d <= self.drift_tol:
                break
            ok.append(lag)
        capped = bool(curve) and len(ok) == len(curve)
        T = ok[-1] if ok else self.every
        return {"rank": max(1, r), "update_proj_gap": int(T), "capped": capped, "energy": self.energy,
                "drift_tol": self.drift_tol, "measured_at_rank": self.rank, "drift_curve": curve,
                "per_param": per_param}
