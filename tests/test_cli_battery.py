"""The installed ``lowdim`` command, run as a user runs it: a subprocess of the console script.

Every bad-input and usage class of issue 12 must end with its documented exit code, exactly one
line on stderr (no traceback, no leftover progress line), and no file left behind. This module
needs only the core install (cases needing torch or pyarrow skip without them), so CI also runs it
in a fresh venv holding the newest versions of lowdim's dependencies (.ci/run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_ARROW = importlib.util.find_spec("pyarrow") is not None


def _lowdim() -> str:
    exe = Path(sys.executable).with_name("lowdim")
    found = str(exe) if exe.exists() else shutil.which("lowdim")
    assert found, "the lowdim console script is not installed (pip install -e .)"
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    np.save(d / "plane.npy", rng.normal(size=(400, 3)) @ rng.normal(size=(3, 12)))
    np.save(d / "emb.npy", rng.normal(size=(300, 16)).astype(np.float32))
    bad = rng.normal(size=(50, 3))
    bad[3, 1] = np.nan
    np.save(d / "nan.npy", bad)
    (d / "empty.npy").write_bytes(b"")
    np.savez(d / "acts.npz", a=rng.normal(size=(200, 2)) @ rng.normal(size=(2, 8)))
    (d / "texts.txt").write_text("a cat\na dog\n")
    (d / "tinynet.py").write_text(textwrap.dedent("""
        import os, time
        import torch
        def build():
            return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
        def slow():
            open(os.environ["LOWDIM_TEST_FLAG"], "w").close()
            time.sleep(60)
    """))
    np.save(d / "x3.npy", rng.normal(size=(100, 3)).astype(np.float32))
    if HAS_TORCH:
        import argparse

        import torch

        torch.save({"w": argparse.Namespace(a=1)}, d / "evil.pt")  # not a plain state dict: refused unread
    if HAS_ARROW:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 0.0, 2.0, 5.0], "t": list("wxyz")}),
                       d / "text.parquet")
    # a stand-in torch that is "not installed", to see the missing-extra exit without uninstalling
    (d / "notorch" / "torch").mkdir(parents=True)
    (d / "notorch" / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    # a torch whose import is interrupted: Ctrl-C in the middle of a d90 sweep
    (d / "ctrlc" / "torch").mkdir(parents=True)
    (d / "ctrlc" / "torch" / "__init__.py").write_text("raise KeyboardInterrupt\n")
    return d


def run(args, cwd, env=None, timeout=120):
    env = dict(env or {})
    if env.get("PYTHONPATH") and os.environ.get("PYTHONPATH"):  # e.g. an older typer under test
        env["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]
    e = {**os.environ, "COLUMNS": "100", **env}
    e = {k: v for k, v in e.items() if v is not None}
    return subprocess.run([_lowdim(), *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


# (id, args with {d} = the inputs folder, exit code, a needle of the one stderr line, needs)
BAD = [
    ("unknown-option", ["--foo"], 2, "No such option: --foo", None),
    ("unknown-command", ["nosuch"], 2, "No such command", None),
    ("missing-argument", ["id"], 2, "Missing argument", None),
    ("not-an-int", ["id", "{d}/plane.npy", "--k", "abc"], 2, "'--k'", None),
    ("sub-unknown-option", ["d90", "--bogus"], 2, "No such option: --bogus", None),
    ("missing-file", ["id", "{d}/nope.npy"], 2, "not found", None),
    ("empty-file", ["id", "{d}/empty.npy"], 2, "empty", None),
    ("nan", ["id", "{d}/nan.npy"], 2, "non-finite", None),
    ("unknown-method", ["id", "{d}/plane.npy", "--method", "foo"], 2, "unknown method 'foo'", None),
    ("k-not-applicable", ["id", "{d}/plane.npy", "--method", "pca", "--k", "5"], 2, "--k", None),
    ("k-too-small", ["id", "{d}/plane.npy", "--k", "1"], 2, "--k 1", None),
    ("local-wrong-ext", ["id", "{d}/plane.npy", "--local", "l.txt"], 2, "--local 'l.txt' must end in .npy", None),
    ("plot-wrong-ext", ["id", "{d}/plane.npy", "--plot", "p.xyz"], 2, "--plot 'p.xyz'", None),
    ("duplicates-choice", ["id", "{d}/plane.npy", "--duplicates", "x"], 2, "--duplicates", None),
    ("parquet-text-column", ["id", "{d}/text.parquet"], 2, "non-numeric columns t", "arrow"),
    ("compress-metric", ["compress", "{d}/emb.npy", "--metric", "l2"], 2, "--metric 'l2'", None),
    ("compress-out-ext", ["compress", "{d}/emb.npy", "--out", "c.txt"], 2, "--out 'c.txt' must end in .npz", None),
    ("compress-beir-missing", ["compress", "{d}/emb.npy", "--queries", "{d}/emb.npy", "--beir", "nope/"], 2,
     "--beir 'nope' does not exist", None),
    ("compress-budget", ["compress", "{d}/emb.npy", "--budget", "lots"], 2, "--budget 'lots'", None),
    ("compress-both", ["compress", "{d}/emb.npy", "--budget", "16x", "--min-recall", "0.9"], 2, "not both", None),
    ("compress-min-recall", ["compress", "{d}/emb.npy", "--min-recall", "1.5"], 2, "--min-recall 1.5", None),
    ("embed-batch-size", ["embed", "{d}/texts.txt", "-o", "e.npy", "--batch-size", "0"], 2, "--batch-size 0", None),
    ("embed-out-ext", ["embed", "{d}/texts.txt", "-o", "e.txt"], 2, "must end in .npy", None),
    ("demo-only", ["demo", "--only", "foo", "-o", "rep"], 2, "unknown demo section 'foo'", None),
    ("d90-task", ["d90", "--task", "nope"], 2, "--task 'nope'", None),
    ("d90-device", ["d90", "--device", "tpu"], 2, "--device 'tpu'", None),
    ("d90-threshold", ["d90", "--threshold", "1.5"], 2, "--threshold 1.5", None),
    ("d90-rule", ["d90", "--rule", "x"], 2, "--rule 'x'", None),
    ("d90-lr", ["d90", "--lr", "-1"], 2, "--lr -1", None),
    ("d90-d-max", ["d90", "--d-max", "0"], 2, "--d-max 0", None),
    ("d90-resume", ["d90", "--resume"], 2, "--resume needs --out", None),
    ("d90-data", ["d90", "--task", "mnist_fc", "--data", "nodir"], 2, "--data 'nodir' does not exist", None),
    ("d90-cuda", ["d90", "--device", "cuda"], 2, "CUDA", "torch-cpu"),
    ("d90-d-max-above-D", ["d90", "--d-max", "100000000", "--out", "o"], 2, "--d-max", "torch"),
    ("layers-two-sources", ["layers", "--activations", "{d}/acts.npz", "--torch-model", "a:b"], 2, "exactly one", None),
    ("layers-pool", ["layers", "--activations", "{d}/acts.npz", "--pool", "max"], 2, "--pool 'max'", None),
    ("layers-k", ["layers", "--activations", "{d}/acts.npz", "--k", "100000"], 2, "--k 100000", None),
    ("layers-weights-pickle", ["layers", "--torch-model", "tinynet:build", "--input", "{d}/x3.npy", "--weights",
                               "{d}/evil.pt"], 2, "pickled objects", "torch"),
    ("missing-extra", ["d90", "--task", "digits_mlp"], 3, 'pip install "lowdim[torch]"', "notorch"),
    ("data-dir-rule", ["d90", "--task", "minilm_scifact"], 2, "LOWDIM_DATA", "nodata"),
    ("ctrl-c", ["d90", "--out", "o"], 130, "--resume", "ctrlc"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_one_line_exit_code_nothing_left(case, files, tmp_path):
    name, args, code, needle, needs = case
    env = {"PYTHONPATH": str(files)}
    if needs in ("torch", "torch-cpu") and not HAS_TORCH:
        pytest.skip("needs the torch extra")
    if needs == "torch-cpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present")
    if needs == "arrow" and not HAS_ARROW:
        pytest.skip("needs the data extra")
    if needs in ("notorch", "ctrlc"):
        env["PYTHONPATH"] = str(files / needs)
    if needs == "nodata":
        if not HAS_TORCH:
            pytest.skip("needs the torch extra")
        env["LOWDIM_DATA"] = None
    r = run([a.replace("{d}", str(files)) for a in args], tmp_path, env)
    lines = r.stderr.splitlines()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert needle in lines[0], lines[0]
    assert "\r" not in r.stderr and "━" not in r.stderr  # no progress residue
    assert list(tmp_path.iterdir()) == [], "a failed command left files behind"


def _leaf_commands() -> list[list[str]]:
    import typer.main

    from lowdim.cli import app

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs is None:
            return [path]
        return [p for name, sub in subs.items() for p in walk(sub, [*path, name])]

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("cmd", _leaf_commands(), ids=" ".join)
def test_every_command_unknown_option_and_help(cmd, tmp_path):
    """Commands registered later (lowdim lowrank …) get the same clean endings for free."""
    r = run([*cmd, "--no-such-option-here"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert "No such option" in r.stderr and f"lowdim {' '.join(cmd)} -h" in r.stderr
    h = run([*cmd, "-h"], tmp_path)
    assert h.returncode == 0 and h.stderr == "" and f"Usage: lowdim {' '.join(cmd)}" in h.stdout


@pytest.mark.parametrize("args", [[], ["-h"], ["--help"], ["id", "-h"]])
def test_help_exit_0_on_stdout(args, tmp_path):
    r = run(args, tmp_path)
    assert r.returncode == 0 and r.stderr == "" and "Usage: lowdim" in r.stdout
    assert "<bool>" not in r.stdout


def test_help_lists_registry_names(tmp_path):
    assert "ctwonn" in run(["id", "-h"], tmp_path).stdout
    d90 = run(["d90", "-h"], tmp_path).stdout
    assert "mnist5k_fc" in d90 and "minilm_scifact" in d90
    assert "compress" in run(["demo", "-h"], tmp_path).stdout


def test_version(tmp_path):
    import lowdim

    r = run(["--version"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"lowdim {lowdim.__version__}" and r.stderr == ""


def test_quiet_still_prints_result_and_outputs_follow_umask(files, tmp_path):
    r = run(["id", str(files / "plane.npy"), "-q", "--local", "l.npy", "--method", "twonn"], tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "twonn" in r.stdout and "local ID" in r.stdout and "note:" not in r.stdout
    mode = stat.S_IMODE((tmp_path / "l.npy").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    js = run(["id", str(files / "plane.npy"), "--json"], tmp_path)
    assert js.returncode == 0 and json.loads(js.stdout)["dimension"] > 2


@pytest.mark.skipif(not HAS_TORCH, reason="needs the torch extra")
def test_real_sigint_exits_130_with_one_line(files, tmp_path):
    flag = tmp_path / "started"
    e = {**os.environ, "PYTHONPATH": str(files), "LOWDIM_TEST_FLAG": str(flag)}
    p = subprocess.Popen([_lowdim(), "layers", "--torch-model", "tinynet:slow", "--input", str(files / "x3.npy")],
                         cwd=tmp_path, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not flag.exists() and time.time() - t0 < 60 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("interrupted: ") and "Traceback" not in err
    flag.unlink()
    assert list(tmp_path.iterdir()) == []
