"""aTLAS task-vector subspace (lowdim.subspace.task_vectors): known answers and errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim import LowdimError  # noqa: E402
from lowdim.subspace import SubspaceModel, find_d90  # noqa: E402
from lowdim.subspace.task_family import digits_variant  # noqa: E402
from lowdim.subspace.task_vectors import TaskVectorProjection, build_task_vectors, flat_parameters  # noqa: E402


def _regression(seed: int = 0, n: int = 64, p: int = 6):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g)
    w_star = torch.randn(1, p, generator=g)
    return X, X @ w_star.T, w_star


def _net(init_seed: int, p: int = 6, bias: bool = False):
    torch.manual_seed(100 + init_seed)
    return torch.nn.Linear(p, 1, bias=bias)


def _fit(model, X, y, steps: int = 400, lr: float = 0.05):
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y)
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_matrix_is_the_task_vector_blocks_with_unit_columns():
    g = torch.Generator().manual_seed(0)
    tau = torch.randn(3, 10, generator=g)
    blocks = [4, 6]
    P = TaskVectorProjection(tau, blocks, 5).matrix()
    expect = torch.zeros(10, 5)
    for j in range(5):  # task-major: j -> (t, p)
        t, p = divmod(j, 2)
        a, b = (0, 4) if p == 0 else (4, 10)
        expect[a:b, j] = tau[t, a:b] / tau[t, a:b].norm()
    assert torch.allclose(P, expect, atol=1e-6)
    raw = TaskVectorProjection(tau, blocks, 6, scale="raw").matrix()
    assert torch.allclose(raw[:, 0] + raw[:, 1], tau[0])  # λ = 1 on every block is the task vector itself


def test_zero_block_gives_zero_column_and_start_is_theta0():
    tau = torch.tensor([[1.0, 2.0, 0.0, 0.0]])
    P = TaskVectorProjection(tau, [2, 2], 2).matrix()
    assert torch.equal(P[:, 1], torch.zeros(4))
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    D = sum(q.numel() for q in net.parameters())
    sm = SubspaceModel(net, 8, projection="task_vectors", basis=torch.randn(2, D))
    x = torch.randn(5, 3)
    assert torch.equal(sm(x), net(x))
    assert [n for n, _ in sm.named_parameters()] == ["z"]


def test_one_coefficient_reaches_the_true_solution():
    X, y, w_star = _regression()
    net = _net(0)
    tau_star = (w_star - net.weight.detach()).reshape(-1)
    distractor = torch.randn(6, generator=torch.Generator().manual_seed(7))
    # d = 1 trains only the coefficient of τ* (task 0, the one block)
    sm = SubspaceModel(net, 1, projection="task_vectors", basis=torch.stack([tau_star, distractor]))
    assert _fit(sm, X, y, steps=250, lr=0.1) < 1e-8
    assert torch.allclose(sm.flat_theta(), w_star.reshape(-1), atol=1e-4)
    assert float(sm.z.detach()) == pytest.approx(float(tau_star.norm()), rel=1e-4)  # unit columns: λ = ‖τ*‖
    # both coefficients: the distractor's goes to zero
    sm2 = SubspaceModel(_net(0), 2, projection="task_vectors", basis=torch.stack([tau_star, distractor]))
    _fit(sm2, X, y, steps=300, lr=0.1)
    assert abs(float(sm2.z.detach()[1])) < 1e-3


def test_a_random_basis_does_not_reach_it():
    X, y, _ = _regression()
    sm = SubspaceModel(_net(0), 1, projection="task_vectors", basis=torch.randn(1, 6))
    assert _fit(sm, X, y, steps=150, lr=0.1) > 1e-2


def _r2(model, X, y):
    with torch.no_grad():
        return float(1 - ((model(X) - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def _train_fn(model, *, lr, seed, X, y):
    _fit(model, X, y, steps=150, lr=lr)
    return {"val": _r2(model, X, y)}


def _eval_fn(model, *, X, y):
    return _r2(model, X, y)


def test_find_d90_with_task_vectors_finds_the_right_coefficient():
    X, y, w_star = _regression()
    tau_star = (w_star - _net(0).weight.detach()).reshape(-1)
    g = torch.Generator().manual_seed(3)
    basis = torch.stack([torch.randn(6, generator=g), torch.randn(6, generator=g), tau_star])
    res = find_d90("linreg", model_fn=_net, train_fn=functools.partial(_train_fn, X=X, y=y),
                   evaluate_fn=functools.partial(_eval_fn, X=X, y=y), projection="task_vectors", basis=basis,
                   seeds=1, threshold=0.999, threshold_rule="absolute", lrs=(0.1,), baseline_lrs=(0.1,), d_min=1)
    assert res.d90 == 3 and res.config["basis"]["shape"] == [3, 6]
    assert [r["d"] for r in res.per_d] == [1, 2, 3] and not res.per_d[1]["passes"]


def test_build_task_vectors_is_the_fine_tuned_displacement():
    a, b = digits_variant(rotation=30.0, epochs=1), digits_variant(classes=(0, 1), epochs=1)
    tau = build_task_vectors([a, b], init_seed=0)
    assert tau.shape == (2, 4810)
    m = a.model_fn(0)
    torch.manual_seed(0)
    a.train_fn(m, lr=a.baseline_lrs[0], seed=0)
    assert torch.allclose(tau[0], flat_parameters(m) - flat_parameters(a.model_fn(0)))
    assert float(tau[0].norm()) > 0 and not torch.allclose(tau[0], tau[1])


def test_unrotated_variant_is_the_builtin_digits_split():
    from lowdim.subspace.tasks.vision import load_data

    ref = load_data("digits")
    mine = digits_variant().train_fn.keywords["key"]
    from lowdim.subspace.task_family import _data

    d = _data(mine)
    assert torch.equal(d.train[0], ref.train[0]) and torch.equal(d.test[1], ref.test[1])
    sub = _data(digits_variant(classes=(3,), label_shift=2).train_fn.keywords["key"])
    assert set(np.unique(sub.train[1].numpy())) == {5}


def test_errors_name_the_parameter():
    net = torch.nn.Linear(3, 2)
    with pytest.raises(LowdimError, match="basis"):
        SubspaceModel(net, 1, projection="task_vectors")
    with pytest.raises(LowdimError, match="shape"):
        SubspaceModel(net, 1, projection="task_vectors", basis=torch.randn(2, 7))
    with pytest.raises(LowdimError, match="d=5"):
        SubspaceModel(net, 5, projection="task_vectors", basis=torch.randn(2, 8))
    with pytest.raises(LowdimError, match="said"):
        SubspaceModel(net, 3, projection="task_vectors", said=True, basis=torch.randn(2, 8))
    with pytest.raises(LowdimError, match="NaN"):
        SubspaceModel(net, 1, projection="task_vectors", basis=torch.full((1, 8), float("nan")))
    with pytest.raises(LowdimError, match="basis"):
        find_d90("digits_mlp", basis=torch.randn(1, 4810), seeds=1)
    with pytest.raises(LowdimError, match="classes"):
        digits_variant(classes=(11,))
