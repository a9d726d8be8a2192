"""Integer ranks per module under an explicit budget, and their export to what users run.

:func:`allocate` turns a :class:`~lowdim.lowrank.profile.SpectralProfile` into a :class:`RankPlan`:

- **budget**: parameters Σ rᵢ(mᵢ + nᵢ) ≤ B (``budget_mode="params"``; a float < 1 is a fraction
  of the model's parameters) or total rank Σ rᵢ ≤ B (``budget_mode="rank"``, what PEFT's EVA
  budgets);
- **signal**: a per-module curve of decreasing gains (``"input_variance"`` — explained-variance
  ratios of the module's inputs, EVA's signal —, ``"weight_energy"``, ``"update_energy"``,
  ``"grad_energy"``: σᵢ² / Σσ²) or a per-module number (``"input_id"``, ``"weight_mp"``,
  ``"update_mp"``: ranks above the Marchenko–Pastur edge), or a callable of a ModuleSpectrum;
- **rule**: ``"water-filling"`` (greedy on gain per unit cost, optimal for concave gains: every
  kept direction's gain/cost is above a common water level; with ``budget_mode="rank"`` and the
  input-variance signal this is EVA's global top-k of explained-variance ratios, Paischer et al.
  2024), ``"proportional"`` (rᵢ ∝ the module's number, or its energy rank at ``level``), or
  ``"threshold"`` (rᵢ = that number itself; the budget is then a cap);
- ``r_min`` / ``r_max`` bounds (and rᵢ ≤ min(mᵢ, nᵢ)).

A plan exports to ``peft.LoraConfig`` with ``rank_pattern`` / ``alpha_pattern`` keys that match
exactly one module each (PEFT reads them as regexes ``(.*\\.)?(KEY)$`` and silently ignores keys
that match nothing; our keys are ``^`` + the escaped full name), leaves rank-0 modules out of
``target_modules`` (PEFT rejects r = 0), and :meth:`RankPlan.validate` checks the PEFT model
actually built: every module, rank, scaling and the exact parameter count.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowdim.errors import LowdimError, require

__all__ = ["RULES", "SIGNALS", "RankPlan", "allocate", "pattern_key"]

CURVES = {"input_variance": ("inputs", "variance_ratio"), "weight_energy": ("weight", "singular_values"),
          "update_energy": ("update", "singular_values"), "grad_energy": ("gradient", "energy_curve")}
NUMBERS = {"input_id": ("inputs", "id"), "weight_mp": ("weight", "mp_rank"), "update_mp": ("update", "mp_rank")}
SIGNALS = (*CURVES, *NUMBERS)
RULES = ("water-filling", "proportional", "threshold")


def pattern_key(name: str) -> str:
    """A PEFT ``rank_pattern`` key matching exactly the module ``name``.

    Examples
    --------
    >>> key = pattern_key("layers.0")
    >>> [n for n in ["layers.0", "x.layers.0", "layers.01"] if re.match(rf"(.*\\.)?({key})$", n)]
    ['layers.0']
    """
    return "^" + re.escape(name)


def _signal(ms: Any, signal: str | Callable) -> tuple[np.ndarray | None, float | None]:
    """(curve of gains, or None; number, or None) of one module."""
    if callable(signal):
        v = signal(ms)
        arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
        return (arr, None) if arr.size > 1 else (None, float(arr[0]))
    if signal in CURVES:
        part, key = CURVES[signal]
        d = getattr(ms, part)
        if not d or key not in d:
            raise LowdimError(f"signal={signal!r} needs {part!r} measurements of module {ms.name!r}, which the "
                              f"profile lacks; profile with what=(..., '{_what(part)}') or pick another signal")
        v = np.asarray(d[key], dtype=np.float64)
        if key == "singular_values":
            v = v ** 2
        tot = v.sum()
        return (v / tot if tot > 0 else v), None
    part, key = NUMBERS[signal]
    d = getattr(ms, part)
    if not d or key not in d:
        raise LowdimError(f"signal={signal!r} needs {part!r} measurements of module {ms.name!r}, which the "
                          f"profile lacks; profile with what=(..., '{_what(part)}') or pick another signal")
    return None, float(d[key])


def _what(part: str) -> str:
    return {"inputs": "inputs", "weight": "weights", "update": "updates", "gradient": "gradients"}[part]


def _level_rank(curve: np.ndarray, level: float) -> int:
    tot = curve.sum()
    if tot <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(curve) / tot, level - 1e-12) + 1)


@dataclass
class RankPlan:
    """Ranks per module, how they were chosen, and exports.

    Attributes
    ----------
    ranks : dict
        ``{module name: rank}``, rank 0 included (those modules get no adapter).
    shapes : dict
        ``{module name: (m, n)}``: outputs, inputs (a rank costs m + n parameters).
    signal, rule, budget_mode : str
    budget : float or None
        The budget in parameters (or ranks), after resolving a fraction.
    scores : dict
        The per-module number the rule used (energy rank, ID, MP rank), or the curve's total gain kept.
    water_level : float or None
        Water-filling: the smallest gain/cost kept.
    """

    ranks: dict[str, int]
    shapes: dict[str, tuple[int, int]]
    signal: str = ""
    rule: str = ""
    budget_mode: str = "params"
    budget: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    water_level: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        """Trainable adapter parameters Σ rᵢ(mᵢ + nᵢ)."""
        return int(sum(r * (self.shapes[n][0] + self.shapes[n][1]) for n, r in self.ranks.items()))

    @property
    def total_rank(self) -> int:
        return int(sum(self.ranks.values()))

    @property
    def target_modules(self) -> list[str]:
        """Modules with rank ≥ 1, in model order."""
        return [n for n, r in self.ranks.items() if r > 0]

    def to_dict(self) -> dict[str, Any]:
        return {"method": "lowdim.lowrank.allocate", "ranks": self.ranks,
                "shapes": {k: list(v) for k, v in self.shapes.items()}, "signal": self.signal, "rule": self.rule,
                "budget_mode": self.budget_mode, "budget": self.budget, "n_params": self.n_params,
                "total_rank": self.total_rank, "scores": self.scores, "water_level": self.water_level,
                "params": self.params}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        from lowdim.io import _json_default, write_json

        if path is not None:
            write_json(path, self.to_dict())
        return json.dumps(self.to_dict(), indent=2, default=_json_default)

    @classmethod
    def from_json(cls, source: str | os.PathLike | dict) -> RankPlan:
        d = source if isinstance(source, dict) else json.loads(Path(source).read_text(encoding="utf-8"))
        return cls(ranks={k: int(v) for k, v in d["ranks"].items()},
                   shapes={k: (int(v[0]), int(v[1])) for k, v in d["shapes"].items()},
                   signal=d.get("signal", ""), rule=d.get("rule", ""), budget_mode=d.get("budget_mode", "params"),
                   budget=d.get("budget"), scores=d.get("scores", {}), water_level=d.get("water_level"),
                   params=d.get("params", {}))

    # ---- PEFT export -------------------------------------------------------------------------
    def lora_config_dict(self, *, alpha_per_rank: float = 1.0, module_names: list[str] | None = None,
                         **kwargs: Any) -> dict[str, Any]:
        """The ``LoraConfig`` keyword arguments as plain JSON-able data (no peft needed).

        ``lora_alpha`` of module i is ``alpha_per_rank · rᵢ`` (the same α/r scaling everywhere);
        ``module_names`` (all module names of the model) lets the export use a readable list for
        ``target_modules`` when no name is a dotted suffix of another; otherwise (or when not given)
        it is an anchored regex, which PEFT full-matches.
        """
        targets = self.target_modules
        if not targets:
            raise LowdimError("the plan gives every module rank 0; there is nothing to adapt (raise the budget)")
        common = Counter(self.ranks[n] for n in targets).most_common(1)[0][0]
        tm: Any = "(?:" + "|".join(re.escape(n) for n in targets) + ")"
        if module_names is not None:
            ambiguous = [t for t in targets if sum(k == t or k.endswith("." + t) for k in module_names) != 1]
            if not ambiguous:
                tm = list(targets)
        cfg = {"r": int(common), "lora_alpha": float(alpha_per_rank * common), "target_modules": tm,
               "rank_pattern": {pattern_key(n): int(self.ranks[n]) for n in targets},
               "alpha_pattern": {pattern_key(n): float(alpha_per_rank * self.ranks[n]) for n in targets}}
        clash = sorted(set(kwargs) & {"r", "target_modules", "rank_pattern"})
        if clash:
            raise LowdimError(f"{clash} are set by the plan; pass the other LoraConfig options only")
        if "lora_alpha" in kwargs:  # one α for every module: drop the per-module pattern
            cfg.pop("alpha_pattern")
        cfg.update(kwargs)
        return cfg

    def to_lora_config(self, model: Any = None, *, alpha_per_rank: float = 1.0, **kwargs: Any) -> Any:
        """``peft.LoraConfig`` with this plan's per-module ranks (see :meth:`lora_config_dict`).

        Examples
        --------
        >>> import torch, peft
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        >>> plan = RankPlan(ranks={"0": 3, "2": 0}, shapes={"0": (16, 8), "2": (4, 16)})
        >>> pm = peft.get_peft_model(net, plan.to_lora_config(net))
        >>> plan.validate(pm)["n_params"]
        72
        """
        peft = require("peft", "lowrank")
        names = [n for n, _ in model.named_modules()] if model is not None else None
        return peft.LoraConfig(**self.lora_config_dict(alpha_per_rank=alpha_per_rank, module_names=names, **kwargs))

    def validate(self, peft_model: Any, adapter: str = "default") -> dict[str, Any]:
        """Check the PEFT model actually built: modules, ranks, scalings and the exact parameter count.

        Raises
        ------
        LowdimError
            Listing every module that is missing, extra, or has the wrong rank; or a parameter
            count that differs from :attr:`n_params`.
        """
        require("peft", "lowrank")
        from peft.tuners.lora import LoraLayer

        found: dict[str, Any] = {}
        for k, mod in peft_model.named_modules():
            if isinstance(mod, LoraLayer) and adapter in getattr(mod, "r", {}):
                for pre in ("base_model.model.", "base_model."):
                    if k.startswith(pre):
                        k = k[len(pre):]
                        break
                found[k] = mod
        want = {n: r for n, r in self.ranks.items() if r > 0}
        problems = [f"{n!r}: planned r={r}, no LoRA layer built" for n, r in want.items() if n not in found]
        problems += [f"{n!r}: LoRA layer built but not in the plan" for n in found if n not in want]
        n_params = 0
        scalings = {}
        for n, mod in found.items():
            if n not in want:
                continue
            r = int(mod.r[adapter])
            if r != want[n]:
                problems.append(f"{n!r}: planned r={want[n]}, built r={r} (a rank_pattern key did not match)")
            n_params += sum(int(p.numel()) for p in mod.lora_A[adapter].parameters())
            n_params += sum(int(p.numel()) for p in mod.lora_B[adapter].parameters())
            scalings[n] = float(mod.scaling[adapter])
        if not problems and n_params != self.n_params:
            problems.append(f"adapter parameters: planned {self.n_params:,}, built {n_params:,}")
        if problems:
            shown = "; ".join(problems[:10]) + (f"; … ({len(problems)} problems)" if len(problems) > 10 else "")
            raise LowdimError(f"the PEFT model does not match the plan: {shown}. Build it with "
                              "get_peft_model(model, plan.to_lora_config(model)) on the profiled model")
        return {"ok": True, "modules": len(found), "n_params": n_params, "scalings": scalings}

    def to_adalora_config(self, *, total_step: int, init_r: int | None = None, **kwargs: Any) -> Any:
        """``peft.AdaLoraConfig`` over the plan's modules with the same average rank as target.

        AdaLoRA budgets ranks (``target_r`` per module on average), not parameters; ``init_r``
        defaults to 1.5 × the largest planned rank.
        """
        peft = require("peft", "lowrank")
        targets = self.target_modules
        if not targets:
            raise LowdimError("the plan gives every module rank 0; there is nothing to adapt (raise the budget)")
        target_r = max(1, round(self.total_rank / len(targets)))
        init_r = int(init_r or math.ceil(1.5 * max(self.ranks[n] for n in targets)))
        tm = "(?:" + "|".join(re.escape(n) for n in targets) + ")"
        return peft.AdaLoraConfig(target_modules=tm, init_r=init_r, target_r=target_r, total_step=int(total_step),
                                  **kwargs)

    def galore_param_groups(self, model: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Parameter groups for :func:`lowdim.lowrank.galore.galore_optimizer`: one per planned rank."""
        from lowdim.lowrank.galore import galore_param_groups

        return galore_param_groups(model, rank={n + ".weight": r for n, r in self.ranks.items()}, **kwargs)


def _resolve_budget(budget: Any, mode: str, profile: Any) -> float | None:
    if budget is None:
        return None
    if isinstance(budget, str):
        b = budget.strip()
        try:
            budget = float(b[:-1]) / 100 if b.endswith("%") else float(b)
        except ValueError as exc:
            raise LowdimError(f"budget={budget!r} is not a number, a fraction or a percentage like '1%'") from exc
    budget = float(budget)
    if not budget > 0 or not math.isfinite(budget):
        raise LowdimError(f"budget={budget} must be positive")
    if budget < 1:
        if mode == "rank":
            raise LowdimError(f"budget={budget} < 1 in budget_mode='rank'; give the total rank as an integer")
        if not profile.n_params_model:
            raise LowdimError("a fractional budget needs the model's parameter count, which this profile lacks; "
                              "give the budget in parameters")
        return math.floor(budget * profile.n_params_model)
    return math.floor(budget)


def allocate(profile: Any, *, budget: Any = None, budget_mode: str = "params",
             signal: str | Callable = "input_variance", rule: str = "water-filling", r_min: int = 0,
             r_max: int | None = None, level: float = 0.9) -> RankPlan:
    """Allocate integer ranks to the profile's modules.

    Parameters
    ----------
    profile : SpectralProfile
    budget : int, float or str
        Parameters (``budget_mode="params"``: an int, a fraction < 1 of the model's parameters, or
        ``"1%"``) or total rank (``budget_mode="rank"``). Required except for ``rule="threshold"``.
    budget_mode : {"params", "rank"}
    signal : str or callable
        One of :data:`SIGNALS`, or ``f(ModuleSpectrum) -> number or curve``.
    rule : {"water-filling", "proportional", "threshold"}
    r_min, r_max : int
    level : float, default=0.9
        Cumulative level that turns a curve into a number (proportional / threshold rules).

    Examples
    --------
    >>> from lowdim.lowrank.profile import ModuleSpectrum, SpectralProfile
    >>> mods = [ModuleSpectrum("a", "Linear", 10, 10, weight={"singular_values": [3, 2, 1e-3]}),
    ...         ModuleSpectrum("b", "Linear", 10, 10, weight={"singular_values": [3, 1e-3, 1e-3]})]
    >>> allocate(SpectralProfile(mods), budget=3, budget_mode="rank", signal="weight_energy").ranks
    {'a': 2, 'b': 1}
    """
    from lowdim.validation import check_choice

    check_choice("budget_mode", budget_mode, ("params", "rank"))
    check_choice("rule", rule, RULES)
    if not callable(signal):
        check_choice("signal", signal, SIGNALS)
    if r_min < 0 or (r_max is not None and r_max < max(r_min, 1)):
        raise LowdimError(f"r_min={r_min}, r_max={r_max}: need 0 ≤ r_min ≤ r_max and r_max ≥ 1")
    if not 0 < level <= 1:
        raise LowdimError(f"level={level} must be in (0, 1]")
    mods = list(profile.modules)
    if not mods:
        raise LowdimError("the profile has no modules; profile a model with Linear/Conv targets first")
    B = _resolve_budget(budget, budget_mode, profile)
    if B is None and rule != "threshold":
        raise LowdimError(f"rule={rule!r} needs a budget (parameters, a fraction like 0.01 or '1%', or "
                          "budget_mode='rank' with a total rank)")
    cost = {ms.name: (ms.m + ms.n if budget_mode == "params" else 1) for ms in mods}
    cap = {ms.name: min(ms.m, ms.n, r_max if r_max is not None else 10**9) for ms in mods}
    lo = {ms.name: min(r_min, cap[ms.name]) for ms in mods}
    sig = {ms.name: _signal(ms, signal) for ms in mods}
    if B is not None:
        floor_cost = sum(lo[n] * cost[n] for n in lo)
        cheapest = min(mods, key=lambda ms: cost[ms.name])
        unit = "parameters" if budget_mode == "params" else "ranks"
        if floor_cost > B:
            raise LowdimError(f"budget={B:,} {unit} is below r_min={r_min} everywhere ({floor_cost:,} {unit}); "
                              "lower r_min or raise the budget")
        if floor_cost == 0 and cost[cheapest.name] > B:
            raise LowdimError(f"budget={B:,} {unit} is too small for rank 1 in any module: the cheapest, "
                              f"{cheapest.name!r} ({cheapest.m}×{cheapest.n}), needs {cost[cheapest.name]:,}; "
                              "raise the budget")
    scores: dict[str, float] = {}
    level_used = None
    if rule == "water-filling":
        no_curve = [n for n, (c, _) in sig.items() if c is None]
        if no_curve:
            raise LowdimError(f"rule='water-filling' needs a curve signal (one of {list(CURVES)}); "
                              f"{signal!r} gives one number per module — use rule='proportional' or 'threshold'")
        ranks, level_used = _water_fill(sig, cost, lo, cap, B)
        scores = {n: float(sig[n][0][:ranks[n]].sum()) for n in ranks}
    else:
        number = {n: (float(_level_rank(c, level)) if c is not None else float(v)) for n, (c, v) in sig.items()}
        scores = number
        if rule == "threshold":
            ranks = {n: int(min(max(round(number[n]), lo[n]), cap[n])) for n in number}
            used = sum(ranks[n] * cost[n] for n in ranks)
            if B is not None and used > B:
                raise LowdimError(f"the threshold plan needs {used:,} but budget={B:,}; raise the budget or use "
                                  "rule='water-filling' / 'proportional' to fit it")
        else:
            ranks = _proportional(number, cost, lo, cap, B)
    if not any(ranks.values()):
        raise LowdimError(f"no module gets rank ≥ 1 with signal={signal!r}, rule={rule!r}; raise the budget, "
                          "r_min, or pick another signal")
    order = [ms.name for ms in mods]
    return RankPlan(ranks={n: int(ranks[n]) for n in order}, shapes={ms.name: (ms.m, ms.n) for ms in mods},
                    signal=signal if isinstance(signal, str) else getattr(signal, "__name__", "callable"),
                    rule=rule, budget_mode=budget_mode, budget=B, scores=scores, water_level=level_used,
                    params={"r_min": r_min, "r_max": r_max, "level": level, "model": profile.model})


def _water_fill(sig: dict, cost: dict, lo: dict, cap: dict, B: float) -> tuple[dict[str, int], float | None]:
    """Greedy on gain per unit cost; a module whose next rank does not fit leaves the race."""
    ranks = dict(lo)
    left = B - sum(ranks[n] * cost[n] for n in ranks)
    heap = []
    for n, (curve, _) in sig.items():
        if ranks[n] < min(cap[n], len(curve)):
            heapq.heappush(heap, (-curve[ranks[n]] / cost[n], n))
    level = None
    while heap:
        neg, n = heapq.heappop(heap)
        if cost[n] > left:
            continue
        if -neg <= 0:
            break
        ranks[n] += 1
        left -= cost[n]
        level = -neg
        curve = sig[n][0]
        if ranks[n] < min(cap[n], len(curve)):
            heapq.heappush(heap, (-curve[ranks[n]] / cost[n], n))
    return ranks, level


def _proportional(number: dict, cost: dict, lo: dict, cap: dict, B: float) -> dict[str, int]:
    """rᵢ = clip(⌊c·sᵢ⌋) with the largest c that fits, then leftovers by largest remainder."""
    def fit(c: float) -> dict[str, int]:
        return {n: int(min(max(math.floor(c * s), lo[n]), cap[n])) for n, s in number.items()}

    def used(r: dict) -> float:
        return sum(r[n] * cost[n] for n in r)

    lo_c, hi_c = 0.0, 1.0
    while used(fit(hi_c)) <= B and hi_c < 1e12 and fit(hi_c) != fit(hi_c * 2):
        hi_c *= 2
    for _ in range(60):
        mid = (lo_c + hi_c) / 2
        lo_c, hi_c = (mid, hi_c) if used(fit(mid)) <= B else (lo_c, mid)
    ranks = fit(lo_c)
    left = B - used(ranks)
    for n in sorted(number, key=lambda k: -(lo_c * number[k] - math.floor(lo_c * number[k]))):
        if number[n] > 0 and ranks[n] < cap[n] and cost[n] <= left:
            ranks[n] += 1
            left -= cost[n]
    return ranks
