"""The two reproduction scripts of issue 16 run end to end in their tiny ``--quick`` mode."""

import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, out: Path, monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [script, "--quick", "--out", str(out)])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    return capsys.readouterr().out


def test_frozen_subspace_quick(tmp_path, monkeypatch, capsys):
    text = _run("repro_frozen_subspace.py", tmp_path, monkeypatch, capsys)
    res = json.loads((tmp_path / "frozen_subspace.json").read_text())
    assert (tmp_path / "frozen_subspace.png").stat().st_size > 10_000
    assert res["explicit_vs_eigen_max_abs_diff"] < 1e-10  # the eigenbasis iterates are GD's iterates
    fa = res["frozen"]
    assert max(r["rel_null_norm"] for r in fa["log"]) < 1e-10  # the null-space part never moves
    assert fa["update_numerical_rank"] == fa["N"] < fa["M"]
    assert set(res["verdicts"]) >= {"a_null_space_frozen", "b_overtraining_worst_near_1",
                                    "c_init_scale_adds_frozen_error"}
    assert "(a)" in text and "(b)" in text and "(c)" in text and "HOLDS" in text


def test_frozen_subspace_theory_matches_known_limits():
    pytest.importorskip("scipy")
    mod = runpy.run_path(str(EXAMPLES / "repro_frozen_subspace.py"))
    import numpy as np

    # at k = 0 the error is σ_ε² + σ_w² + σ₀² for every α (MP mass integrates to min(α, 1))
    for alpha in (0.3, 1.0, 2.5):
        np.testing.assert_allclose(mod["mp_theory"](alpha, np.array([0]), snr=4.0, sigma0=0.5), 0.25 + 1 + 0.25,
                                   rtol=1e-6)
    # long training without noise at α > 1 recovers the teacher: E_g → σ_ε² → 0 (snr huge)
    assert mod["mp_theory"](2.0, np.array([10**6]), snr=1e12, sigma0=0.0)[0] < 1e-6
    # at α < 1, the frozen part (1 − α)(σ_w² + σ₀²) remains
    np.testing.assert_allclose(mod["mp_theory"](0.5, np.array([10**7]), snr=1e12, sigma0=1.0), 0.5 * 2, rtol=1e-4)


def test_molrg_diffusion_quick(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    text = _run("repro_molrg_diffusion.py", tmp_path, monkeypatch, capsys)
    res = json.loads((tmp_path / "molrg_diffusion.json").read_text())
    assert (tmp_path / "molrg_diffusion.png").stat().st_size > 10_000
    lr = res["lowrank"]
    # the low-rank denoiser fitted on enough samples recovers the subspaces and generalises
    assert lr["2:6"]["subspace_error"] < 1e-6 and lr["2:6"]["generalised"] > 0.9
    assert lr["2:1"]["generalised"] < 0.5  # one sample per component cannot fix a 2-D subspace
    assert lr["2:6"]["train_loss"] <= lr["2:6"]["train_loss_true_bases"] * 1.05
    for key in ("lowrank", "mlp"):
        for r in res[key].values():
            assert 0 <= r["generalised"] <= r["on_support"] <= 1 and 0 <= r["memorised"] <= 1
    assert "verdict, low-rank denoiser" in text and "verdict, small MLP" in text
