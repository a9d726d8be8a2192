"""``lowdim d90``: JSON output, results folder, resume, bad input (exit code 2)."""

import json

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner

from lowdim.cli import app

FAST = ["--task", "digits_mlp", "--seeds", "1", "--d-min", "128", "--d-max", "256", "--max-bisect", "0",
        "--baseline", "0.97", "--epochs", "6"]


def test_d90_json_out_plot_and_resume(tmp_path):
    r = CliRunner().invoke(app, ["d90", *FAST, "--json", "--out", str(tmp_path / "o"),
                                 "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= {"d90", "ci", "baseline", "threshold_rule", "runs"}
    assert doc["baseline"] == 0.97 and doc["threshold_rule"] == "relative"
    assert {run["d"] for run in doc["runs"]} <= {128, 256}
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "o" / "d90.png").exists()
    n_lines = len((tmp_path / "o" / "runs.jsonl").read_text().splitlines())
    again = CliRunner().invoke(app, ["d90", *FAST, "--json", "--out", str(tmp_path / "o"), "--resume"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["runs"] == doc["runs"]  # nothing re-run
    assert len((tmp_path / "o" / "runs.jsonl").read_text().splitlines()) == n_lines


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "imagenet"], "digits_mlp"),
    (["--projection", "gauss"], "fastfood"),
    (["--threshold", "0"], "threshold=0"),
    (["--rule", "percent"], "absolute, relative"),
    (["--resume"], "--out"),
    (["--task", "mnist_fc", "--data", "/nonexistent"], "never downloads"),
    (["--lr-scaling", "linear"], "constant, sqrt"),
])
def test_d90_bad_input_exit_2(args, message):
    from lowdim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["d90", *args, "--quiet"])
    assert exc.value.code == 2


def test_d90_mismatched_resume_names_field(tmp_path, capsys):
    from lowdim.cli import main

    main(["d90", *FAST, "--quiet", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        main(["d90", *FAST, "--quiet", "--out", str(tmp_path), "--resume", "--projection", "sparse"])
    assert exc.value.code == 2
    assert "'projection'" in capsys.readouterr().err


def test_d90_lr_scaling_sqrt_records_scaled_rates(tmp_path):
    r = CliRunner().invoke(app, ["d90", *FAST, "--json", "--lr", "0.1", "--lr-scaling", "sqrt"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["config"]["lr_scaling"] == "sqrt"
    assert {run["d"]: round(run["lr"], 6) for run in doc["runs"]} == {128: round(0.1 * (1000 / 128) ** 0.5, 6),
                                                                       256: round(0.1 * (1000 / 256) ** 0.5, 6)}
