"""``find_d90``: the smallest subspace dimension that reaches 90 % of full training.

Li et al. (2018), "Measuring the Intrinsic Dimension of Objective Landscapes" (ICLR) define
d_int90 as the smallest d at which training in a random d-dimensional subspace reaches 90 % of
the full-training baseline; Aghajanyan et al. (2021) use the same rule for fine-tuning.
This module automates the search:

1. the baseline (full training) is measured over the seeds, unless given;
2. d is swept upwards on a log grid (``d_min · grid_factor^k``) until the mean metric over the
   seeds reaches the threshold;
3. the bracket (last failing, first passing grid point) is bisected geometrically until it is
   narrower than ``rel_tol`` (or ``max_bisect`` steps);
4. d90 is the smallest tested d whose mean passes; its interval ``ci`` runs from one above the
   largest tested d below d90 whose interval lies entirely under the threshold, to the smallest
   tested d ≥ d90 whose interval lies entirely above it (``None``: "not reached within the tested
   range"). Accuracy intervals are logit intervals inside (0, 1) that add the seed spread and the
   test-set error (:mod:`lowdim.subspace.summary`); the result names the method.

Sanity refusals (:class:`~lowdim.LowdimError`), each before the work it would waste: a task with
``epochs`` < 1 (at construction); a given baseline at or below the test set's majority-class rate,
or below an absolute threshold (before any run); a measured baseline whose interval does not
clear the majority-class rate, or whose upper end is below an absolute threshold (after the
baseline, before the sweep).

Threshold rules: ``"relative"`` (default) — mean ≥ threshold × measured baseline mean;
``"absolute"`` — mean ≥ threshold (a metric level, e.g. accuracy 0.9). The results file (JSON
lines, see :mod:`lowdim.subspace.records`) gets every finished run as it finishes, and a rerun
with ``resume=True`` skips the runs already there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.subspace.projections import DEFAULT_MAX_DENSE_BYTES, PROJECTIONS
from lowdim.subspace.summary import (
    ACCURACY_INTERVAL,
    D90Result,
    accuracy_interval,
    check_baseline,
    d90_interval,
    mean_ci,
    pack_correct,
)
from lowdim.subspace.tasks import TASKS, Task
from lowdim.validation import check_choice, check_fraction, check_int

__all__ = ["D90Result", "find_d90", "mean_ci", "run_one", "scaled_lr"]

THRESHOLD_RULES = ("relative", "absolute")
#: how the subspace learning rate follows d: kept, or scaled by √(LR_REFERENCE_D / d)
LR_SCALINGS = ("constant", "sqrt")
LR_REFERENCE_D = 1000


def scaled_lr(lr: float, d: int | None, scaling: str) -> float:
    """The learning rate a subspace run at dimension ``d`` uses.

    With Adam every coordinate of z moves by about ``lr`` per step, so a step moves θ by about
    ``lr·√d`` (P has near-orthogonal unit columns). ``"sqrt"`` scales ``lr`` by
    ``√(1000 / d)``: the parameter-space step stays what ``lr`` gives at d = 1,000, so one
    learning rate serves a whole sweep from d = 10 to 10⁵. ``"constant"`` keeps ``lr``.

    Examples
    --------
    >>> scaled_lr(0.01, 4000, "sqrt")
    0.005
    """
    if scaling == "constant" or d is None:
        return float(lr)
    return float(lr) * math.sqrt(LR_REFERENCE_D / int(d))


# ------------------------------------------------------------------------------ one training run
@lru_cache(maxsize=4)
def _builtin_task(name: str, options: tuple) -> Task:
    from lowdim.subspace.tasks import get_task

    return get_task(name, **dict(options))


def resolve_task(task: Any, options: dict | None = None) -> Task:
    """A :class:`Task` from a built-in name (+ options) or a Task instance."""
    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        check_choice("task", task, TASKS)
        return _builtin_task(task, tuple(sorted((options or {}).items())))
    raise LowdimError(f"task must be a built-in task name ({', '.join(sorted(TASKS))}) or a "
                      f"lowdim.subspace.tasks.Task, got {type(task).__name__}")


def run_one(spec: dict) -> dict:
    """Train one model (baseline or subspace) described by ``spec`` and return its record.

    Module-level and picklable, so that a runner can ship it to Dask workers. ``spec`` keys:
    ``kind`` ("baseline" | "subspace"), ``d``, ``seed``, ``task`` (name or Task),
    ``task_options``, ``init_seed``, ``projection``, ``said``, ``normalize``, ``lrs``,
    ``max_dense_bytes``, ``lr_scaling``, ``basis`` (task vectors of ``projection="task_vectors"``).
    Every learning rate in ``lrs`` is tried (scaled with d, see :func:`scaled_lr`); the one with
    the best validation metric is kept.
    """
    import torch

    from lowdim.subspace.model import SubspaceModel

    task = resolve_task(spec["task"], spec.get("task_options"))
    threads = int(task.info.get("threads", 0) or 0)  # tiny models: 1 thread avoids sync overhead
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        tried = []
        best: dict | None = None
        for lr0 in spec["lrs"]:
            lr = lr0 if spec["kind"] == "baseline" else scaled_lr(lr0, spec["d"], spec.get("lr_scaling", "constant"))
            torch.manual_seed(int(spec["seed"]))
            model = task.model_fn(int(spec["init_seed"]))
            if spec["kind"] == "subspace":
                model = SubspaceModel(model, int(spec["d"]), projection=spec["projection"], said=spec["said"],
                                      seed=int(spec["seed"]), normalize=spec.get("normalize", "network"),
                                      max_dense_bytes=int(spec.get("max_dense_bytes", DEFAULT_MAX_DENSE_BYTES)),
                                      basis=spec.get("basis"))
            info = task.train_fn(model, lr=float(lr), seed=int(spec["seed"])) or {}
            bits = None
            if getattr(task, "correct_fn", None) is not None:  # per-example: the metric is their mean
                raw = np.asarray(task.correct_fn(model)).reshape(-1)
                if raw.dtype != bool and not np.isin(raw, (0, 1)).all():
                    raise LowdimError(f"task {task.name!r}: correct_fn must return one 0/1 (bool) per test "
                                      f"example, got values such as {raw[~np.isin(raw, (0, 1))][:3].tolist()}; "
                                      "return correctness, not scores (or drop correct_fn)")
                bits = raw.astype(bool)
                metric = float(bits.mean()) if len(bits) else math.nan
            else:
                metric = float(task.evaluate_fn(model))
            val = float(info.get("val", metric))
            entry = {"lr": float(lr), "val": val, "metric": metric,
                     **{k: v for k, v in info.items() if k != "val" and isinstance(v, (int, float))}}
            if bits is not None:
                entry["_bits"] = bits
            tried.append(entry)
            if best is None or val > best["val"]:
                best = entry
    finally:
        torch.set_num_threads(old_threads)
    assert best is not None
    bits = best.get("_bits")
    for entry in tried:
        entry.pop("_bits", None)
    return {"kind": spec["kind"], "d": spec.get("d"), "seed": int(spec["seed"]), "metric": best["metric"],
            "val": best["val"], "lr": best["lr"], "tried": tried,
            **({"correct": pack_correct(bits)} if bits is not None else {}),
            "seconds": round(time.perf_counter() - t0, 4)}


# ----------------------------------------------------------------------------------- the search
def find_d90(
    task: str | Task = "digits_mlp",
    *,
    task_options: dict | None = None,
    model_fn: Callable | None = None,
    train_fn: Callable | None = None,
    evaluate_fn: Callable | None = None,
    projection: str = "fastfood",
    said: bool = False,
    normalize: str = "network",
    seeds: int | Sequence[int] = 3,
    threshold: float = 0.9,
    threshold_rule: str = "relative",
    baseline: float | None = None,
    d_min: int | None = None,
    d_max: int | None = None,
    grid_factor: float = 2.0,
    rel_tol: float = 0.1,
    max_bisect: int = 6,
    lrs: Sequence[float] | None = None,
    baseline_lrs: Sequence[float] | None = None,
    lr_scaling: str | None = None,
    init_seed: int = 0,
    confidence: float = 0.95,
    max_dense_bytes: int = DEFAULT_MAX_DENSE_BYTES,
    results: str | None = None,
    resume: bool = False,
    runner: Any = None,
    client: Any = None,
    progress: Callable[[dict], None] | None = None,
    basis: Any = None,
) -> D90Result:
    """Search the smallest d whose subspace training reaches the threshold (d90).

    Parameters
    ----------
    task : str or Task, default="digits_mlp"
        A built-in task (see :data:`lowdim.subspace.tasks.TASKS`) or a
        :class:`~lowdim.subspace.tasks.Task`. Alternatively pass ``model_fn``, ``train_fn`` and
        ``evaluate_fn`` (see :mod:`lowdim.subspace.tasks.base`); ``task`` then names them.
    task_options : dict, optional
        Options of a built-in task (``device``, ``epochs``, ``data_dir`` …).
    projection : {"fastfood", "dense", "sparse"}
    said : bool
        Structure-aware intrinsic dimension (Aghajanyan et al. 2021).
    normalize : {"network", "tensor"}
        Unit-norm columns over the whole network, or per tensor (see :class:`SubspaceModel`).
    seeds : int or sequence of int, default=3
        Projection (and data-order) seeds run at every d; an int n means ``range(n)``.
    threshold : float in (0, 1], default=0.9
    threshold_rule : {"relative", "absolute"}
        ``relative``: mean ≥ threshold × baseline; ``absolute``: mean ≥ threshold.
    baseline : float or (mean, low, high), optional
        Known full-training metric; measured (over the seeds) when omitted and the rule is relative.
        A triple — e.g. another sweep's ``(res.baseline, *res.baseline_ci)`` — carries the
        baseline's interval into the relative threshold's ends, as a measured baseline does; a
        bare float is taken as exact.
    d_min, d_max : int, optional
        Grid range; default 10 (SAID: number of tensors + 10) up to D.
    grid_factor : float, default=2
        Ratio of successive grid points.
    rel_tol : float, default=0.1
        Bisection stops when (hi − lo) ≤ rel_tol · hi.
    max_bisect : int, default=6
    lrs, baseline_lrs : sequence of float, optional
        Learning rates tried per run (best validation metric kept); default the task's.
    lr_scaling : {"constant", "sqrt"}, optional
        Default: the task's (``"sqrt"`` for ``minilm_scifact`` and ``mnist5k_*``, else
        ``"constant"``). ``"sqrt"``: a subspace run at dimension d uses ``lr · √(1000 / d)``, which keeps the
        parameter-space step of Adam constant across d (see :func:`scaled_lr`); ``lrs`` are
        then the rates at d = 1,000. Records keep the rate actually used.
    init_seed : int
        Seed of θ₀ (the model's initialisation) — fixed across all runs.
    confidence : float, default=0.95
        Level of the per-d and baseline intervals (logit intervals inside [0, 1] for accuracies,
        Student-t otherwise; ``D90Result.interval_method`` says which).
    results : path, optional
        JSON-lines results file; every finished run is appended atomically.
    resume : bool
        Continue ``results``: finished (kind, d, seed) runs are skipped. A file written with
        another configuration is refused.
    runner : object, optional
        Anything with ``map_unordered(fn, specs)``; default :class:`SerialRunner`.
    client : distributed.Client, optional
        Run on Dask (``dask`` extra) through ``lowdim.scale.DaskRunner(client)``.
    progress : callable, optional
        Called with ``{"stage", "done", "total", "record"}`` after every run.
    basis : array-like of shape (T, D), optional
        Task vectors for ``projection="task_vectors"`` (aTLAS, see
        :mod:`lowdim.subspace.task_vectors`); ``d_max`` then defaults to T × number of tensors.

    Returns
    -------
    D90Result

    Examples
    --------
    >>> r = find_d90("digits_mlp", seeds=1, d_min=64, d_max=128, max_bisect=0)  # doctest: +SKIP
    >>> r.d90, r.threshold_rule                                                # doctest: +SKIP
    (128, 'relative')
    """
    t_start = time.perf_counter()
    if model_fn is not None or train_fn is not None or evaluate_fn is not None:
        if not (model_fn and train_fn and evaluate_fn):
            raise LowdimError("pass all three of model_fn, train_fn and evaluate_fn (or a built-in task name)")
        task = Task(name=task if isinstance(task, str) else "custom", model_fn=model_fn, train_fn=train_fn,
                    evaluate_fn=evaluate_fn, lrs=tuple(lrs or (1e-2,)), baseline_lrs=tuple(baseline_lrs or (1e-3,)))
    check_choice("projection", projection, PROJECTIONS)
    check_choice("threshold_rule", threshold_rule, THRESHOLD_RULES)
    check_choice("normalize", normalize, ("network", "tensor"))
    threshold = check_fraction("threshold", threshold)
    check_fraction("confidence", confidence, high_open=True)
    check_fraction("rel_tol", rel_tol, high=1.0)
    max_bisect = check_int("max_bisect", max_bisect, low=0)
    seed_list = list(range(check_int("seeds", seeds, low=1))) if isinstance(seeds, (int, np.integer)) \
        else [check_int("seed", s, low=0) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise LowdimError(f"seeds must be a positive count or distinct non-negative ints, got {seeds!r}")
    if not (isinstance(grid_factor, (int, float)) and grid_factor > 1):
        raise LowdimError(f"grid_factor={grid_factor!r} must be a number > 1")
    task_obj = resolve_task(task, task_options)
    lr_scaling = task_obj.lr_scaling if lr_scaling is None else lr_scaling
    check_choice("lr_scaling", lr_scaling, LR_SCALINGS)
    lrs = tuple(float(x) for x in (lrs or task_obj.lrs))
    baseline_lrs = tuple(float(x) for x in (baseline_lrs or task_obj.baseline_lrs))
    if not lrs or not baseline_lrs or min(lrs + baseline_lrs) <= 0:
        raise LowdimError(f"learning rates must be positive numbers, got lrs={lrs}, baseline_lrs={baseline_lrs}")

    from lowdim.subspace.model import trainable_parameters

    params = trainable_parameters(task_obj.model_fn(init_seed))
    D, n_tensors = sum(p.numel() for _, p in params), len(params)
    low = n_tensors + 1 if said else 1
    cap = D if basis is None else min(D, int(np.shape(basis)[0] if np.ndim(basis) == 2 else 1) * n_tensors)
    d_min = check_int("d_min", d_min if d_min is not None else min(low - 1 + 10, cap), low=low, high=D,
                      fix=f"the model has D={D} trainable parameters" + (f" in {n_tensors} tensors (SAID needs d > {n_tensors})" if said else ""))
    if (projection == "task_vectors") != (basis is not None):
        raise LowdimError("basis= (task vectors) goes with projection='task_vectors' and only with it; "
                          f"got projection={projection!r} and basis {'given' if basis is not None else 'missing'}")
    d_max = check_int("d_max", d_max if d_max is not None else cap, low=d_min, high=cap,
                      fix=f"the model has D={D} trainable parameters")
    bounded = "accuracy" in str(task_obj.metric).lower()  # a fraction in [0, 1]
    n_test, chance = task_obj.n_test, task_obj.chance
    given = (math.nan, math.nan, math.nan)
    if baseline is not None:
        trip = list(baseline) if isinstance(baseline, (tuple, list, np.ndarray)) else [baseline, math.nan, math.nan]
        if len(trip) != 3:
            raise LowdimError(f"baseline={baseline!r} must be a number or a (mean, low, high) triple")
        cap = 1.0 if bounded else math.inf
        mean = check_fraction("baseline", trip[0], low=0.0, low_open=False, high=cap)
        ends = [math.nan if x is None or (isinstance(x, (float, np.floating)) and x != x) else x for x in trip[1:]]
        if ends[0] == ends[0] or ends[1] == ends[1]:  # an interval was given: both ends, around the mean
            ends = [check_fraction(f"baseline {w}", e, low=0.0, low_open=False, high=cap)
                    for w, e in zip(("low", "high"), ends)]
            if not ends[0] <= mean <= ends[1]:
                raise LowdimError(f"baseline={tuple(trip)!r}: a (mean, low, high) triple needs low ≤ mean ≤ high")
        baseline, given = mean, (mean, *ends)
        check_baseline(baseline, given[1], given[2], chance, threshold, threshold_rule, given=True)

    config = {"task": task_obj.name, "task_options": dict(sorted((task_options or {}).items())),
              "task_info": task_obj.info, "projection": projection, "said": bool(said), "normalize": normalize,
              "seeds": seed_list,
              "threshold": threshold, "threshold_rule": threshold_rule, "baseline_given": baseline if given[1] != given[1] else list(given),
              "d_min": d_min, "d_max": d_max, "grid_factor": float(grid_factor), "rel_tol": float(rel_tol),
              "max_bisect": max_bisect, "lrs": list(lrs), "baseline_lrs": list(baseline_lrs),
              "lr_scaling": lr_scaling, "init_seed": int(init_seed), "n_params": D, "max_dense_bytes": int(max_dense_bytes),
              "metric": task_obj.metric, "confidence": float(confidence),
              "interval_method": ACCURACY_INTERVAL if bounded else "student-t over seeds"}
    if basis is not None:
        import hashlib

        import torch

        b = torch.as_tensor(basis).detach().float().cpu().contiguous()
        config["basis"] = {"shape": list(b.shape), "sha256": hashlib.sha256(b.numpy().tobytes()).hexdigest()}
    store = None
    if results is not None:
        from lowdim.subspace.records import ResultsFile

        store = ResultsFile(results, config, resume=resume)
    if runner is None and client is not None:
        from lowdim.scale.dask_runner import DaskRunner

        runner = DaskRunner(client)
    if runner is None:
        from lowdim.subspace.runner import SerialRunner

        runner = SerialRunner()
    if not hasattr(runner, "map_unordered"):
        raise LowdimError(f"runner must have a map_unordered(fn, specs) method, got {type(runner).__name__}")
    parallel = bool(getattr(runner, "parallel", True))

    task_ref: Any = task if isinstance(task, str) else task_obj
    base_spec = {"task": task_ref, "task_options": dict(task_options or {}), "init_seed": int(init_seed),
                 "projection": projection, "said": bool(said), "normalize": normalize,
                 "max_dense_bytes": int(max_dense_bytes), "lr_scaling": lr_scaling, "basis": basis}
    records: dict[tuple, dict] = {}
    if store is not None:
        from lowdim.subspace.records import run_key

        for r in store.runs:
            records[run_key(r)] = {k: v for k, v in r.items() if k != "type"}
    grid = _log_grid(d_min, d_max, grid_factor)
    state = {"done": 0, "total": (len(seed_list) if baseline is None else 0) + len(grid) * len(seed_list)}

    counted: set = set()

    def execute(stage: str, kind: str, ds: Sequence[Any]) -> None:
        specs = []
        for d in ds:
            for s in seed_list:
                if (kind, d, s) not in records:
                    specs.append({**base_spec, "kind": kind, "d": d, "seed": s,
                                  "lrs": list(baseline_lrs if kind == "baseline" else lrs)})
                elif (kind, d, s) not in counted:  # finished earlier (resumed file)
                    counted.add((kind, d, s))
                    state["done"] += 1
        for _spec, rec in runner.map_unordered(run_one, specs):
            if store is not None:
                store.append(rec)
            key = (rec["kind"], rec["d"], rec["seed"])
            records[key] = rec
            counted.add(key)
            state["done"] += 1
            if progress is not None:
                progress({"stage": stage, "done": state["done"], "total": state["total"], "record": rec})

    def interval(vals: list) -> tuple[float, float, float]:
        if not bounded:
            return mean_ci(vals, confidence)
        bad = [v for v in vals if not 0.0 <= v <= 1.0]
        if bad:
            raise LowdimError(f"the task's metric {task_obj.metric!r} returned {bad[0]!r}; an accuracy lies in "
                              "[0, 1] (name the metric otherwise to get Student-t intervals)")
        return accuracy_interval(vals, n_test, confidence)

    def stats(d: int) -> dict:
        vals = [records[("subspace", d, s)]["metric"] for s in seed_list]
        m, lo, hi = interval(vals)
        return {"d": d, "mean": m, "ci_low": lo, "ci_high": hi, "n": len(vals), "passes": m >= thr}

    # 1. baseline (and the refusals it allows, before the sweep)
    if baseline is None:
        execute("baseline", "baseline", [None])
        b_mean, b_lo, b_hi = interval([records[("baseline", None, s)]["metric"] for s in seed_list])
        check_baseline(b_mean, b_lo, b_hi, chance, threshold, threshold_rule, given=False, n_seeds=len(seed_list))
    else:
        b_mean, b_lo, b_hi = given
    thr = threshold * b_mean if threshold_rule == "relative" else threshold
    if threshold_rule == "relative" and b_lo == b_lo:  # the threshold's own uncertainty (baseline interval)
        thr_lo, thr_hi = threshold * b_lo, threshold * b_hi
    else:
        thr_lo = thr_hi = thr

    # 2. log grid, upwards until the mean passes
    tested: dict[int, dict] = {}
    lo_fail, hi_pass = low - 1, None
    if parallel:
        execute("grid", "subspace", grid)
    for d in grid:
        execute("grid", "subspace", [d])
        tested[d] = stats(d)
        if tested[d]["passes"]:
            hi_pass = d
            break
        lo_fail = d
    # 3. bisection between the last failing and the first passing d
    steps = 0
    if hi_pass is not None:
        state["total"] = state["done"] + max_bisect * len(seed_list)
        while steps < max_bisect and hi_pass - lo_fail > max(1.0, rel_tol * hi_pass):
            mid = round(math.sqrt(max(lo_fail, 1) * hi_pass)) if lo_fail >= 1 else (low + hi_pass) // 2
            mid = min(max(mid, lo_fail + 1), hi_pass - 1)
            execute("bisect", "subspace", [mid])
            tested[mid] = stats(mid)
            if tested[mid]["passes"]:
                hi_pass = mid
            else:
                lo_fail = mid
            steps += 1
    for d in grid:  # runs done in parallel beyond the first passing grid point
        if d not in tested and all(("subspace", d, s) in records for s in seed_list):
            tested[d] = stats(d)
    per_d = [tested[d] for d in sorted(tested)]
    ci = d90_interval(per_d, hi_pass, thr_lo, thr_hi, low)
    runs = sorted(records.values(), key=lambda r: (r["kind"] != "baseline", r["d"] or 0, r["seed"]))
    return D90Result(d90=hi_pass, ci=ci, baseline=b_mean, baseline_ci=(b_lo, b_hi), threshold=threshold,
                     threshold_rule=threshold_rule, threshold_value=thr, per_d=per_d, runs=runs,
                     n_params=D, config=config, seconds=round(time.perf_counter() - t_start, 3),
                     interval_method=config["interval_method"], n_test=n_test, chance=chance,
                     threshold_ci=(thr_lo, thr_hi))


def _log_grid(d_min: int, d_max: int, factor: float) -> list[int]:
    grid, d = [], float(d_min)
    while round(d) < d_max:
        if not grid or round(d) > grid[-1]:
            grid.append(round(d))
        d *= factor
    grid.append(d_max)
    return grid
