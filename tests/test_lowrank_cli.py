"""``lowdim lowrank profile|plan`` end to end on a user's own torch module."""

import json
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from lowdim.cli import main  # noqa: E402


def _run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def userdir(tmp_path, monkeypatch):
    (tmp_path / "usernet.py").write_text(textwrap.dedent("""
        import torch
        def build():
            return torch.nn.Sequential(torch.nn.Linear(10, 24), torch.nn.ReLU(), torch.nn.Linear(24, 3))
    """))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("usernet", None)


def test_profile_plan_lora_config_round_trip(userdir, capsys):
    code, out, err = _run(["lowrank", "profile", "--torch-model", "usernet:build", "--input", "x.npy",
                           "-o", "prof.json", "-q"], capsys)
    assert code == 0, err
    assert "MP rank" in out
    code, out, err = _run(["lowrank", "plan", "prof.json", "--budget", "300", "--lora-config", "lora.json",
                           "-o", "plan.json", "-q"], capsys)
    assert code == 0, err
    from lowdim.lowrank.plan import RankPlan
    from lowdim.representations.sources import load_torch_factory

    plan = RankPlan.from_json(userdir / "plan.json")
    assert 0 < plan.n_params <= 300
    net = load_torch_factory("usernet:build")
    pm = peft.get_peft_model(net, peft.LoraConfig(**json.loads((userdir / "lora.json").read_text())))
    assert plan.validate(pm)["n_params"] == plan.n_params


def test_plan_errors_exit_2_with_one_line(userdir, capsys):
    code, _, err = _run(["lowrank", "profile", "--torch-model", "usernet:build", "--no-inputs", "-o", "p.json",
                         "-q"], capsys)
    assert code == 0, err
    code, _, err = _run(["lowrank", "plan", "p.json", "--budget", "5", "--signal", "weight_energy"], capsys)
    assert code == 2 and "too small for rank 1" in err and "--budget 5" in err
    code, _, err = _run(["lowrank", "plan", "p.json", "--signal", "input_variance"], capsys)
    assert code == 2 and "needs 'inputs' measurements" in err


def test_demo_section_runs_and_reports_learned_ranks(tmp_path):
    from lowdim.demo import DemoContext, lowrank_section

    sec = lowrank_section.run(DemoContext(out_dir=tmp_path, quiet=True))
    assert (tmp_path / "lowrank_plan.png").exists()
    sora = sec.data["sora"]
    assert sora["export_max_rel_diff"] < 1e-6 and set(sora["ranks"]) == {"0", "2", "4"}
    assert max(sec.data["maestro_angles_deg"]) < 5
    assert sec.data["plan"]["n_params"] <= 8 * (192 + 256 + 138)
