"""DaskRunner and connect on a LocalCluster with 2 worker processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402
import dask  # noqa: E402

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.scale import DaskRunner, connect  # noqa: E402

# the toy run functions below travel to the worker processes by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])
tasks = sys.modules[__name__]


# ----------------------------------------------------------------------- toy run functions
def square(spec: dict) -> dict:
    time.sleep(spec.get("sleep", 0.0))
    return {"x": spec["x"], "y": spec["x"] ** 2, "pid": os.getpid()}


def die_once(spec: dict) -> dict:
    """Kill this worker process on the first attempt of the spec marked ``die``."""
    marker = Path(spec["marker"])
    if spec.get("die") and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    time.sleep(0.05)
    return {"x": spec["x"], "y": spec["x"] ** 2, "pid": os.getpid()}


def always_die(spec: dict) -> dict:
    os._exit(1)


def fail(spec: dict) -> dict:
    if spec["x"] == 2:
        raise ArithmeticError(f"bad x={spec['x']}")
    return {"x": spec["x"]}


# ----------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def client():
    with connect(workers=2, timeout=60) as c:
        yield c


def test_connect_local_cluster_has_two_single_threaded_workers(client):
    info = client.scheduler_info()["workers"]
    assert len(info) == 2
    assert all(w["nthreads"] == 1 for w in info.values())


def test_map_unordered_yields_every_spec_once_in_completion_order(client):
    specs = [{"x": 0, "sleep": 0.6}, {"x": 1, "sleep": 0.0}, {"x": 2, "sleep": 0.0}]
    out = list(DaskRunner(client).map_unordered(tasks.square, specs))
    assert sorted(s["x"] for s, _ in out) == [0, 1, 2]
    assert all(r["y"] == s["x"] ** 2 for s, r in out)
    assert out[0][0]["x"] != 0  # completion order, not submission order: the slow first run is not first
    assert len({r["pid"] for _, r in out}) == 2  # both worker processes did work


def test_no_specs_yields_nothing(client):
    assert list(DaskRunner(client).map_unordered(tasks.square, [])) == []


def test_worker_killed_mid_run_loses_only_its_run(client, tmp_path):
    marker = tmp_path / "died"
    specs = [{"x": x, "marker": str(marker), "die": x == 3} for x in range(6)]
    runner = DaskRunner(client)
    out = dict((s["x"], r["y"]) for s, r in runner.map_unordered(tasks.die_once, specs))
    assert marker.exists()  # the worker really died once
    assert out == {x: x * x for x in range(6)}
    client.wait_for_workers(2, timeout=30)


def test_killed_worker_error_is_resubmitted_by_the_runner(tmp_path):
    # with allowed-failures=0 the scheduler gives up at once (KilledWorker): the runner resubmits
    marker = tmp_path / "died"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), connect(workers=2, timeout=60) as c:
        runner = DaskRunner(c)
        specs = [{"x": x, "marker": str(marker), "die": x == 1} for x in range(3)]
        out = {s["x"]: r["y"] for s, r in runner.map_unordered(tasks.die_once, specs)}
        assert out == {0: 0, 1: 1, 2: 4}
        assert runner.n_resubmitted_ == 1
        with pytest.raises(LowdimError, match="lost its worker 2 times"):
            list(DaskRunner(c, max_resubmits=1).map_unordered(tasks.always_die, [{"x": 9}]))


def test_error_in_run_propagates_and_cancels_the_rest(client):
    specs = [{"x": x} for x in range(4)]
    with pytest.raises(ArithmeticError, match="bad x=2"):
        list(DaskRunner(client).map_unordered(tasks.fail, specs))


def _scheduler_keys(dask_scheduler=None):
    return [str(k) for k in dask_scheduler.tasks]


def test_closing_the_iterator_cancels_pending_runs(client):
    it = DaskRunner(client).map_unordered(tasks.square, [{"x": x, "sleep": 0.3} for x in range(8)])
    next(it)
    assert any("square" in k for k in client.run_on_scheduler(_scheduler_keys))
    it.close()
    deadline = time.perf_counter() + 5
    while any("square" in k for k in client.run_on_scheduler(_scheduler_keys)):
        assert time.perf_counter() < deadline, "runs still scheduled after the iterator was closed"
        time.sleep(0.05)


def test_unreachable_scheduler_names_address_and_timeout():
    t0 = time.perf_counter()
    with pytest.raises(LowdimError, match=r"tcp://127\.0\.0\.1:1.*timeout=1 s"):
        connect("tcp://127.0.0.1:1", timeout=1)
    assert time.perf_counter() - t0 < 10


def test_connect_bad_arguments():
    with pytest.raises(LowdimError, match="not both"):
        connect("tcp://127.0.0.1:1", workers=2)
    with pytest.raises(LowdimError, match="workers=0"):
        connect(workers=0)
    with pytest.raises(LowdimError, match="timeout"):
        connect(timeout=-1)
