"""find_d90 and its results file: known answer on a synthetic task, resume, Ctrl-C, bad input."""

import json

import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.subspace import SubspaceModel, find_d90, run_one  # noqa: E402
from lowdim.subspace.records import ResultsFile  # noqa: E402
from lowdim.subspace.runner import SerialRunner  # noqa: E402
from lowdim.subspace.search import _log_grid, mean_ci  # noqa: E402
from lowdim.subspace.tasks import Task  # noqa: E402

D_TRUE = 24  # the synthetic task below has exactly this many "useful" directions


class Quad(torch.nn.Module):
    """A linear model of 200 weights; the target weight vector lives in the first 24 coordinates."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(200))


def model_fn(init_seed):
    return Quad()


def _weights(model):
    return model.parameters_dict()["w"] if isinstance(model, SubspaceModel) else model.w


def train_fn(model, *, lr, seed):
    # least squares in closed form on z: the best reachable fit in the subspace
    target = torch.zeros(200)
    target[:D_TRUE] = torch.linspace(1, 2, D_TRUE)
    if isinstance(model, SubspaceModel):
        P = model.projection.matrix()
        z = torch.linalg.lstsq(P[:D_TRUE], target[:D_TRUE, None]).solution[:, 0]
        with torch.no_grad():
            model.z.copy_(z)
    else:
        with torch.no_grad():
            model.w.copy_(target)
    return {"val": evaluate_fn(model)}


def evaluate_fn(model):
    target = torch.zeros(200)
    target[:D_TRUE] = torch.linspace(1, 2, D_TRUE)
    w = _weights(model).detach()
    err = float(((w[:D_TRUE] - target[:D_TRUE]) ** 2).sum() / (target ** 2).sum())
    return max(0.0, 1.0 - err)


TASK = Task("quad", model_fn, train_fn, evaluate_fn, lrs=(1.0,), baseline_lrs=(1.0,))


def test_log_grid_and_mean_ci():
    assert _log_grid(10, 100, 2.0) == [10, 20, 40, 80, 100]
    assert _log_grid(3, 3, 2.0) == [3]
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2 < hi and hi - 2 == pytest.approx(2 - lo)


def test_known_answer_exact_rule():
    # the fit reaches 1.0 exactly once d >= 24 (P's first 24 rows have full rank); below, 1 - err < 1
    r = find_d90(TASK, seeds=2, threshold=1.0 - 1e-6, threshold_rule="absolute", d_min=4, max_bisect=10,
                 rel_tol=0.01)
    assert r.d90 == D_TRUE
    assert r.baseline == pytest.approx(1.0)
    assert r.ci[0] <= D_TRUE <= (r.ci[1] or 10**9)
    assert [p["d"] for p in r.per_d] == sorted(p["d"] for p in r.per_d)
    j = r.to_json()
    assert json.loads(json.dumps(j))["d90"] == D_TRUE and j["threshold_rule"] == "absolute"


def test_relative_rule_uses_measured_baseline():
    r = find_d90(TASK, seeds=1, threshold=0.5, d_min=2, max_bisect=6, rel_tol=0.05)
    assert r.threshold_value == pytest.approx(0.5 * r.baseline)
    below = [p for p in r.per_d if p["d"] < r.d90]
    assert all(not p["passes"] for p in below)
    assert r.d90 < D_TRUE


def test_results_file_resume_and_ctrl_c(tmp_path):
    path = tmp_path / "runs.jsonl"
    kw = {"seeds": 2, "threshold": 1.0 - 1e-6, "threshold_rule": "absolute", "d_min": 4, "max_bisect": 10,
          "rel_tol": 0.01}
    ref = find_d90(TASK, **kw)

    calls = {"n": 0}

    def flaky_train(model, *, lr, seed):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return train_fn(model, lr=lr, seed=seed)

    flaky = Task("quad", model_fn, flaky_train, evaluate_fn, lrs=(1.0,), baseline_lrs=(1.0,))
    with pytest.raises(KeyboardInterrupt):
        find_d90(flaky, results=path, **kw)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 6  # config + 6 finished runs, all complete JSON
    assert all(json.loads(line) for line in lines)
    # simulate a crash in the middle of a write: a truncated last line
    with open(path, "a") as fh:
        fh.write('{"type": "run", "kind": "subsp')
    with pytest.raises(LowdimError, match="already exists"):
        find_d90(TASK, results=path, **kw)
    seen = []
    res = find_d90(TASK, results=path, resume=True, progress=seen.append, **kw)
    assert res.d90 == ref.d90 and [p["d"] for p in res.per_d] == [p["d"] for p in ref.per_d]
    assert [p["mean"] for p in res.per_d] == pytest.approx([p["mean"] for p in ref.per_d], rel=1e-6)
    assert seen[0]["done"] == 7  # the 6 resumed runs were skipped
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    keys = [(r["kind"], r["d"], r["seed"]) for r in recs[1:]]
    assert len(keys) == len(set(keys)) == len(ref.runs)
    # a different configuration is refused, naming the field
    with pytest.raises(LowdimError, match="'projection'"):
        find_d90(TASK, results=path, resume=True, projection="dense", **kw)
    with pytest.raises(LowdimError, match="'lrs'"):
        find_d90(TASK, results=path, resume=True, lrs=[0.5], **kw)
    # search-only fields may change: more seeds add only the new seed's runs; another rule reuses all
    n_before = len(path.read_text().splitlines())
    more = find_d90(TASK, results=path, resume=True, **{**kw, "seeds": 3})
    added = [json.loads(line) for line in path.read_text().splitlines()[n_before:]]
    assert added and {r["seed"] for r in added} == {2} and more.d90 == ref.d90
    n_before = len(path.read_text().splitlines())
    find_d90(TASK, results=path, resume=True, **{**kw, "threshold_rule": "relative", "threshold": 0.9})
    assert all(json.loads(line)["d"] not in {p["d"] for p in ref.per_d}
               for line in path.read_text().splitlines()[n_before:])


def test_results_file_rejects_garbage(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"type": "run"}\n')
    with pytest.raises(LowdimError, match="no config"):
        ResultsFile(p, {"a": 1}, resume=True)
    p.write_text('{"type": "config", "format": "lowdim.d90/1", "a": 1}\nnot json\n{"type":"run"}\n')
    with pytest.raises(LowdimError, match="line 2"):
        ResultsFile(p, {"a": 1}, resume=True)


class ParallelRunner:
    """A runner that returns results out of order (as Dask does)."""

    parallel = True

    def map_unordered(self, fn, specs):
        yield from reversed([(s, fn(s)) for s in specs])


def test_runner_interface_and_run_one_is_reproducible():
    kw = {"seeds": 2, "threshold": 0.9, "threshold_rule": "absolute", "d_min": 4, "max_bisect": 3}
    a = find_d90(TASK, runner=SerialRunner(), **kw)
    b = find_d90(TASK, runner=ParallelRunner(), **kw)
    assert a.d90 == b.d90
    means_b = {p["d"]: p["mean"] for p in b.per_d}
    shared = [p for p in a.per_d if p["d"] in means_b]
    assert shared and all(p["mean"] == pytest.approx(means_b[p["d"]], rel=1e-5) for p in shared)
    spec = {"kind": "subspace", "d": 8, "seed": 3, "task": TASK, "init_seed": 0, "projection": "fastfood",
            "said": False, "lrs": [1.0]}
    r1, r2 = run_one(spec), run_one(spec)
    # same seed, same record (LAPACK's least squares may differ in the last bits between calls)
    assert r1["metric"] == pytest.approx(r2["metric"], rel=1e-5) and r1["d"] == 8 and r1["seed"] == 3


def test_builtin_digits_task_quick():
    r = find_d90("digits_mlp", seeds=1, d_min=256, d_max=256, max_bisect=0, baseline=0.97,
                 task_options={"epochs": 8})
    assert r.n_params == 4810
    assert r.per_d[0]["mean"] > 0.8  # d=256 of 4,810 trains digits well
    assert r.runs and all(run["kind"] == "subspace" for run in r.runs)


def test_bad_input():
    with pytest.raises(LowdimError, match="threshold=0"):
        find_d90(TASK, threshold=0)
    with pytest.raises(LowdimError, match="threshold=1.5"):
        find_d90(TASK, threshold=1.5)
    with pytest.raises(LowdimError, match="digits_mlp"):
        find_d90("cifar_resnet")
    with pytest.raises(LowdimError, match="fastfood"):
        find_d90(TASK, projection="hadamard")
    with pytest.raises(LowdimError, match="absolute, relative"):
        find_d90(TASK, threshold_rule="percent")
    with pytest.raises(LowdimError, match="d_max=500"):
        find_d90(TASK, d_max=500)
    with pytest.raises(LowdimError, match="d_min=0"):
        find_d90(TASK, d_min=0)
    with pytest.raises(LowdimError, match="all three"):
        find_d90("mine", model_fn=model_fn)
    with pytest.raises(LowdimError, match="map_unordered"):
        find_d90(TASK, runner=object())


def test_dask_client_gives_the_serial_answer(tmp_path):
    pytest.importorskip("distributed")
    from lowdim.scale.client import connect

    kw = {"task_options": {"epochs": 3}, "seeds": 2, "d_min": 128, "d_max": 256, "max_bisect": 0,
          "baseline": 0.97}
    serial = find_d90("digits_mlp", **kw)
    with connect(workers=2) as client:
        dist = find_d90("digits_mlp", client=client, results=tmp_path / "runs.jsonl", **kw)
    assert dist.per_d == serial.per_d and dist.d90 == serial.d90
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 4  # the coordinator wrote every run once


def test_lr_scaling_sqrt_is_recorded_per_d():
    seen = []

    def recording_train(model, *, lr, seed):
        seen.append((model.d if isinstance(model, SubspaceModel) else None, lr))
        return train_fn(model, lr=lr, seed=seed)

    task = Task("quad", model_fn, recording_train, evaluate_fn, lrs=(0.02,), baseline_lrs=(1.0,))
    r = find_d90(task, seeds=1, threshold=0.5, threshold_rule="absolute", d_min=10, d_max=40,
                 grid_factor=4, max_bisect=0, lr_scaling="sqrt")
    assert (10, pytest.approx(0.02 * 10.0)) in seen and (40, pytest.approx(0.02 * 5.0)) in seen
    assert {run["d"]: run["lr"] for run in r.runs if run["kind"] == "subspace"} == {10: pytest.approx(0.2), 40: pytest.approx(0.1)}
    assert r.config["lr_scaling"] == "sqrt"
    # a task's own default applies when the caller does not choose
    task.lr_scaling = "sqrt"
    r2 = find_d90(task, seeds=1, threshold=0.5, threshold_rule="absolute", d_min=10, d_max=10, max_bisect=0)
    assert r2.config["lr_scaling"] == "sqrt" and r2.runs[-1]["lr"] == pytest.approx(0.2)
    with pytest.raises(LowdimError, match="lr_scaling"):
        find_d90(task, lr_scaling="linear")
