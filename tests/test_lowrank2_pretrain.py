"""Known-answer tests for the pretraining bed and SLTrain / SST / DCT-AdamW / LOST (issue 15 A)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.lowrank import charlm  # noqa: E402
from lowdim.lowrank.dct_adamw import DCTAdamW, dct_basis  # noqa: E402
from lowdim.lowrank.lost import LOSTLinear, lost_factory  # noqa: E402
from lowdim.lowrank.sltrain import SLTrainLinear, sltrain_factory  # noqa: E402
from lowdim.lowrank.sst import SSTLinear, SSTScheduler, _SpectralProduct  # noqa: E402


# ---------------------------------------------------------------- bed
def test_stdlib_split_is_disjoint_and_deterministic():
    tr, ev = charlm.stdlib_text(split="train"), charlm.stdlib_text(split="eval")
    assert len(tr) > 5 * len(ev) > 0
    assert ev[:2000] not in tr and tr[:2000] not in ev   # whole files go to one side
    assert charlm.stdlib_text(split="eval") == ev
    ids = charlm.encode("ab\u00e9\n")
    assert ids.tolist() == [97, 98, 0, 10]
    with pytest.raises(LowdimError, match="split"):
        charlm.stdlib_text(split="test")


def test_optimizer_state_bytes_counts_adam_moments():
    net = torch.nn.Linear(10, 4)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(3, 10)).sum().backward()
    opt.step()
    n = sum(p.numel() for p in net.parameters())
    steps = sum(s["step"].numel() * s["step"].element_size() for s in opt.state.values())
    assert charlm.optimizer_state_bytes(opt) == 2 * 4 * n + steps


def test_bed_hooks_and_bad_config():
    bed = charlm.CharLMBed(charlm.CharLMConfig(d_model=16, n_layers=1, n_heads=2, seq_len=16),
                           max_train_chars=5000, max_eval_chars=512)
    names = []
    res = bed.train(steps=2, batch_size=2, linear_factory=lambda i, o, n: names.append(n) or
                    torch.nn.Linear(i, o), on_step=lambda s, m, o: names.append(s))
    assert names == ["blocks.0.qkv", "blocks.0.proj", "blocks.0.fc1", "blocks.0.fc2", 0, 1]
    assert res["tokens"] == 2 * 2 * 16 and math.isfinite(res["perplexity"])
    with pytest.raises(LowdimError, match="n_heads"):
        charlm.CharLMBed(charlm.CharLMConfig(d_model=10, n_heads=4))


# ---------------------------------------------------------------- SLTrain
def test_sltrain_support_fixed_and_gradient_is_gather():
    torch.manual_seed(0)
    layer = SLTrainLinear(20, 12, rank=3, density=0.1)
    idx0 = layer.sparse_index.clone()
    assert idx0.numel() == round(0.1 * 240) and "sparse_index" not in dict(layer.named_parameters())
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1)
    x = torch.randn(7, 20)
    for _ in range(3):
        opt.zero_grad()
        layer(x).pow(2).sum().backward()
        opt.step()
    assert torch.equal(layer.sparse_index, idx0)
    S = layer.sparse_weight().detach().flatten()
    off = torch.ones(240, dtype=torch.bool)
    off[idx0] = False
    assert torch.all(S[off] == 0) and torch.all(S[idx0] != 0)
    # gradient of the values = dense gradient gathered at the support (brute force)
    layer.zero_grad()
    W = layer.weight().detach().requires_grad_(True)
    torch.nn.functional.linear(x, W, layer.bias.detach()).pow(2).sum().backward()
    layer(x).pow(2).sum().backward()
    assert torch.allclose(layer.sparse_value.grad, W.grad.flatten()[idx0], atol=1e-4)
    assert torch.allclose(layer.lora_B.grad, layer.scaling * W.grad @ layer.lora_A.detach().T, atol=1e-4)


def test_sltrain_factory_supports_differ_between_layers_and_are_seeded():
    f1, f2 = sltrain_factory(rank=2, seed=3), sltrain_factory(rank=2, seed=3)
    a, b, a2 = f1(16, 16, "x"), f1(16, 16, "y"), f2(16, 16, "x")
    assert not torch.equal(a.sparse_index, b.sparse_index)
    assert torch.equal(a.sparse_index, a2.sparse_index)
    with pytest.raises(LowdimError, match="density"):
        SLTrainLinear(4, 4, rank=1, density=1.5)


# ---------------------------------------------------------------- SST
def test_sst_svd_init_reproduces_and_enhanced_gradient():
    torch.manual_seed(0)
    dense = torch.nn.Linear(12, 9)
    layer = SSTLinear.from_linear(dense, rank=3)
    x = torch.randn(5, 12)
    assert torch.allclose(layer(x), dense(x), atol=1e-5)
    U, s, Vh = (torch.randn(6, 4, requires_grad=True), (torch.rand(4) + 0.5).requires_grad_(),
                torch.randn(4, 7, requires_grad=True))
    G = torch.randn(6, 7)
    (_SpectralProduct.apply(U, s, Vh) * G).sum().backward()
    eU, es, eV = U.grad.clone(), s.grad.clone(), Vh.grad.clone()
    for t in (U, s, Vh):
        t.grad = None
    ((U * s) @ Vh * G).sum().backward()
    assert torch.allclose(es, s.grad, atol=1e-5)                      # σ: ordinary gradient
    assert torch.allclose(eU * s.detach(), U.grad, atol=1e-5)         # vectors: σ-free
    assert torch.allclose(eV * s.detach()[:, None], Vh.grad, atol=1e-5)


def test_sst_resvd_keeps_function_and_round_resets_state():
    torch.manual_seed(1)
    layer = SSTLinear.from_linear(torch.nn.Linear(10, 8), rank=2)
    opt = torch.optim.AdamW(layer.parameters(), lr=0.05)
    sched = SSTScheduler(round_steps=3, seed=0)
    x = torch.randn(6, 10)
    for step in range(3):
        opt.zero_grad()
        layer(x).pow(2).sum().backward()
        opt.step()
        if step == 2:
            with torch.no_grad():
                layer.s.clamp_(min=0.0)    # the projection the scheduler applies first
            before = layer(x).detach()
            assert not torch.allclose(layer.U_act.T @ layer.U_act, torch.eye(2), atol=1e-3)
        sched(step, layer, opt)
        assert torch.all(layer.s >= 0)
    assert torch.allclose(layer(x), before, atol=1e-4)               # re-SVD: function unchanged
    assert torch.allclose(layer.U.T @ layer.U, torch.eye(8), atol=1e-4)
    assert torch.allclose(layer.Vh @ layer.Vh.T, torch.eye(8), atol=1e-4)
    assert all(len(opt.state[p]) == 0 for p in (layer.U_act, layer.Vh_act, layer.s))
    opt.zero_grad()
    layer(x).sum().backward()
    opt.step()
    shapes = {tuple(opt.state[p]["exp_avg"].shape) for p in (layer.U_act, layer.Vh_act, layer.s)}
    assert shapes == {(8, 2), (2, 10), (8,)}                          # state: r(m+n) + k


def test_sst_sampling_is_proportional_to_sigma():
    layer = SSTLinear(torch.eye(4), torch.tensor([3.0, 1.0, 0.0, 0.0]), torch.eye(4), None, rank=1)
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(4)
    for _ in range(400):
        layer.resample(g)
        counts[int(layer.index)] += 1
    assert counts[2] == counts[3] == 0 and abs(counts[0] / 400 - 0.75) < 0.07


# ---------------------------------------------------------------- DCT-AdamW
def test_dct_basis_orthonormal_and_is_dct2():
    scipy_fft = pytest.importorskip("scipy.fft")
    Q = dct_basis(13, dtype=torch.float64)
    assert torch.allclose(Q.T @ Q, torch.eye(13, dtype=torch.float64), atol=1e-12)
    X = np.random.default_rng(0).normal(size=(4, 13))
    assert np.allclose((torch.from_numpy(X) @ Q).numpy(), scipy_fft.dct(X, type=2, norm="ortho", axis=-1))


def test_dct_adamw_state_shapes_cache_per_size_and_selection():
    a = torch.nn.Parameter(torch.zeros(32, 16))    # right projection, basis 16
    b = torch.nn.Parameter(torch.zeros(8, 24))     # left projection, basis 8
    c = torch.nn.Parameter(torch.zeros(5))
    opt = DCTAdamW([a, b, c], lr=1e-2, rank=3, update_interval=2)
    Q16 = dct_basis(16)
    J = torch.tensor([1, 7, 12])
    a.grad = torch.randn(32, 3) @ Q16[:, J].T       # gradient lies in three DCT columns
    b.grad, c.grad = torch.randn(8, 24), torch.randn(5)
    opt.step()
    assert opt.state[a]["index"].tolist() == J.tolist()
    assert tuple(opt.state[a]["exp_avg"].shape) == (32, 3)
    assert tuple(opt.state[b]["exp_avg_sq"].shape) == (3, 24)
    assert tuple(opt.state[c]["exp_avg"].shape) == (5,)
    assert sorted(k[0] for k in opt._bases) == [8, 16]           # one basis per size, not one
    # the update of a lies in the selected columns: a @ Q[:, others] == 0
    others = [j for j in range(16) if j not in J.tolist()]
    assert torch.allclose(a.detach() @ Q16[:, others], torch.zeros(32, 13), atol=1e-6)
    assert charlm.optimizer_state_bytes(opt) >= 4 * (2 * 32 * 3 + 2 * 3 * 24 + 10 + 16 * 16 + 8 * 8)


def test_dct_adamw_refresh_rotates_moments():
    p = torch.nn.Parameter(torch.zeros(6, 4))
    opt = DCTAdamW([p], lr=1e-2, rank=2, update_interval=1)
    Q = dct_basis(4)
    p.grad = torch.ones(6, 1) @ (Q[:, [0]] + 0.5 * Q[:, [1]]).T
    opt.step()
    m0 = opt.state[p]["exp_avg"].clone()
    p.grad = torch.ones(6, 1) @ (Q[:, [1]] + 2 * Q[:, [3]]).T    # columns {1, 3} now
    opt.step()
    assert opt.state[p]["index"].tolist() == [1, 3]
    # old column 1 carries its momentum into new position 0; old column 0 is dropped
    expected = 0.9 * m0[:, 1] + 0.1 * 1.0
    assert torch.allclose(opt.state[p]["exp_avg"][:, 0], expected, atol=1e-6)
    with pytest.raises(LowdimError, match="rank"):
        DCTAdamW([p], rank=0)


# ---------------------------------------------------------------- LOST / BA
def test_lost_svd_parts_and_channel_choice():
    torch.manual_seed(2)
    dense = torch.nn.Linear(20, 10)
    W = dense.weight.detach().double()
    layer = LOSTLinear.from_linear(dense, rank=3, density=0.2)
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    W3 = (U[:, :3] * s[:3]) @ Vh[:3]
    assert torch.allclose((layer.B @ layer.A).double(), W3, atol=1e-5)       # SVD init
    E = W - W3
    J = torch.topk(E.norm(dim=0), 4).indices.sort().values
    assert layer.channels.tolist() == J.tolist()
    assert torch.allclose(layer.weight().double()[:, J], W[:, J], atol=1e-5)  # exact on J
    f = lost_factory(rank=4, density=0.0, init="random", seed=0)
    big = f(400, 300, "x")
    var = float((big.B @ big.A).detach().var())
    assert abs(var / (1 / (3 * 400)) - 1) < 0.1 and big.S.numel() == 0
    with pytest.raises(LowdimError, match="init"):
        LOSTLinear.from_linear(dense, rank=2, init="pca")
