"""SubspaceModel: z = 0 is θ₀ exactly, exact gradients vs an explicit dense P, SAID, plumbing."""

import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.subspace import SubspaceModel, load_subspace, save_subspace  # noqa: E402


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 4),
                               torch.nn.LayerNorm(4))


@pytest.mark.parametrize("projection", ["fastfood", "dense", "sparse"])
@pytest.mark.parametrize("said", [False, True])
def test_zero_z_reproduces_outputs_exactly(projection, said):
    net = small_net()
    x = torch.randn(7, 6)
    sm = SubspaceModel(net, 20, projection=projection, said=said, seed=2)
    assert torch.equal(sm(x), net(x))
    assert [n for n, _ in sm.named_parameters()] == (["z", "lam"] if said else ["z"])


@pytest.mark.parametrize("projection", ["fastfood", "dense", "sparse"])
def test_gradient_matches_explicit_dense_P(projection):
    net = small_net()
    D = sum(p.numel() for p in net.parameters())
    sm = SubspaceModel(net, 12, projection=projection, seed=5)
    P = sm.projection.matrix()  # (D, d), materialised independently of autograd
    with torch.no_grad():
        sm.z.normal_()
    x, y = torch.randn(11, 6), torch.randint(0, 4, (11,))
    loss = torch.nn.functional.cross_entropy(sm(x), y)
    loss.backward()
    # reference: the same loss as a function of θ, with θ = θ0 + P z built by hand
    theta = (sm.theta0[:D] + P @ sm.z.detach()).requires_grad_()
    chunks, off = {}, 0
    for (name, p) in net.named_parameters():
        chunks[name] = theta[off:off + p.numel()].view_as(p)
        off += p.numel()
    assert off == D
    ref = torch.nn.functional.cross_entropy(torch.func.functional_call(net, chunks, (x,)), y)
    (g_theta,) = torch.autograd.grad(ref, theta)
    assert torch.allclose(loss, ref, atol=1e-6)
    assert torch.allclose(sm.z.grad, P.T @ g_theta, atol=1e-5, rtol=1e-4)


def test_said_gradient_scale_and_small_tensors_see_all_of_z():
    net = small_net()
    sm = SubspaceModel(net, 30, said=True, seed=1)
    n_tensors = len(list(net.parameters()))
    assert sm.d_z == 30 - n_tensors and sm.lam.shape == (n_tensors,)
    P = sm.projection.matrix()
    with torch.no_grad():
        sm.z.normal_()
        sm.lam.uniform_(0.5, 2)
    x = torch.randn(5, 6)
    out = sm(x).square().sum()
    out.backward()
    # reference gradient with explicit λ_i (P z)_i
    z = sm.z.detach().clone().requires_grad_()
    lam = sm.lam.detach().clone().requires_grad_()
    sizes = [p.numel() for p in net.parameters()]
    delta = (P @ z) * torch.repeat_interleave(lam, torch.tensor(sizes))
    theta = sm.theta0[: sm.n_params_] + delta
    chunks, off = {}, 0
    for (name, p), n in zip(net.named_parameters(), sizes):
        chunks[name] = theta[off:off + n].view_as(p)
        off += n
    torch.func.functional_call(net, chunks, (x,)).square().sum().backward()
    assert torch.allclose(sm.z.grad, z.grad, rtol=1e-4, atol=1e-5)  # no 1/L_i factor
    assert torch.allclose(sm.lam.grad, lam.grad, rtol=1e-4, atol=1e-5)
    # the 4-entry LayerNorm bias (smaller than d_z) depends on every coordinate of z
    last = P[-4:]
    assert (last != 0).all()


def test_state_dict_to_train_eval_and_module_untouched():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.5),
                              torch.nn.Linear(8, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sm = SubspaceModel(net, 10, seed=0)
    sd = sm.state_dict()
    assert "z" in sd and "theta0" in sd and "m__1__running_mean" in sd
    assert not any(k.startswith("projection.") for k in sd)  # regenerated from the seed
    sm.eval()
    assert not net.training and not sm.training
    sm.train()
    assert net.training
    sm.to(torch.float64)
    assert sm.z.dtype == torch.float64 and sm.theta0.dtype == torch.float64
    sm.to(torch.float32)
    opt = torch.optim.SGD(sm.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    sm(x).sum().backward()
    opt.step()
    for k, v in net.state_dict().items():  # the wrapped module's parameters are never modified
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, before[k]), k
    sm2 = SubspaceModel(net, 10, seed=0)
    sm2.load_state_dict(sm.state_dict())
    sm2.eval(), sm.eval()
    assert torch.equal(sm2(x), sm(x))


def test_weight_tying_is_kept():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.out = torch.nn.Linear(4, 10, bias=False)
            self.out.weight = self.emb.weight

        def forward(self, idx):
            return self.out(self.emb(idx))

    m = Tied()
    sm = SubspaceModel(m, 8, seed=0)
    assert sm.n_params_ == 40  # the tied matrix counts once
    with torch.no_grad():
        sm.z.normal_()
    w = sm.parameters_dict()["emb.weight"]
    idx = torch.tensor([1, 2])
    assert torch.allclose(sm(idx), (w[idx] @ w.T))


def test_export_roundtrip_exact(tmp_path):
    net = small_net()
    sm = SubspaceModel(net, 25, said=True, seed=3, theta0_source="small_net(seed=0)")
    with torch.no_grad():
        sm.z.normal_()
        sm.lam.normal_()
    path = tmp_path / "m.safetensors"
    spec = save_subspace(sm, path)
    assert spec["compression_ratio"] == pytest.approx(sm.n_params_ / 25)
    assert path.stat().st_size < 2000  # z + λ + a JSON spec, not the weights
    back = load_subspace(path, small_net())
    x = torch.randn(3, 6)
    assert torch.equal(back.flat_theta(), sm.flat_theta())
    assert torch.equal(back(x), sm(x))
    assert torch.equal(back.materialize()(x), sm(x))
    with pytest.raises(LowdimError, match="θ₀"):
        load_subspace(path, small_net(seed=1))
    pt = SubspaceModel(small_net(), 9, projection="sparse", normalize="tensor", seed=2)
    with torch.no_grad():
        pt.z.normal_()
    save_subspace(pt, tmp_path / "pt.safetensors")
    assert torch.equal(load_subspace(tmp_path / "pt.safetensors", small_net()).flat_theta(), pt.flat_theta())



def test_export_roundtrip_task_vectors(tmp_path):
    """aTLAS exports store λ, not the task vectors: loading needs the same basis, checked by hash."""
    from lowdim.subspace.task_vectors import flat_parameters

    D = int(flat_parameters(small_net()).numel())
    tau = torch.randn(3, D, generator=torch.Generator().manual_seed(0))
    sm = SubspaceModel(small_net(), 5, projection="task_vectors", basis=tau)
    with torch.no_grad():
        sm.z.normal_()
    path = tmp_path / "tv.safetensors"
    spec = save_subspace(sm, path)
    assert spec["n_task_vectors"] == 3 and len(spec["basis_sha256"]) == 64
    back = load_subspace(path, small_net(), basis=tau.clone())
    x = torch.randn(3, 6)
    assert torch.equal(back.flat_theta(), sm.flat_theta()) and torch.equal(back(x), sm(x))
    with pytest.raises(LowdimError, match="pass basis="):
        load_subspace(path, small_net())
    other = tau.clone()
    other[1, 0] += 1e-3
    with pytest.raises(LowdimError, match="basis passed differs"):
        load_subspace(path, small_net(), basis=other)
    with pytest.raises(LowdimError, match="only for task_vectors"):
        save_subspace(SubspaceModel(small_net(), 4), tmp_path / "ff.safetensors")
        load_subspace(tmp_path / "ff.safetensors", small_net(), basis=tau)

def test_bad_input():
    net = small_net()
    with pytest.raises(LowdimError, match="d=0"):
        SubspaceModel(net, 0)
    with pytest.raises(LowdimError, match="d=-3"):
        SubspaceModel(net, -3)
    with pytest.raises(LowdimError, match="D=111 trainable"):
        SubspaceModel(net, 10_000)
    with pytest.raises(LowdimError, match="said=True"):
        SubspaceModel(net, 6, said=True)  # 6 tensors: SAID needs d > 6
    with pytest.raises(LowdimError, match="fastfood, sparse"):
        SubspaceModel(net, 5, projection="gaussian")
    frozen = small_net().requires_grad_(False)
    with pytest.raises(LowdimError, match="no trainable parameters"):
        SubspaceModel(frozen, 5)
    m = torch.nn.Linear(3, 3)
    m.register_parameter("steps", torch.nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False))
    with pytest.raises(LowdimError, match="'steps' has dtype torch.int64"):
        SubspaceModel(m, 5)
    with pytest.raises(LowdimError, match="nn.Module"):
        SubspaceModel("not a module", 5)


def test_torch_compile_matches_eager():
    net = small_net()
    sm = SubspaceModel(net, 15, seed=0)
    with torch.no_grad():
        sm.z.normal_()
    x = torch.randn(4, 6)
    ref = sm(x)
    ref.sum().backward()
    g_ref = sm.z.grad.clone()
    sm.z.grad = None
    out = torch.compile(sm, backend="aot_eager")(x)  # traces functional_call and the custom FWHT
    out.sum().backward()
    assert torch.allclose(out, ref, atol=1e-6) and torch.allclose(sm.z.grad, g_ref, atol=1e-6)


@pytest.mark.parametrize("projection", ["fastfood", "dense", "sparse"])
def test_per_tensor_normalisation(projection):
    net = small_net()
    sm = SubspaceModel(net, 12, projection=projection, normalize="tensor", seed=4)
    P = sm.projection.matrix()
    off = 0
    for p in net.parameters():  # every tensor's block has unit-norm columns, even the 4-entry ones
        block = P[off:off + p.numel()]
        assert torch.allclose(block.norm(dim=0), torch.ones(12), atol=1e-5)
        off += p.numel()
    x = torch.randn(3, 6)
    assert torch.equal(sm(x), net(x))
    with torch.no_grad():
        sm.z.normal_()
    sm(x).sum().backward()
    theta = (sm.theta0[:off] + P @ sm.z.detach()).requires_grad_()
    chunks, o = {}, 0
    for name, p in net.named_parameters():
        chunks[name] = theta[o:o + p.numel()].view_as(p)
        o += p.numel()
    (g,) = torch.autograd.grad(torch.func.functional_call(net, chunks, (x,)).sum(), theta)
    assert torch.allclose(sm.z.grad, P.T @ g, atol=1e-5, rtol=1e-4)
    with pytest.raises(LowdimError, match="network, tensor"):
        SubspaceModel(net, 12, normalize="layer")
