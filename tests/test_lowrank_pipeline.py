"""lowdim.lowrank: profile → plan → PEFT export/validate, SoRA, Maestro, SVFit, GaLore, AdaLoRA."""

import itertools
import re
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.lowrank.plan import RankPlan, allocate, pattern_key  # noqa: E402
from lowdim.lowrank.profile import (  # noqa: E402
    ModuleSpectrum,
    SpectralProfile,
    find_targets,
    profile,
    spectrum_stats,
)


def mlp(seed=0, widths=(12, 32, 24, 5)):
    torch.manual_seed(seed)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


class Nested(torch.nn.Module):
    """Module names where a plain name is a dotted suffix of another ("0" and "block.0")."""

    def __init__(self):
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Linear(6, 6))
        self.add_module("0", torch.nn.Linear(6, 4))

    def forward(self, x):
        return getattr(self, "0")(self.block(x))


def test_mp_rank_of_planted_low_rank_plus_noise_and_of_pure_noise(rng):
    W = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 150)) + 0.2 * rng.normal(size=(300, 150))
    assert spectrum_stats(np.linalg.svd(W, compute_uv=False), W.shape)["mp_rank"] == 5
    N = rng.normal(size=(300, 150))
    assert spectrum_stats(np.linalg.svd(N, compute_uv=False), N.shape)["mp_rank"] <= 1


def test_rank_pattern_keys_match_exactly_one_module_and_validate_passes():
    net = Nested()
    names = [n for n, _ in net.named_modules() if n]
    for n in ("0", "block.0"):
        assert [k for k in names if re.match(rf"(.*\.)?({pattern_key(n)})$", k)] == [n]  # PEFT's matcher
    plan = RankPlan(ranks={"block.0": 2, "0": 3}, shapes={"block.0": (6, 6), "0": (4, 6)})
    cfg = plan.lora_config_dict(module_names=[n for n, _ in net.named_modules()])
    assert isinstance(cfg["target_modules"], str)  # "0" is a suffix of "block.0": a list would be ambiguous
    pm = peft.get_peft_model(net, plan.to_lora_config(net))
    rep = plan.validate(pm)
    assert rep["n_params"] == 2 * 12 + 3 * 10 == plan.n_params


def test_validate_catches_a_model_built_from_other_ranks():
    net = mlp()
    plan = RankPlan(ranks={"0": 2, "2": 4, "4": 0}, shapes={"0": (32, 12), "2": (24, 32), "4": (5, 24)})
    wrong = peft.LoraConfig(r=4, target_modules=["0", "2", "4"])  # uniform r=4, and "4" gets an adapter
    with pytest.raises(LowdimError, match=r"'0': planned r=2, built r=4"):
        plan.validate(peft.get_peft_model(net, wrong))


def test_plan_rank_zero_modules_left_out_and_params_budget_respected():
    net = mlp()
    prof = profile(net, [torch.randn(400, 12)], what=("weights", "inputs"))
    plan = allocate(prof, budget=700, signal="input_variance")
    assert plan.n_params <= 700 and plan.n_params > 700 - max(ms.m + ms.n for ms in prof.modules)
    cfg = plan.lora_config_dict(module_names=[n for n, _ in net.named_modules()])
    assert set(cfg["target_modules"]) == {n for n, r in plan.ranks.items() if r > 0}
    pm = peft.get_peft_model(net, plan.to_lora_config(net))
    assert plan.validate(pm)["n_params"] == plan.n_params
    p2 = allocate(prof, budget="20%", signal="weight_energy", rule="proportional", r_min=1, r_max=6)
    assert p2.n_params <= 0.2 * prof.n_params_model and all(1 <= r <= 6 for r in p2.ranks.values())


def test_water_filling_in_rank_mode_is_the_global_top_k_of_gains(rng):
    mods, gains = [], []
    for i in range(4):
        s = np.sort(rng.uniform(size=10))[::-1]
        mods.append(ModuleSpectrum(f"m{i}", "Linear", 10, 10, weight={"singular_values": s.tolist()}))
        gains += [(g, i) for g in s ** 2 / np.sum(s ** 2)]
    plan = allocate(SpectralProfile(mods), budget=13, budget_mode="rank", signal="weight_energy")
    top = sorted(gains, reverse=True)[:13]
    assert [plan.ranks[f"m{i}"] for i in range(4)] == [sum(1 for _, j in top if j == i) for i in range(4)]


def test_planted_update_ranks_are_recovered_by_the_threshold_plan():
    base = mlp(0, (40, 48, 40, 10)).double()
    teacher = mlp(0, (40, 48, 40, 10)).double()
    planted = {"0": 3, "2": 1, "4": 5}
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, r in planted.items():
            W = teacher.get_submodule(name).weight
            W += 0.5 * torch.randn(W.shape[0], r, generator=g) @ torch.randn(r, W.shape[1], generator=g) / r
        for p in teacher.parameters():  # plus small unstructured "fine-tuning noise" everywhere
            p += 1e-3 * torch.randn(p.shape, generator=g, dtype=p.dtype)
    prof = profile(teacher, what=("weights", "updates"), reference=base)
    plan = allocate(prof, signal="update_mp", rule="threshold")
    assert plan.ranks == planted


def test_error_paths_no_targets_budget_too_small_missing_peft(monkeypatch):
    with pytest.raises(LowdimError, match="matches no Linear/Conv"):
        find_targets(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Embedding(5, 3)))
    prof = profile(mlp(), what=("weights",))
    with pytest.raises(LowdimError, match="too small for rank 1 in any module"):
        allocate(prof, budget=20, signal="weight_energy")
    with pytest.raises(LowdimError, match="water-filling' needs a curve"):
        allocate(prof, budget=500, signal="weight_mp")
    with pytest.raises(LowdimError, match="needs 'inputs' measurements"):
        allocate(prof, budget=500, signal="input_variance")
    plan = allocate(prof, budget=500, signal="weight_energy")
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(LowdimError, match=r'pip install "lowdim\[lowrank\]"'):
        plan.to_lora_config()


def test_sora_proximal_step_gives_exact_zeros_and_export_reproduces_outputs():
    from lowdim.lowrank.sora import (
        GateOptimizer,
        apply_sora,
        export_lora,
        gate_parameters,
        sora_ranks,
    )

    torch.manual_seed(0)
    net = mlp()
    X = torch.randn(256, 12)
    y = (2 * X[:, :5]).argmax(1)
    apply_sora(net, r=6)
    with torch.no_grad():  # gates from 0.02 to 1.5: the L1 step (0.01 per step) must zero the small ones
        for g in gate_parameters(net):
            g.copy_(torch.linspace(0.02, 1.5, 6))
    opt = torch.optim.Adam([p for n, p in net.named_parameters() if "lora_" in n], lr=1e-2)
    gopt = GateOptimizer(gate_parameters(net), lr=1e-2, lam=1.0)
    for _ in range(60):
        opt.zero_grad()
        gopt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
        gopt.step()
    ranks = sora_ranks(net)
    gates = torch.cat([g.detach() for g in gate_parameters(net)])
    assert (gates == 0).any() and (gates != 0).any()  # exact zeros, not small numbers
    assert sum(ranks.values()) == int((gates != 0).sum())
    pm, plan = export_lora(net)
    assert plan.ranks == ranks
    Xt = torch.randn(64, 12)
    with torch.no_grad():  # float32: equal to rounding, relative to the outputs' size
        ref = net(Xt)
        assert float((pm(Xt) - ref).abs().max() / ref.abs().max()) < 1e-6
        pm64, _ = export_lora(net.double())
        assert float((pm64(Xt.double()) - net(Xt.double())).abs().max()) < 1e-12


def test_maestro_linear_autoencoder_recovers_pca_and_factorisation_singular_values():
    from scipy.linalg import subspace_angles

    from lowdim.lowrank.maestro import MaestroLinear, nested_loss

    rng = np.random.default_rng(0)
    d, R = 8, 3
    X = (rng.normal(size=(1000, d)) * np.sqrt(2.0 * 0.6 ** np.arange(d))) @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    X -= X.mean(0)
    Xt = torch.tensor(X, dtype=torch.float32)
    torch.manual_seed(0)
    ae = MaestroLinear(d, d, R, bias=False)
    opt = torch.optim.SGD(ae.parameters(), lr=0.25)  # 400 steps: < 0.5° for init seeds 0-4 (0.1: one seed 26°)
    for _ in range(400):
        opt.zero_grad()
        nested_loss(ae, Xt, Xt).backward()
        opt.step()
    pcs = np.linalg.svd(X, full_matrices=False)[2].T
    U = ae.U.detach().double().numpy()
    angles = [np.degrees(subspace_angles(U[:, :j], pcs[:, :j]).max()) for j in range(1, R + 1)]
    assert max(angles) < 3.0, angles
    # factorisation y = W* x with whitened x: importances ‖u_i‖‖v_i‖ are the singular values of W*
    Wstar = np.diag([3.0, 2.0, 1.0]) @ np.linalg.qr(rng.normal(size=(d, 3)))[0].T
    Z = torch.tensor(np.linalg.qr(rng.normal(size=(600, d)))[0] * np.sqrt(600), dtype=torch.float32)
    Y = Z @ torch.tensor(Wstar.T, dtype=torch.float32)
    fac = MaestroLinear(d, 3, 3, bias=False)
    opt = torch.optim.SGD(fac.parameters(), lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        nested_loss(fac, Z, Y).backward()
        opt.step()
    np.testing.assert_allclose(fac.importance().numpy(), [3.0, 2.0, 1.0], rtol=0.02)


def test_maestro_from_linear_is_exact_and_shrinks():
    from lowdim.lowrank.maestro import apply_maestro, fit_maestro, maestro_ranks

    net = mlp()
    X, y = torch.randn(128, 12), torch.randint(0, 5, (128,))
    before = net(X).detach()
    apply_maestro(net, init="svd")
    with torch.no_grad():
        assert float((net(X) - before).abs().max()) < 1e-5
    res = fit_maestro(net, [(X, y)] * 5, lr=0.01, lam=1e-3, shrink_every=5, eps=0.2)
    assert res["steps"] == 5 and maestro_ranks(net).keys() == {"0", "2", "4"}
    assert all(1 <= r <= 24 for r in maestro_ranks(net).values())


def test_svfit_trains_only_singular_values():
    from lowdim.lowrank.svfit import apply_svfit, ranks_from_profile

    net = mlp()
    prof = profile(net, what=("weights",))
    ranks = ranks_from_profile(prof)
    apply_svfit(net, ranks)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == sum(ranks.values())


def test_galore_groups_from_plan_and_gradient_callback():
    from lowdim.lowrank.galore import GradientSpectrumCallback, galore_optimizer

    net = mlp()
    plan = RankPlan(ranks={"0": 4, "2": 2, "4": 0}, shapes={"0": (32, 12), "2": (24, 32), "4": (5, 24)})
    opt = galore_optimizer(plan.galore_param_groups(net, update_proj_gap=5), lr=1e-2)
    cb = GradientSpectrumCallback(rank=2, every=1)
    X, y = torch.randn(64, 12), torch.randint(0, 5, (64,))
    for step in range(6):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        cb(net, step)
        opt.step()
    assert tuple(opt.state[net[0].weight]["exp_avg"].shape) == (32, 4)  # projected on the smaller side
    assert tuple(opt.state[net[4].weight]["exp_avg"].shape) == (5, 24)  # rank 0: plain Adam
    rec = cb.recommend()
    assert rec["rank"] >= 1 and set(rec["drift_curve"]) == {1, 2, 3, 4, 5}
    prof = profile(net, what=("weights",)).add_gradients(cb)
    assert allocate(prof, budget=6, budget_mode="rank", signal="grad_energy").total_rank == 6


def test_adalora_callback_prunes_every_step():
    from lowdim.lowrank.callbacks import AdaLoRACallback

    net = mlp()
    plan = RankPlan(ranks={"0": 2, "2": 2, "4": 0}, shapes={"0": (32, 12), "2": (24, 32), "4": (5, 24)})
    pm = peft.get_peft_model(net, plan.to_adalora_config(total_step=30, tinit=5, tfinal=5, deltaT=2, init_r=4))
    opt = torch.optim.Adam([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
    cb = AdaLoRACallback()
    X, y = torch.randn(64, 12), torch.randint(0, 5, (64,))
    for step in range(30):
        torch.nn.functional.cross_entropy(pm(X), y).backward()
        opt.step()
        cb(pm, step)
        opt.zero_grad()
    learned = cb.plan(pm)
    assert cb.calls == 30 and learned.total_rank == 2 * 2  # target_r=2 per module on average
    assert set(learned.ranks) == {"0", "2"}


def test_package_is_lazy_and_every_export_resolves():
    import subprocess

    code = "import sys, lowdim, lowdim.lowrank; print('torch' in sys.modules, 'peft' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == \
        ["False", "False"]
    import lowdim.lowrank as lr

    for name in lr.__all__:
        assert getattr(lr, name) is not None
