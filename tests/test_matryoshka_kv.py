"""MatryoshkaKV (lowdim.nested.matryoshka_kv) on a tiny random-init BERT: known answers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lowdim import LowdimError  # noqa: E402
from lowdim.nested.matryoshka_kv import KVProjector, greedy_ranks  # noqa: E402


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    return transformers.BertModel(cfg).eval()


def _batches(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, 50, (4, 12), generator=g)
        mask = torch.ones(4, 12, dtype=torch.long)
        mask[0, 9:] = 0
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def test_full_rank_reproduces_the_model_exactly():
    model, batches = _model(), _batches()
    with torch.no_grad():
        ref = [model(**b).last_hidden_state for b in batches]
    kv = KVProjector(model, batches)
    assert kv.shape == (2, 2, 2) and kv.cache_fraction() == 1.0
    with torch.no_grad():
        assert all(torch.equal(model(**b).last_hidden_state, r) for b, r in zip(batches, ref))
        for row in kv.projections:  # the projection itself at full rank is the identity (U orthogonal)
            for p in row:
                p.force = True
        assert max(float((model(**b).last_hidden_state - r).abs().max()) for b, r in zip(batches, ref)) < 1e-5
    assert kv.orthogonality_error() < 1e-5
    kv.detach()
    assert isinstance(model.encoder.layer[0].attention.self.key, torch.nn.Linear)


def test_pca_init_keeps_the_top_eigenvectors_of_the_calibration_keys():
    model, batches = _model(), _batches()
    keys = []
    h = model.encoder.layer[1].attention.self.key.register_forward_hook(lambda m, i, o: keys.append(o.detach()))
    with torch.no_grad():
        for b in batches:
            model(**b)
    h.remove()
    Y = torch.cat([k[b["attention_mask"].bool()] for k, b in zip(keys, batches)]).double().view(-1, 2, 16)
    kv = KVProjector(model, batches)
    for head in range(2):
        w = np.linalg.eigvalsh((Y[:, head].T @ Y[:, head]).numpy())[::-1]
        assert np.allclose(kv.eigenvalues_[1, 0, head], w, rtol=1e-6, atol=1e-8)
        U = kv.projections[1][0].U.detach().double()[head]
        for r in (1, 4, 9):  # reconstruction error at rank r = sum of the discarded eigenvalues
            Yr = Y[:, head] @ U[:, :r] @ U[:, :r].T
            assert float(((Y[:, head] - Yr) ** 2).sum()) == pytest.approx(w[r:].sum(), rel=1e-4)


def test_smaller_ranks_cost_more_and_distillation_helps():
    model, batches = _model(), _batches()
    kv = KVProjector(model, batches)
    errs = [kv.output_error(batches, r) for r in (16, 8, 4, 2)]
    assert errs[0] == 0.0 and errs[1] < errs[2] < errs[3]
    kv.set_ranks(4)
    assert kv.cache_fraction() == 0.25
    before = kv.output_error(batches, 4)
    losses = kv.distill(batches, steps=60, lr=1e-2, choices=[4], seed=0)
    after = kv.output_error(batches, 4)
    assert after < before and np.mean(losses[-5:]) < losses[0]
    assert kv.orthogonality_error() < 1e-5
    assert all(not p.requires_grad for p in model.parameters() if p not in set(kv.parameters()))


def test_greedy_ranks_known_answer_and_budget():
    # head a: error only at rank 8; head b: costly everywhere; head c: free
    E = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [9.0, 4.0, 0.0]])[[1, 2, 0]]
    r = greedy_ranks(E, [8, 16, 32], 0.6, 32)  # 57.6 of 96 coordinates: c to 8, then a to 16 (both free)
    assert r.tolist() == [16, 32, 8] and r.sum() <= 0.6 * 3 * 32
    # 48 coordinates: a's last step (0.1 / 8 per coordinate) is cheaper than b's (4 / 16)
    assert greedy_ranks(E, [8, 16, 32], 0.5, 32).tolist() == [8, 32, 8]
    assert greedy_ranks(E, [8, 16, 32], 1.0, 32).tolist() == [32, 32, 32]
    with pytest.raises(LowdimError, match="smallest cache"):
        greedy_ranks(E, [8, 16, 32], 0.1, 32)
    with pytest.raises(LowdimError, match="choices"):
        greedy_ranks(E, [16, 8, 32], 0.5, 32)


def test_sensitivity_table_and_errors():
    model, batches = _model(), _batches(1)
    kv = KVProjector(model, batches)
    E = kv.sensitivity(batches, [4, 16])
    assert E.shape == (2, 2, 2, 2) and (E[..., 1] == 0).all() and (E[..., 0] > 0).all()
    with pytest.raises(LowdimError, match="ranks"):
        kv.set_ranks(17)
    with pytest.raises(LowdimError, match="calibration"):
        KVProjector(_model(), [])
    with pytest.raises(LowdimError, match="self-attention"):
        KVProjector(torch.nn.Linear(3, 3), batches)


def test_reconstruction_table_is_the_eigenvalue_tail_at_pca_init():
    model, batches = _model(), _batches()
    kv = KVProjector(model, batches)
    E = kv.reconstruction_errors(batches, [2, 8, 16])
    w = kv.eigenvalues_
    for k, c in ((2, 0), (8, 1)):
        assert np.allclose(E[..., c], w[..., k:].sum(-1) / w.sum(-1), rtol=1e-4, atol=1e-9)
    assert np.allclose(E[..., 2], 0, atol=1e-9)
