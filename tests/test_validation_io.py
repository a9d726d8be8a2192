import numpy as np
import pytest

import lowdim
from lowdim import LowdimError
from lowdim.io import atomic_path, load_points
from lowdim.validation import as_points


def test_error_is_value_error():
    assert issubclass(LowdimError, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_named(bad):
    X = np.ones((10, 3))
    X[4, 1] = bad
    with pytest.raises(LowdimError, match=r"non-finite.*row 4, column 1"):
        as_points(X)


def test_one_d_gives_reshape_fix():
    with pytest.raises(LowdimError, match=r"reshape\(-1, 1\)"):
        as_points(np.arange(10.0))


def test_three_d_rejected():
    with pytest.raises(LowdimError, match="3 dimensions"):
        as_points(np.zeros((4, 2, 2)))


def test_constant_rejected():
    with pytest.raises(LowdimError, match="constant"):
        as_points(np.ones((50, 4)))


@pytest.mark.parametrize("arr", [np.array([["a", "b"], ["c", "d"]]), np.array([[object(), 1]], dtype=object)])
def test_strings_and_objects_rejected(arr):
    with pytest.raises(LowdimError, match="dtype"):
        as_points(arr)


def test_integer_and_bool_converted_with_warning():
    X = np.random.default_rng(0).integers(0, 5, size=(20, 3))
    with pytest.warns(UserWarning, match="ties"):
        A = as_points(X)
    assert A.dtype == np.float64
    with pytest.warns(UserWarning):
        assert as_points(X > 2).dtype == np.float64


def test_too_few_samples():
    with pytest.raises(LowdimError, match="1 samples"):
        as_points(np.ones((1, 3)), min_samples=3)


def test_torch_tensor_accepted():
    torch = pytest.importorskip("torch")
    A = as_points(torch.arange(12.0).reshape(6, 2) ** 2)
    assert A.shape == (6, 2)


def test_ragged_list_rejected():
    with pytest.raises(LowdimError):
        as_points([[1, 2], [3]])


def _roundtrip_files(tmp_path, X):
    paths = {}
    np.save(tmp_path / "a.npy", X)
    paths["npy"] = (tmp_path / "a.npy", None)
    np.savez(tmp_path / "b.npz", X=X, y=np.arange(len(X)))
    paths["npz"] = (tmp_path / "b.npz", "X")
    np.savetxt(tmp_path / "c.csv", X, delimiter=",", header="f0,f1,f2", comments="")
    paths["csv"] = (tmp_path / "c.csv", None)
    from safetensors.numpy import save_file

    save_file({"emb": X.astype(np.float32), "other": X[:2].astype(np.float32)}, tmp_path / "d.safetensors")
    paths["safetensors"] = (tmp_path / "d.safetensors", "emb")
    return paths


def test_loaders_roundtrip(tmp_path, rng):
    X = rng.normal(size=(30, 3))
    for kind, (p, key) in _roundtrip_files(tmp_path, X).items():
        A = load_points(p, key=key)
        np.testing.assert_allclose(A, X, rtol=1e-6, err_msg=kind)


def test_container_needs_key(tmp_path, rng):
    X = rng.normal(size=(5, 3))
    np.savez(tmp_path / "b.npz", X=X, y=X)
    with pytest.raises(LowdimError, match="--key"):
        load_points(tmp_path / "b.npz")
    with pytest.raises(LowdimError, match="no array 'z'.*X, y"):
        load_points(tmp_path / "b.npz", key="z")


def test_parquet(tmp_path, rng):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    X = rng.normal(size=(8, 3))
    pq.write_table(pa.table({f"f{i}": X[:, i] for i in range(3)}), tmp_path / "x.parquet")
    np.testing.assert_allclose(load_points(tmp_path / "x.parquet"), X)
    # a text column is refused, like CSV does, never silently dropped
    pq.write_table(pa.table({f"f{i}": X[:, i] for i in range(3)} | {"name": [str(i) for i in range(8)]}), tmp_path / "y.parquet")
    with pytest.raises(LowdimError, match=r"non-numeric columns name \(string\)"):
        load_points(tmp_path / "y.parquet")


def test_pt_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"X": torch.ones(4, 2)}, tmp_path / "x.pt")
    assert load_points(tmp_path / "x.pt", key="X").shape == (4, 2)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save(Evil(), tmp_path / "evil.pt")
    with pytest.raises(LowdimError, match="could not read"):
        load_points(tmp_path / "evil.pt")


def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(LowdimError, match="not found"):
        load_points(tmp_path / "nope.npy")
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(LowdimError, match="empty"):
        load_points(tmp_path / "e.npy")
    (tmp_path / "x.xyz").write_text("1 2 3")
    with pytest.raises(LowdimError, match="unsupported"):
        load_points(tmp_path / "x.xyz")
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(LowdimError, match="could not read"):
        load_points(tmp_path / "junk.npy")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, lowdim; print(any(m in sys.modules for m in ('torch', 'faiss', 'transformers', 'scipy', 'matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert lowdim.__version__
