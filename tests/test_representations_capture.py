"""Activation capture: hooks, pooling, bounded memory, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.representations.capture import capture_activations, match_layers  # noqa: E402
from lowdim.representations.layers import measure_layer  # noqa: E402


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))


class Tokens(torch.nn.Module):
    """(batch, tokens) ids -> (batch, tokens, 4) embeddings: token t of sample b is [b, t, 1, 1]·id."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 4)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.emb(input_ids)


def test_hooks_by_name_and_glob_give_the_layer_outputs():
    net = _net()
    X = torch.randn(40, 6)
    acts = capture_activations(net, [X[:15], X[15:]], layers=["0", "2"])
    assert acts.names == ["0", "2"]
    with torch.no_grad():
        np.testing.assert_allclose(acts["0"], net[0](X).numpy(), rtol=1e-6)
        np.testing.assert_allclose(acts["2"], net(X).numpy(), rtol=1e-6)
    assert match_layers(net, "*") == ["0", "1", "2"]
    assert match_layers(net, ["[02]"]) == ["0", "2"]
    nested = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), torch.nn.Linear(2, 1))
    assert match_layers(nested, "*") == ["0", "1"]  # '*' stays within one dotted level
    assert match_layers(nested, "0.*") == ["0.0", "0.1"]
    assert match_layers(nested, "**") == ["0", "0.0", "0.1", "1"]


def test_token_mean_cls_pooling_respect_the_attention_mask():
    m = Tokens()
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    batch = {"input_ids": ids, "attention_mask": mask}
    E = m.emb.weight.detach().numpy()
    tok = capture_activations(m, [batch], layers="emb", pool="token")["emb"]
    np.testing.assert_allclose(tok, E[[1, 2, 3, 4, 5]], rtol=1e-6)  # padding dropped
    mean = capture_activations(m, [batch], layers="emb", pool="mean")["emb"]
    np.testing.assert_allclose(mean, [E[[1, 2, 3]].mean(0), E[[4, 5]].mean(0)], rtol=1e-5)
    cls = capture_activations(m, [batch], layers="emb", pool="cls")["emb"]
    np.testing.assert_allclose(cls, E[[1, 4]], rtol=1e-6)
    labelled = capture_activations(m, [{**batch, "labels": torch.tensor([7, 9])}], layers="emb", pool="token")
    np.testing.assert_array_equal(labelled.labels, [7, 7, 7, 9, 9])  # one label per real token
    no_mask = capture_activations(m, [(ids, torch.tensor([7, 9]))], layers="emb", pool="token")
    assert no_mask["emb"].shape == (8, 4)
    np.testing.assert_array_equal(no_mask.labels, [7] * 4 + [9] * 4)


def test_subsample_is_seeded_and_independent_of_batch_size():
    net = _net()
    X = torch.randn(300, 6)
    y = torch.arange(300)
    a = capture_activations(net, [(X[i:i + 10], y[i:i + 10]) for i in range(0, 300, 10)], layers="2", max_samples=50)
    b = capture_activations(net, [(X[i:i + 37], y[i:i + 37]) for i in range(0, 300, 37)], layers="2", max_samples=50)
    assert a["2"].shape == (50, 3)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a["2"], b["2"])
    with torch.no_grad():  # labels stay aligned with their rows
        np.testing.assert_allclose(a["2"], net(X[a.labels]).numpy(), rtol=1e-5)


def test_streaming_to_shards_above_the_memory_limit(tmp_path):
    net = _net()
    X = torch.randn(2000, 6)
    batches = [X[i:i + 100] for i in range(0, 2000, 100)]
    mem = capture_activations(net, batches, layers="0")
    streamed = capture_activations(net, batches, layers="0", memory_limit_mb=0.01, work_dir=tmp_path / "w")
    assert streamed.streamed and len(list((tmp_path / "w" / "0").glob("part-*.npy"))) > 1
    np.testing.assert_allclose(streamed["0"], mem["0"])
    assert streamed.n_rows("0") == 2000
    rep = measure_layer(streamed.source("0"), name="0", dse=False)  # a shard folder is accepted
    assert rep.n_samples == 2000 and 5.5 < rep.dimension < 6.5  # a linear map of 6-D Gaussian input
    y = np.arange(2000) % 2
    part = measure_layer(streamed.source("0"), name="0", max_samples=500, labels=y, dse=False)
    assert part.n_samples == 500 and any("read from shards" in n for n in part.notes)
    assert part.label_sharpness is not None
    auto = capture_activations(net, batches, layers="0", memory_limit_mb=0.01)
    folder = auto.work_dir
    assert folder is not None and folder.exists()
    auto.cleanup()
    assert not folder.exists()


def test_pattern_that_matches_nothing_lists_the_names():
    with pytest.raises(LowdimError, match=r"matches no module.*available names: 0, 1, 2"):
        capture_activations(_net(), [torch.randn(4, 6)], layers="encoder.*")


def test_empty_loader():
    with pytest.raises(LowdimError, match="loader is empty"):
        capture_activations(_net(), [], layers="0")


def test_model_failing_on_a_batch_reports_the_shape():
    with pytest.raises(LowdimError, match=r"failed on batch 0 with input shape \(4, 5\)"):
        capture_activations(_net(), [torch.randn(4, 5)], layers="0")


def test_nan_activations_name_the_layer():
    net = _net()
    with torch.no_grad():
        net[2].bias[0] = float("nan")
    with pytest.raises(LowdimError, match="layer '2' produced .* non-finite"):
        capture_activations(net, [torch.randn(8, 6)], layers=["0", "2"])
    bad = np.random.default_rng(0).normal(size=(100, 5))
    bad[3, 1] = np.inf
    with pytest.raises(LowdimError, match="layer 'block3' has 1 non-finite"):
        measure_layer(bad, name="block3")


def test_label_count_must_match_the_samples():
    X = np.random.default_rng(0).normal(size=(100, 5))
    with pytest.raises(LowdimError, match="labels have 99 entries but layer 'fc' has 100 samples"):
        measure_layer(X, name="fc", labels=np.zeros(99))
    with pytest.raises(LowdimError, match="labels has 3 entries but the batch has 4 samples"):
        capture_activations(_net(), [(torch.randn(4, 6), torch.zeros(3))], layers="0")


def test_mean_pooling_of_a_conv1d_averages_positions_not_channels():
    conv = torch.nn.Conv1d(2, 5, kernel_size=1, bias=False)
    model = torch.nn.Sequential(conv)
    x = torch.randn(8, 2, 6)
    acts = capture_activations(model, [x], layers=["0"], pool="mean")
    want = conv(x).detach().mean(2).numpy()  # one value per channel
    got = acts["0"]
    assert got.shape == (8, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
