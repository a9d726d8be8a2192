import numpy as np
import pytest

import lowdim
from lowdim.datasets import molrg
from lowdim.datasets.benchmark import LOCAL_ID_BENCHMARKS, make_local_benchmark
from lowdim.datasets.molrg import distance_to_subspaces
from lowdim.errors import LowdimError


def test_shapes_labels_and_orthonormal_bases():
    X, labels, bases = molrg(500, ambient_dim=48, subspace_dims=(2, 5, 8), random_state=0)
    assert X.shape == (500, 48) and X.dtype == np.float64
    assert labels.shape == (500,) and labels.dtype == np.int64 and set(labels.tolist()) == {0, 1, 2}
    assert [U.shape for U in bases] == [(48, 2), (48, 5), (48, 8)]
    for U in bases:
        np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-12)
    B = np.hstack(bases)  # orthogonal=True: the subspaces are mutually orthogonal
    np.testing.assert_allclose(B.T @ B, np.eye(15), atol=1e-12)


@pytest.mark.parametrize("orthogonal", [True, False])
def test_each_component_has_exactly_its_rank_and_lies_in_its_subspace(orthogonal):
    dims = (1, 3, 7, 12)
    X, labels, bases = molrg(800, ambient_dim=24, subspace_dims=dims, orthogonal=orthogonal, random_state=4)
    for k, d in enumerate(dims):
        Xk = X[labels == k]
        assert len(Xk) > d
        s = np.linalg.svd(Xk, compute_uv=False)
        assert s[d - 1] > 1e-3 * s[0]  # rank exactly d: d clear singular values, then zeros
        assert d == len(s) or s[d] < 1e-12 * s[0]
        assert np.linalg.matrix_rank(Xk) == d
        np.testing.assert_allclose(Xk, Xk @ bases[k] @ bases[k].T, atol=1e-12)
    dist = distance_to_subspaces(X, bases)
    assert np.all(dist[np.arange(len(X)), labels] < 1e-12)
    # brute force: the distance is the norm of the least-squares residual
    k0 = 2
    coef = np.linalg.lstsq(bases[k0], X.T, rcond=None)[0]
    np.testing.assert_allclose(dist[:, k0], np.linalg.norm(X.T - bases[k0] @ coef, axis=0), atol=1e-10)
    if not orthogonal:  # independent bases are not mutually orthogonal
        assert np.abs(bases[1].T @ bases[2]).max() > 1e-3


def test_component_law_weights_and_noise():
    X, labels, bases = molrg(20000, ambient_dim=10, subspace_dims=(2, 4), weights=(3, 1), noise=0.1,
                             random_state=2)
    assert abs(np.mean(labels == 0) - 0.75) < 0.02
    for k, U in enumerate(bases):
        coords = X[labels == k] @ U  # standard Gaussian latent (+ noise) in the subspace's coordinates
        np.testing.assert_allclose(np.cov(coords.T), (1 + 0.01) * np.eye(U.shape[1]), atol=0.06)
        resid = X[labels == k] - coords @ U.T  # the noise off the subspace has std 0.1 per coordinate
        assert abs(np.sqrt(np.mean(np.sum(resid**2, 1)) / (10 - U.shape[1])) - 0.1) < 0.005


def test_seeds_reproducible():
    a = molrg(300, ambient_dim=30, subspace_dims=(3, 6), noise=0.01, random_state=7)
    b = molrg(300, ambient_dim=30, subspace_dims=(3, 6), noise=0.01, random_state=7)
    c = molrg(300, ambient_dim=30, subspace_dims=(3, 6), noise=0.01, random_state=8)
    for x, y in zip(a[:2], b[:2], strict=True):
        np.testing.assert_array_equal(x, y)
    for U, V in zip(a[2], b[2], strict=True):
        np.testing.assert_array_equal(U, V)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[2][0], c[2][0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 0}, "n=0"),
    ({"n": 2.5}, "n must be an integer"),
    ({"ambient_dim": 0}, "ambient_dim=0"),
    ({"subspace_dims": 3}, "subspace_dims must be a sequence"),
    ({"subspace_dims": "23"}, "subspace_dims must be a sequence"),
    ({"noise": True}, "noise must be a non-negative number"),
    ({"subspace_dims": ()}, "subspace_dims is empty"),
    ({"subspace_dims": (2, 0)}, r"subspace_dims\[1\]=0"),
    ({"subspace_dims": (2, 11)}, r"subspace_dims\[1\]=11 .*ambient_dim=10"),
    ({"subspace_dims": (2, 3.0)}, r"subspace_dims\[1\] must be an integer"),
    ({"subspace_dims": (6, 6)}, r"sum\(subspace_dims\)=12 <= ambient_dim=10.*orthogonal=False"),
    ({"noise": -0.1}, "noise=-0.1"),
    ({"noise": float("nan")}, "noise=nan"),
    ({"noise": "a lot"}, "noise must be a non-negative number"),
    ({"weights": (1, 2, 3)}, "weights must be 2 non-negative"),
    ({"weights": (1, -1)}, "weights must be 2 non-negative"),
    ({"weights": (0, 0)}, "positive sum"),
])
def test_bad_arguments_refused_with_a_clear_error(kwargs, match):
    args = {"n": 10, "ambient_dim": 10, "subspace_dims": (2, 3)} | kwargs
    n = args.pop("n")
    with pytest.raises(LowdimError, match=match):
        molrg(n, **args)
    assert molrg(5, ambient_dim=10, subspace_dims=(6, 6), orthogonal=False)[0].shape == (5, 10)


def test_local_id_per_point_matches_its_component_dimension():
    X, labels, _ = molrg(2400, ambient_dim=48, subspace_dims=(2, 4, 8), random_state=1)
    for method in ("twonn", "mle"):
        loc = lowdim.local_id(X, method=method, n_neighbors=20)
        for k, d in enumerate((2, 4, 8)):
            med = float(np.median(loc[labels == k]))
            assert abs(med - d) < 0.15 * d, (method, d, med)
        # the local ID sorts the points by component: nearest true dimension is right for most points
        nearest = np.array((2, 4, 8))[np.argmin(np.abs(np.log(loc[:, None] / np.array((2, 4, 8)))), axis=1)]
        assert np.mean(nearest == np.array((2, 4, 8))[labels]) > 0.7


def test_local_benchmark_entry():
    assert LOCAL_ID_BENCHMARKS["MoLRG_2-4-8_R48"][:2] == ((2, 4, 8), 48)
    X, d = make_local_benchmark("MoLRG_2-4-8_R48", 200, random_state=3)
    X2, labels, _ = molrg(200, ambient_dim=48, subspace_dims=(2, 4, 8), random_state=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(d, np.array((2, 4, 8))[labels])
    with pytest.raises(LowdimError, match="MoLRG_2-4-8_R48"):
        make_local_benchmark("nothing")
