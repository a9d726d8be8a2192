"""``lowdim id --workers / --scheduler`` and shard-folder PATHs."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("distributed")

from lowdim.cli import main
from lowdim.scale import client as client_mod


def run_cli(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_id_on_shard_folder_with_workers_equals_single_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 3)) @ rng.normal(size=(3, 12))
    np.save(tmp_path / "all.npy", X)
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, s in enumerate(range(0, 3000, 800)):
        np.save(shards / f"part_{i}.npy", X[s:s + 800])
    code, out, _ = run_cli(["id", str(tmp_path / "all.npy"), "--method", "twonn", "--json"], capsys)
    assert code == 0
    single = json.loads(out)
    code, out, err = run_cli(["id", str(shards), "--method", "twonn", "--workers", "2", "--json"], capsys)
    assert code == 0, err
    dist = json.loads(out)
    assert dist["dimension"] == single["dimension"] and dist["ci"] == single["ci"]
    assert any("4 shards on 2 Dask workers" in n for n in dist["notes"])
    # a plain file with --workers goes through the cluster too, same answer
    code, out, err = run_cli(["id", str(tmp_path / "all.npy"), "--method", "twonn", "--workers", "2", "--json"],
                             capsys)
    assert code == 0, err
    assert json.loads(out)["dimension"] == single["dimension"]


def test_id_unreachable_scheduler_exits_2_naming_address_and_timeout(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 3)))
    monkeypatch.setattr(client_mod.connect, "__defaults__", (None, None, 1))  # 1 s instead of 10
    code, out, err = run_cli(["id", str(tmp_path / "x.npy"), "--scheduler", "tcp://127.0.0.1:1"], capsys)
    assert code == 2 and out == ""
    assert "tcp://127.0.0.1:1" in err and "timeout=1 s" in err


def test_id_bad_shard_folder_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["id", str(tmp_path), "--workers", "1"], capsys)
    assert code == 2 and "holds no .npy shards" in err
    np.save(tmp_path / "a.npy", np.zeros((5, 3)))
    np.save(tmp_path / "b.npy", np.zeros((5, 4)))
    code, _, err = run_cli(["id", str(tmp_path), "--workers", "1"], capsys)
    assert code == 2 and "'b.npy' has 4 columns" in err
    code, _, err = run_cli(["id", str(tmp_path / "a.npy"), "--workers", "2", "--scheduler", "tcp://x:1"], capsys)
    assert code == 2 and "not both" in err
