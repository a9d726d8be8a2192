"""Projections and the FWHT: known answers (scipy's Hadamard), unit columns, seeds, gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.subspace.fwht import fwht, hadamard_factors  # noqa: E402
from lowdim.subspace.projections import RANDOM_PROJECTIONS, make_projection  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 4, 64, 128, 1024, 4096])
def test_fwht_matches_scipy_hadamard(n):
    from scipy.linalg import hadamard

    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    ref = x @ torch.tensor(hadamard(n), dtype=torch.float64)
    assert torch.allclose(fwht(x), ref, atol=1e-9 * n)


def test_fwht_is_its_own_transpose_and_gradient():
    x = torch.randn(2, 128, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fwht, (x[:, :16].detach().requires_grad_(),))
    y = fwht(fwht(x.detach()))
    assert torch.allclose(y, 128 * x.detach(), atol=1e-9)


def test_fwht_factors_and_bad_length():
    assert hadamard_factors(1024) == [32, 32]
    assert np.prod(hadamard_factors(2**17)) == 2**17 and max(hadamard_factors(2**17)) <= 64
    with pytest.raises(ValueError, match="power of two"):
        hadamard_factors(12)


@pytest.mark.parametrize("kind", RANDOM_PROJECTIONS)
@pytest.mark.parametrize(("D", "d"), [(1000, 16), (777, 100), (64, 64), (3000, 513)])
def test_unit_columns_and_same_seed_same_matrix(kind, D, d):
    M = make_projection(kind, D, d, seed=3).matrix()
    assert M.shape == (D, d)
    assert torch.allclose(M.norm(dim=0), torch.ones(d), atol=1e-5)
    assert torch.equal(M, make_projection(kind, D, d, seed=3).matrix())
    assert not torch.equal(M, make_projection(kind, D, d, seed=4).matrix())


@pytest.mark.parametrize("kind", RANDOM_PROJECTIONS)
def test_gradient_is_transpose(kind):
    P = make_projection(kind, 2000, 37, seed=1)
    M = P.matrix()
    z = torch.randn(37, requires_grad=True)
    g = torch.randn(2000)
    (P(z) @ g).backward()
    assert torch.allclose(P(z.detach()), M @ z.detach(), atol=1e-5)
    assert torch.allclose(z.grad, M.T @ g, atol=1e-4)


def test_fastfood_is_roughly_gaussian_and_columns_nearly_orthogonal():
    M = make_projection("fastfood", 8192, 64, seed=0).matrix().double()
    G = M.T @ M
    off = G - torch.diag(torch.diag(G))
    assert off.abs().max() < 0.1  # random unit vectors in R^8192: |cos| ~ 0.011
    entries = M.flatten() * np.sqrt(8192)
    assert abs(float(entries.std()) - 1) < 0.05 and abs(float(entries.mean())) < 0.02


def test_sparse_density():
    P = make_projection("sparse", 40000, 50, seed=0)
    assert 0.8 < P.nnz / (50 * 40000 / 200) < 1.2  # density 1/sqrt(D) = 1/200


def test_projection_bad_input():
    with pytest.raises(LowdimError, match="fastfood"):
        make_projection("random", 10, 2)
    with pytest.raises(LowdimError, match="d=0"):
        make_projection("fastfood", 10, 0)
    with pytest.raises(LowdimError, match="d=11"):
        make_projection("dense", 10, 11)
    with pytest.raises(LowdimError, match="projection='fastfood'"):
        make_projection("dense", 10**6, 1000, max_dense_bytes=2**30)
