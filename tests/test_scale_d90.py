"""A d90 sweep on a 2-worker LocalCluster: worker killed mid-run, coordinator restart, a results
file written by another configuration (lowdim.subspace.find_d90 with client=)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("distributed")
pytest.importorskip("torch")
search = pytest.importorskip("lowdim.subspace.search")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.scale import connect  # noqa: E402
from lowdim.subspace.runner import SerialRunner  # noqa: E402

# a tiny sweep: 2 baselines + 2 seeds × d ∈ {16, 32, 64, 128}; each run well under a second
CONFIG = {"task": "digits_mlp", "task_options": {"epochs": 3, "threads": 1}, "seeds": 2, "d_min": 16,
          "d_max": 128, "max_bisect": 0, "lrs": [0.05], "baseline_lrs": [0.01], "threshold": 0.5,
          "threshold_rule": "absolute"}
N_RUNS = 2 + 2 * 4


def _key(r):
    return (r["kind"], r["d"], r["seed"])


def _summary(res):
    return res.d90, {_key(r): r["metric"] for r in res.runs}


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def serial():
    """The same sweep in this process, one run after the other: the reference answer."""
    return _summary(search.find_d90(**CONFIG, runner=SerialRunner()))


@pytest.fixture(scope="module")
def client():
    with connect(workers=2, timeout=60) as c:
        yield c


def _kill_a_busy_worker(client, killed: dict, stop: threading.Event) -> None:
    pids = client.run(os.getpid)
    while not stop.is_set():
        for addr, keys in client.processing().items():
            if any("run_one" in str(k) for k in keys) and addr in pids:
                os.kill(pids[addr], signal.SIGKILL)
                killed["pid"] = pids[addr]
                return
        time.sleep(0.01)


def test_sweep_survives_a_worker_killed_mid_run_and_refuses_a_second_configuration(client, serial, tmp_path):
    results = tmp_path / "runs.jsonl"
    killed: dict = {}
    stop = threading.Event()
    chaos = threading.Thread(target=_kill_a_busy_worker, args=(client, killed, stop), daemon=True)
    chaos.start()
    out: dict = {}
    sweep = threading.Thread(target=lambda: out.update(res=search.find_d90(**CONFIG, results=str(results),
                                                                           client=client)))
    sweep.start()
    # while this sweep writes the file, a sweep with another configuration must not touch it
    while not results.exists():
        time.sleep(0.01)
    with pytest.raises(LowdimError, match=r"field 'lrs' is \[0.05\] in the file but \[0.02\]"):
        search.find_d90(**{**CONFIG, "lrs": [0.02]}, results=str(results), resume=True, client=client)
    with pytest.raises(LowdimError, match="already exists"):
        search.find_d90(**CONFIG, results=str(results), client=client)
    sweep.join(120)
    stop.set()
    assert "pid" in killed, "no worker was killed while a run was executing"
    assert "res" in out, "the sweep did not finish"
    assert _summary(out["res"]) == serial  # nothing lost, nothing changed
    recs = _lines(results)
    assert recs[0]["type"] == "config" and recs[0]["seeds"] == [0, 1]
    keys = [_key(r) for r in recs[1:]]
    assert len(keys) == N_RUNS and len(set(keys)) == N_RUNS  # each run written once, by the coordinator
    client.wait_for_workers(2, timeout=30)
    assert killed["pid"] not in client.run(os.getpid).values()  # the nanny replaced the dead worker


COORDINATOR = """
import json, sys
from lowdim.scale import connect  # noqa: E402
from lowdim.subspace.search import find_d90
if __name__ == "__main__":
    with connect(workers=2, timeout=60) as client:
        find_d90(**json.loads(sys.argv[1]), results=sys.argv[2], client=client)
"""


def test_sweep_resumes_after_the_coordinator_is_killed(client, serial, tmp_path):
    results = tmp_path / "runs.jsonl"
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR)
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(CONFIG), str(results), client.scheduler.address],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.perf_counter() + 90
        while not (results.exists() and len(results.read_text().splitlines()) >= 3):  # config + 2 runs
            assert proc.poll() is None, "the coordinator exited before writing 2 runs"
            assert time.perf_counter() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator dies; the cluster stays
        proc.wait(10)
    before = results.read_bytes()
    done_before = [_key(r) for r in _lines(results)[1:]]
    assert 2 <= len(done_before) < N_RUNS, "the coordinator finished before it was killed; nothing to resume"
    res = search.find_d90(**CONFIG, results=str(results), resume=True, client=client)
    after = results.read_bytes()
    assert after.startswith(before[: before.rfind(b"\n") + 1])  # finished runs kept verbatim
    keys = [_key(r) for r in _lines(results)[1:]]
    assert len(keys) == N_RUNS and len(set(keys)) == N_RUNS  # none redone, none lost
    assert _summary(res) == serial
