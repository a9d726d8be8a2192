import json
import subprocess
import sys

import numpy as np
import pytest

from lowdim.cli import main


def run_cli(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def plane_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4)) @ rng.normal(size=(4, 20))
    p = tmp_path / "plane.npy"
    np.save(p, X)
    return p


def test_json_is_exactly_result_json(plane_file, capsys):
    code, out, err = run_cli(["id", str(plane_file), "--method", "twonn", "--json"], capsys)
    assert code == 0
    d = json.loads(out)  # nothing but JSON on stdout
    assert d["method"] == "twonn" and 3.5 < d["dimension"] < 4.5
    assert set(d) >= {"dimension", "ci", "method", "n_samples", "n_duplicates_dropped", "params", "scale_curve", "local", "seconds"}


def test_table_local_and_plot(plane_file, tmp_path, capsys):
    loc, png = tmp_path / "loc.npy", tmp_path / "id.png"
    code, out, _ = run_cli(["id", str(plane_file), "--method", "twonn", "--k", "15", "--local", str(loc), "--plot", str(png)], capsys)
    assert code == 0 and "twonn" in out
    assert np.load(loc).shape == (1500,)
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("nan", "non-finite"),
        ("method", "unknown method"),
        ("1d", "reshape"),
        ("few", "at least"),
        ("plotext", "must end in"),
    ],
)
def test_bad_input_exit_2_one_line(setup, needle, tmp_path, capsys, plane_file):
    args = ["id"]
    p = tmp_path / "x.npy"
    if setup == "missing":
        args.append(str(tmp_path / "nope.npy"))
    elif setup == "empty":
        p.write_bytes(b"")
        args.append(str(p))
    elif setup == "nan":
        X = np.random.default_rng(0).normal(size=(50, 3))
        X[1, 1] = np.nan
        np.save(p, X)
        args.append(str(p))
    elif setup == "method":
        args += [str(plane_file), "--method", "danko"]
    elif setup == "1d":
        np.save(p, np.arange(30.0))
        args.append(str(p))
    elif setup == "few":
        np.save(p, np.random.default_rng(0).normal(size=(2, 3)))
        args.append(str(p))
    elif setup == "plotext":
        args += [str(plane_file), "--method", "twonn", "--plot", str(tmp_path / "x.gif")]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "x.gif").exists()


def test_console_script_subprocess(plane_file):
    r = subprocess.run([sys.executable, "-m", "lowdim", "id", str(plane_file) + ".missing"], capture_output=True, text=True)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_k_rejected_for_methods_without_neighbourhood(plane_file, capsys):
    code, _, err = run_cli(["id", str(plane_file), "--method", "pca", "--k", "5"], capsys)
    # checked by lowdim.estimate itself (the CLI only translates n_neighbors into the flag typed)
    assert code == 2 and "method 'pca' has no parameter '--k'" in err


def test_local_with_global_method_without_local_variant(plane_file, tmp_path, capsys):
    loc = tmp_path / "l.npy"
    code, out, _ = run_cli(["id", str(plane_file), "--method", "pca", "--local", str(loc), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["method"] == "pca" and d["local"]["n"] == 1500
    assert any("TwoNN" in n for n in d["notes"])
    assert np.load(loc).shape == (1500,)
