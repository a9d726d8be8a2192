"""Known-answer tests for LR²VQ / PQ weight quantisation (issue 15 E)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.lowrank.lr2vq import LRRLinear, VQLinear, quantize, storage, subvectors, to_lrr  # noqa: E402


def _net_with_weight(W):
    net = torch.nn.Sequential(torch.nn.Linear(W.shape[1], W.shape[0]))
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(W, dtype=torch.float32))
    return net


def test_subvectors_layout_and_bad_m():
    W = np.arange(24.0).reshape(3, 8)
    S = subvectors(W, 4)
    assert S.shape == (6, 4) and S[1].tolist() == [4, 5, 6, 7] and S[2].tolist() == [8, 9, 10, 11]
    with pytest.raises(LowdimError, match="m=3"):
        subvectors(W, 3)


def test_lrr_full_rank_reproduces_and_planted_rank_is_found():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(64, 32))
    net = _net_with_weight(W)
    x = torch.randn(5, 32)
    before = net(x)
    to_lrr(net, m=8, d_tilde=8, min_subvectors=1)
    assert isinstance(net[0], LRRLinear) and torch.allclose(net(x), before, atol=1e-4)
    # subvectors on a planted 2-D plane of R^8: the ID picks d̃ ≈ 2 and the LRR is exact
    Z = rng.normal(size=(64 * 4, 2))
    W2 = (Z @ rng.normal(size=(2, 8)) + 0.3).reshape(64, 32)
    net2 = _net_with_weight(W2)
    rep = to_lrr(net2, m=8, d_tilde="id", min_subvectors=1, method="twonn")
    assert rep[0]["d_tilde"] in (2, 3) and rep[0]["relative_lowrank_error"] < 1e-8
    with pytest.raises(LowdimError, match="d_tilde"):
        to_lrr(_net_with_weight(W), m=8, d_tilde=9, min_subvectors=1)


@pytest.mark.parametrize("lrr", [False, True])
def test_quantize_exact_when_k_covers_the_distinct_subvectors(lrr):
    rng = np.random.default_rng(1)
    words = rng.normal(size=(8, 4))
    W = words[rng.integers(0, 8, size=48 * 4)].reshape(48, 16)   # only 8 distinct subvectors
    net = _net_with_weight(W)
    x = torch.randn(3, 16)
    before = net(x).detach()
    if lrr:
        to_lrr(net, m=4, d_tilde=4, min_subvectors=1)
    rep = quantize(net, m=4, k=8, min_subvectors=1)
    assert isinstance(net[0], VQLinear) and rep[0]["kind"] == ("lr2vq" if lrr else "pq")
    assert rep[0]["relative_cluster_error"] < 1e-10
    assert torch.allclose(net(x), before, atol=1e-4)
    codes = net[0].codes.clone()
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(x).pow(2).sum().backward()
    opt.step()
    assert torch.equal(net[0].codes, codes) and net[0].codebook.grad is not None
    assert (net[0].P is not None) == lrr and "codes" not in dict(net.named_parameters())


def test_storage_counts_every_byte_and_rounds():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    to_lrr(net, m=8, d_tilde=3, min_subvectors=64)
    with pytest.raises(LowdimError, match="quantize"):
        storage(net)
    quantize(net, m=8, k=16, min_subvectors=64)
    s = storage(net)
    n_sub = 64 * 32 // 8
    expected = (n_sub * 4 // 8          # 4-bit packed codes
                + 16 * 3 * 2            # codebook k × d̃ in float16
                + 3 * 8 * 2 + 8 * 2     # projection d̃ × m and mean m
                + 64 * 2                # bias
                + (64 * 4 + 4) * 2)     # dense head
    assert s["bytes"] == expected and s["weights"] == 64 * 32 + 64 * 4
    cb = net[0].codebook.detach()
    assert torch.equal(cb, cb.half().float())                     # the model is what is stored
