"""Per-module spectra of a model: what a rank decision can be based on.

For every target module (``nn.Linear``, ``nn.Conv1d/2d`` as ``out × in·k`` matrices, Hugging Face
``Conv1D``) :func:`profile` measures

- the **weight spectrum**: effective rank (Roy & Vetterli 2007, exp of the singular-value
  entropy), stable rank ‖W‖²_F / ‖W‖²₂, energy ranks at 90 % and 99 % of ‖W‖²_F, and the number
  of singular values above the **Marchenko–Pastur edge** σ̂(√m + √n) of an m × n noise matrix,
  with the noise level σ̂ estimated from the median singular value (Gavish & Donoho 2014, "The
  optimal hard threshold for singular values is 4/√3") — the "above noise" rank. The estimate
  assumes most singular values are noise; a matrix of nearly full rank gets a too-large σ̂ and an
  undercount;
- the **inputs' intrinsic dimension** (with its interval, through :func:`lowdim.estimate`) and the
  explained-variance curve of the centred inputs (what PEFT's EVA allocates on), captured with
  :func:`lowdim.representations.capture.capture_activations` (``io="input"``);
- the **update spectrum** of ΔW = W − W₀ when a reference model (or state dict) is given;
- the **gradient spectrum**, merged from a :class:`~lowdim.lowrank.galore.GradientSpectrumCallback`
  with :meth:`SpectralProfile.add_gradients`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["ModuleSpectrum", "SpectralProfile", "find_targets", "mp_median", "profile", "spectrum_stats",
           "weight_matrix"]

WHAT = ("weights", "inputs", "updates")


@functools.lru_cache(maxsize=256)
def mp_median(beta: float) -> float:
    """Median of the Marchenko–Pastur law with aspect ratio ``0 < beta ≤ 1`` (unit variance).

    Examples
    --------
    >>> round(mp_median(1.0), 4)  # Gavish & Donoho (2014), Table: μ_1 ≈ 0.6528
    0.6528
    """
    from scipy.integrate import quad
    from scipy.optimize import brentq

    if not 0 < beta <= 1:
        raise LowdimError(f"beta={beta} must be in (0, 1]")
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2

    def dens(x: float) -> float:
        return math.sqrt(max((b - x) * (x - a), 0.0)) / (2 * math.pi * beta * x)

    def cdf(x: float) -> float:
        return quad(dens, a, x, limit=200)[0]

    return float(brentq(lambda x: cdf(x) - 0.5, a, b, xtol=1e-10))


def _energy_rank(e: np.ndarray, level: float) -> int:
    tot = float(e.sum())
    if tot <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(e) / tot, level - 1e-12) + 1)


def spectrum_stats(s: Any, shape: tuple[int, int], *, floor: float = 0.0) -> dict[str, float]:
    """Rank summaries of the singular values ``s`` of an ``m × n`` matrix.

    ``mp_rank`` counts the singular values above both the Marchenko–Pastur edge and ``floor``, a
    numerical-rank tolerance (:func:`profile` passes eps(dtype) · max(m, n) · ‖W‖₂, so rounding
    noise of an exactly low-rank update never counts as signal).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 100)) + 0.1 * rng.normal(size=(200, 100))
    >>> st = spectrum_stats(np.linalg.svd(W, compute_uv=False), W.shape)
    >>> st["mp_rank"], st["energy_rank_99"] <= 6
    (5, True)
    """
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    m, n = int(shape[0]), int(shape[1])
    e = s ** 2
    if s.size == 0 or s[0] <= 0:
        return {"effective_rank": 0.0, "stable_rank": 0.0, "energy_rank_90": 0, "energy_rank_99": 0,
                "mp_rank": 0, "mp_edge": 0.0, "noise_sigma": 0.0, "numerical_floor": float(floor)}
    from lowdim.representations.layers import _erank

    lo, hi = min(m, n), max(m, n)
    sigma = float(np.median(s[:lo])) / math.sqrt(hi * mp_median(lo / hi))
    edge = sigma * (math.sqrt(m) + math.sqrt(n))
    return {"effective_rank": _erank(s), "stable_rank": float(e.sum() / e[0]),
            "energy_rank_90": _energy_rank(e, 0.90), "energy_rank_99": _energy_rank(e, 0.99),
            "mp_rank": int(np.sum(s > max(edge * (1 + 1e-9), floor))), "mp_edge": edge, "noise_sigma": sigma,
            "numerical_floor": float(floor)}


def weight_matrix(module: Any) -> np.ndarray:
    """The module's weight as an ``out × in`` float64 matrix (convolutions flattened to ``out × in·k``)."""
    W = module.weight.detach().double().cpu()
    if type(module).__name__ == "Conv1D":  # transformers' GPT-2 style: weight is (in, out)
        W = W.T
    return W.reshape(W.shape[0], -1).numpy()


def _is_target(module: Any) -> bool:
    import torch

    return isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)) or \
        type(module).__name__ == "Conv1D"


def find_targets(model: Any, targets: str | Sequence[str] = "all-linear") -> list[str]:
    """Names of the modules profiled / planned.

    ``"all-linear"``: every Linear (and HF ``Conv1D``) except the model's output embedding (as
    PEFT's ``"all-linear"``); ``"all"``: also convolutions; a list of names or fnmatch globs
    (``*`` within one dotted level, ``**`` across); a string starting with ``re:``: a full-match
    regular expression over module names.
    """
    import torch

    mods = dict(model.named_modules())
    if isinstance(targets, str) and targets in ("all-linear", "all"):
        out_emb = None
        if hasattr(model, "get_output_embeddings"):
            try:
                out_emb = model.get_output_embeddings()
            except Exception:  # some models raise instead of returning None
                out_emb = None
        names = [n for n, m in mods.items() if n and m is not out_emb and _is_target(m)
                 and (targets == "all" or isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D")]
    elif isinstance(targets, str) and targets.startswith("re:"):
        pat = re.compile(targets[3:])
        names = [n for n, m in mods.items() if n and pat.fullmatch(n) and _is_target(m)]
    else:
        from lowdim.representations.capture import match_layers

        names = [n for n in match_layers(model, targets) if _is_target(mods[n])]
    if not names:
        kinds = sorted({type(m).__name__ for m in mods.values()})
        raise LowdimError(f"targets={targets!r} matches no Linear/Conv module of {type(model).__name__} "
                          f"(its module types: {', '.join(kinds[:15])}); pass module names, globs or 're:REGEX'")
    return names


@dataclass
class ModuleSpectrum:
    """Measurements of one target module (``m`` outputs, ``n`` inputs; LoRA rank r costs r(m + n))."""

    name: str
    kind: str
    m: int
    n: int
    weight: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    gradient: dict[str, Any] | None = None

    @property
    def cost_per_rank(self) -> int:
        return self.m + self.n


@dataclass
class SpectralProfile:
    """Spectra of every target module of a model; what :func:`lowdim.lowrank.allocate` plans from.

    Attributes
    ----------
    modules : list of ModuleSpectrum
    model : str
        The model's class (or the name given).
    n_params_model : int
        All parameters of the model (a fractional budget is a fraction of this).
    params : dict
        How it was measured (targets, estimator, rows).
    """

    modules: list[ModuleSpectrum]
    model: str = ""
    n_params_model: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    method: str = "lowdim.lowrank.profile"

    def __getitem__(self, name: str) -> ModuleSpectrum:
        for ms in self.modules:
            if ms.name == name:
                return ms
        raise LowdimError(f"no module {name!r} in the profile; profiled: {', '.join(self.names[:20])}")

    @property
    def names(self) -> list[str]:
        return [ms.name for ms in self.modules]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "model": self.model, "n_params_model": self.n_params_model,
                "params": self.params, "modules": [asdict(ms) for ms in self.modules]}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The profile as JSON text; also written (atomically) to ``path`` when given."""
        from lowdim.io import _json_default, write_json

        if path is not None:
            write_json(path, self.to_dict())
        return json.dumps(self.to_dict(), indent=2, default=_json_default)

    @classmethod
    def from_json(cls, source: str | os.PathLike | dict) -> SpectralProfile:
        """Read a profile written by :meth:`to_json` (a path, JSON text or the dict)."""
        if isinstance(source, dict):
            d = source
        else:
            p = Path(source)
            try:
                d = json.loads(p.read_text(encoding="utf-8")) if p.exists() else json.loads(str(source))
            except (json.JSONDecodeError, OSError) as exc:
                raise LowdimError(f"{str(source)[:200]!r} is neither a readable profile file nor JSON text: "
                                  f"{exc}; pass the file written by `lowdim lowrank profile --json`") from exc
        if "modules" not in d:
            raise LowdimError("the profile JSON has no 'modules' list; pass the output of "
                              "`lowdim lowrank profile --json` or SpectralProfile.to_json()")
        mods = [ModuleSpectrum(**ms) for ms in d["modules"]]
        return cls(modules=mods, model=d.get("model", ""), n_params_model=int(d.get("n_params_model", 0)),
                   params=d.get("params", {}), method=d.get("method", "lowdim.lowrank.profile"))

    def add_gradients(self, callback: Any) -> SpectralProfile:
        """Merge a :class:`GradientSpectrumCallback`'s per-matrix medians into the modules (in place)."""
        per = callback.recommend()["per_param"]
        for ms in self.modules:
            g = per.get(ms.name + ".weight")
            if g is not None:
                ms.gradient = dict(g)
        return self

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Column names and rows of the per-module summary (what the CLI prints)."""
        cols = ["module", "shape", "erank", "stable", "r90", "r99", "MP rank", "input ID [CI]", "upd MP"]
        rows = []
        for ms in self.modules:
            w = ms.weight
            inp = "-" if not ms.inputs or ms.inputs.get("id") is None else (f"{ms.inputs['id']:.1f} [{ms.inputs['ci'][0]:.1f}, "
                                             f"{ms.inputs['ci'][1]:.1f}]")
            rows.append([ms.name, f"{ms.m}×{ms.n}", f"{w.get('effective_rank', 0):.1f}",
                         f"{w.get('stable_rank', 0):.1f}", str(w.get("energy_rank_90", "-")),
                         str(w.get("energy_rank_99", "-")), str(w.get("mp_rank", "-")), inp,
                         "-" if not ms.update else str(ms.update["mp_rank"])])
        return cols, rows

    def plot(self, path: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        """Per-module ranks (weight, input ID, update) as a figure; saved to ``path`` when given."""
        from lowdim.report.lowrank_plots import plot_profile

        return plot_profile(self, path, **kwargs)


def _reference_state(reference: Any) -> dict[str, Any]:
    if reference is None:
        return {}
    if hasattr(reference, "state_dict"):
        return dict(reference.state_dict())
    return dict(reference)


def _inputs(model: Any, loader: Iterable[Any], names: list[str], *, max_samples: int, id_method: str,
            random_state: int, device: Any) -> dict[str, dict]:
    from lowdim.api import estimate
    from lowdim.representations.capture import capture_activations
    from lowdim.representations.layers import _spectrum

    acts = capture_activations(model, loader, layers=names, pool="token", max_samples=max_samples,
                               device=device, random_state=random_state, io="input")
    out = {}
    try:
        for name in names:
            X = acts[name]
            X = X.reshape(len(X), -1)
            lam = _spectrum(X) ** 2
            ratio = lam / lam.sum() if lam.sum() > 0 else lam
            if id_method is None:  # explained variance only
                d_id, ci, meth = None, None, None
            else:
                res = estimate(X, method=id_method, random_state=random_state)
                d_id, ci, meth = float(res.dimension), [float(res.ci[0]), float(res.ci[1])], res.method
            out[name] = {"id": d_id, "ci": ci, "method": meth, "n_rows": len(X),
                         "variance_ratio": ratio.tolist(), "explained_variance": np.cumsum(ratio).tolist()}
    finally:
        acts.cleanup()
    return out


def profile(model: Any, loader: Iterable[Any] | None = None, *, targets: str | Sequence[str] = "all-linear",
            what: Sequence[str] = ("weights", "inputs"), reference: Any = None, max_samples: int = 2000,
            id_method: str | None = "twonn", device: Any = None, random_state: int = 0,
            name: str | None = None) -> SpectralProfile:
    """Measure the spectra of every target module of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
    loader : iterable of batches, optional
        Needed for ``"inputs"``: tensors, ``(x, y)`` pairs or dicts of keyword arguments (HF style).
        Token inputs are measured one row per real token (padding dropped by the attention mask).
    targets : str or list of str, default="all-linear"
        See :func:`find_targets`.
    what : sequence of {"weights", "inputs", "updates"}
        ``"updates"`` needs ``reference`` (θ₀ as a model or state dict) and measures ΔW = W − W₀.
    reference : nn.Module or state dict, optional
    max_samples : int, default=2000
        Input rows kept per module (seeded uniform subsample).
    id_method : str or None, default="twonn"
        Estimator of the inputs' intrinsic dimension (:func:`lowdim.estimate`); None measures
        the explained-variance curve only.

    Returns
    -------
    SpectralProfile

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    >>> prof = profile(net, [torch.randn(300, 20)])
    >>> prof.names, prof["0"].weight["mp_rank"] <= 2  # a random init is noise: (almost) nothing above the edge
    (['0', '2'], True)
    """
    require("torch", "torch")
    what = tuple(what)
    bad = [w for w in what if w not in WHAT]
    if bad or not what:
        raise LowdimError(f"what={what!r}: choose from {WHAT}")
    if "inputs" in what and loader is None:
        raise LowdimError("what includes 'inputs' but no loader was given; pass loader=... (batches the model "
                          "accepts) or what=('weights',)")
    if "updates" in what and reference is None:
        raise LowdimError("what includes 'updates' but no reference was given; pass reference=θ₀ "
                          "(the model before fine-tuning, or its state dict)")
    names = find_targets(model, targets)
    mods = dict(model.named_modules())
    ref = _reference_state(reference)
    out: list[ModuleSpectrum] = []
    for n in names:
        mod = mods[n]
        W = weight_matrix(mod)
        ms = ModuleSpectrum(name=n, kind=type(mod).__name__, m=int(W.shape[0]), n=int(W.shape[1]))
        s_w = np.linalg.svd(W, compute_uv=False)
        import torch

        floor = float(torch.finfo(mod.weight.dtype).eps) * max(W.shape) * float(s_w[0] if s_w.size else 0.0)
        if "weights" in what:
            ms.weight = {**spectrum_stats(s_w, W.shape, floor=floor), "singular_values": s_w.tolist()}
        if "updates" in what:
            key = n + ".weight"
            if key not in ref:
                raise LowdimError(f"reference has no {key!r}; it must have the same module names as the model")
            W0 = ref[key].detach().double().cpu()
            W0 = (W0.T if type(mod).__name__ == "Conv1D" else W0).reshape(W.shape[0], -1).numpy()
            s = np.linalg.svd(W - W0, compute_uv=False)
            # the floor is relative to ‖W‖₂: W − W₀ carries the rounding of W itself
            ms.update = {**spectrum_stats(s, W.shape, floor=floor), "singular_values": s.tolist()}
        out.append(ms)
    if "inputs" in what:
        measured = _inputs(model, loader, names, max_samples=max_samples, id_method=id_method,
                           random_state=random_state, device=device)
        for ms in out:
            ms.inputs = measured[ms.name]
    n_total = sum(int(p.numel()) for p in model.parameters())
    return SpectralProfile(modules=out, model=name or type(model).__name__, n_params_model=n_total,
                           params={"targets": targets if isinstance(targets, str) else list(targets),
                                   "what": list(what), "max_samples": max_samples, "id_method": id_method,
                                   "random_state": random_state})
