"""Every code block of README.md runs, as written, in a folder holding the files it names.

Bash blocks run line by line through the shell (with the installed ``lowdim``); Python blocks run
as scripts (``python snippet.py``, so a missing ``if __name__ == "__main__":`` guard fails as it
would for a user). Long runs get a fast variant by the substitutions in ``FAST``; the few lines
that cannot run here are listed in ``SKIP`` with the reason. Every FAST and SKIP entry must still
match the README, so neither can go stale silently.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: (regex, replacement): fast variants of long runs (same commands, smaller settings)
FAST: list[tuple[str, str]] = [
    (r"lowdim demo$", "lowdim demo --only id -o demo-out"),
    # d90 sweeps: one seed, two grid points, a given baseline (no full training), few epochs
    (r"--task digits_mlp --seeds 3", "--task digits_mlp --seeds 1 --d-min 64 --d-max 128 --max-bisect 0 --epochs 2 "
                                     "--baseline 0.95"),
    (r'find_d90\("digits_mlp", seeds=3,', 'find_d90("digits_mlp", seeds=1, d_min=64, d_max=128, max_bisect=0, '
                                          'baseline=0.95, task_options={"epochs": 2},'),
    (r"--task mnist1d_mlp --seeds 5", "--task mnist1d_mlp --seeds 1 --d-min 64 --d-max 64 --max-bisect 0 --epochs 1 "
                                      "--baseline 0.5"),
    (r"--workers 8", "--workers 1"),
    (r"connect\(workers=8\)", "connect(workers=1)"),
    (r"queries=20_000", "queries=500"),
    (r"seeds=2, results=\"wine-runs.jsonl\"", 'seeds=1, d_max=128, max_bisect=1, results="wine-runs.jsonl"'),
]

#: substrings of lines that are not run here, and why
SKIP: dict[str, str] = {
    "pip install": "installing is what CI itself does (.ci/run runs these exact lines)",
    "pytest": "this is the test suite",
    "tcp://10.0.0.5": "needs a running Dask scheduler at that address; --workers runs the same code locally",
    "--task minilm_scifact --said": "minutes of CPU (22.6 M parameters); benchmarks/subspace_fidelity.py runs it",
}


def blocks() -> list[tuple[int, str, str]]:
    """(line number, language, code) of every fenced block."""
    out, lang, start, buf = [], None, 0, []
    for i, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, buf = line[3:].strip() or "text", i, []
            else:
                out.append((start, lang, "\n".join(buf)))
                lang = None
        elif lang is not None:
            buf.append(line)
    return out


def _fast(code: str, used: set) -> str:
    for i, (pat, rep) in enumerate(FAST):
        new = re.sub(pat, rep, code, flags=re.M)
        if new != code:
            used.add(i)
        code = new
    return code


def _commands(code: str, used_skips: set) -> list[str]:
    cmds = []
    for line in code.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        for part in (p.strip() for p in line.split("&&")):
            if not part:
                continue
            skip = [k for k in SKIP if k in part]
            used_skips.update(skip)
            if not skip:
                cmds.append(part)
    return cmds


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The files the README's examples name, small."""
    d = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    plane = (rng.normal(size=(600, 4)) @ rng.normal(size=(4, 24))).astype(np.float32)
    np.save(d / "embeddings.npy", plane)
    np.savez(d / "data.npz", X=plane, y=np.arange(len(plane)))
    from safetensors.numpy import save_file

    save_file({"emb": plane}, str(d / "emb.safetensors"))
    save_file({"layer1": plane[:, :12].copy(), "layer2": plane[:, 4:].copy()}, str(d / "acts.safetensors"))
    corpus = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 64))
    corpus = (corpus / np.linalg.norm(corpus, axis=1, keepdims=True)).astype(np.float32)
    np.save(d / "corpus.npy", corpus)
    np.save(d / "q.npy", corpus[:30] + 0.05 * rng.normal(size=(30, 64)).astype(np.float32))
    beir = d / "scifact"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n"
                                               for i in range(400)))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n"
                                                for i in range(30)))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                             "".join(f"q{i}\td{i}\t1\n" for i in range(30)))
    words = ["protein", "cell", "gene", "cancer", "drug", "virus", "brain", "heart", "immune", "bone"]
    texts = [f"The {words[i % 10]} study {i} found that {words[(3 * i) % 10]} levels change with "
             f"{words[(7 * i + 1) % 10]} treatment." for i in range(80)]
    (d / "texts.txt").write_text("\n".join(texts) + "\n")
    (d / "abstracts.txt").write_text("\n".join(texts[:40]) + "\n")
    (d / "mypkg").mkdir()
    (d / "mypkg" / "__init__.py").write_text("")
    (d / "mypkg" / "models.py").write_text(textwrap.dedent("""
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh())
                self.head = torch.nn.Linear(32, 4)

            def forward(self, x):
                return self.head(self.encoder(x))

        def build():
            return Net()
    """))
    np.save(d / "X.npy", (rng.normal(size=(300, 3)) @ rng.normal(size=(3, 6))).astype(np.float32))
    shards = d / "embeddings"
    shards.mkdir()
    big = rng.normal(size=(3000, 5)) @ rng.normal(size=(5, 16))
    for i in range(3):
        np.save(shards / f"part{i}.npy", big[i * 1000:(i + 1) * 1000])
    return d


def _env(d: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(d), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


BLOCKS = blocks()


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[f"L{b[0]}-{b[1]}" for b in BLOCKS])
def test_readme_block_runs(block, workdir):
    line, lang, code = block
    needs = [m for m in ("torch", "dask", "sentence_transformers") if m in code or
             (m == "torch" and re.search(r"d90|layers|SubspaceModel|demo", code)) or
             (m == "dask" and "--workers" in code) or (m == "sentence_transformers" and re.search(r"embed |gt-all", code))]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    used: set = set()
    code = _fast(code, used)
    if lang == "python":
        script = workdir / f"readme_L{line}.py"
        script.write_text(code + "\n")
        r = subprocess.run([sys.executable, str(script)], cwd=workdir, env=_env(workdir), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"README line {line}:\n{r.stderr[-3000:]}"
    elif lang == "bash":
        skips: set = set()
        for cmd in _commands(code, skips):
            r = subprocess.run(cmd, shell=True, cwd=workdir, env=_env(workdir), capture_output=True, text=True,
                               timeout=600)
            assert r.returncode == 0, f"README line {line}: {cmd}\n{r.stderr[-3000:]}"
            assert "Traceback" not in r.stderr


def test_fast_and_skip_entries_still_match_the_readme():
    text = README.read_text(encoding="utf-8")
    for pat, _ in FAST:
        assert re.search(pat, text, flags=re.M), f"FAST entry {pat!r} no longer matches README.md"
    for key in SKIP:
        assert key in text, f"SKIP entry {key!r} no longer matches README.md"
    assert {lang for _, lang, _ in BLOCKS} <= {"python", "bash", "text"}, "a block in an unrun language"
