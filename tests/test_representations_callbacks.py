"""Recording layer measurements over training: plain loop and Hugging Face Trainer."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowdim.errors import LowdimError  # noqa: E402
from lowdim.representations.callbacks import RepresentationCallback  # noqa: E402


def test_plain_loop_records_every_n_steps_and_saves(tmp_path):
    torch.manual_seed(0)
    X = torch.randn(300, 4)
    y = (X[:, 0] > 0).long()
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    cb = RepresentationCallback([(X, y)], layers=["1"], every=5, dse=False, path=tmp_path / "h.json")
    for step in range(11):
        loss = torch.nn.functional.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        cb(net, step)
    steps, vals = cb.series("1")
    assert steps == [0, 5, 10] and all(np.isfinite(vals))
    assert all(r.label_sharpness is not None for r in cb.history)
    saved = json.loads((tmp_path / "h.json").read_text())["history"]
    assert [h["step"] for h in saved] == [0, 5, 10]
    with pytest.raises(LowdimError, match="no recordings of layer 'fc'"):
        cb.series("fc")
    from lowdim.report.layer_plots import plot_over_training

    plot_over_training(cb.history, tmp_path / "t.png", extra={"loss": [(0, 1.0), (10, 0.5)]})
    assert (tmp_path / "t.png").stat().st_size > 0


def test_hf_trainer_callback(tmp_path):
    transformers = pytest.importorskip("transformers")
    from lowdim.representations.callbacks import HFRepresentationCallback

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 64, (64, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[:, 9:] = 0
    labels = torch.randint(0, 2, (64,), generator=g)
    train = [{"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]} for i in range(64)]
    probe = [{"input_ids": ids, "attention_mask": mask, "labels": labels}]
    cb = HFRepresentationCallback(probe, every=2, layers="bert.encoder.layer.*", dse=False, n_neighbors=10)
    assert isinstance(cb, transformers.TrainerCallback)
    if importlib.util.find_spec("accelerate") is not None:  # the real Trainer needs accelerate
        args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=16,
                                              save_strategy="no", report_to=[], use_cpu=True,
                                              logging_strategy="no")
        transformers.Trainer(model=model, args=args, train_dataset=train, callbacks=[cb]).train()
    else:  # drive it through the Trainer's own event dispatcher, as Trainer.train does
        from transformers.trainer_callback import CallbackHandler, TrainerControl, TrainerState

        handler = CallbackHandler([cb], model, None, None, None)
        state, control = TrainerState(), TrainerControl()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for step in range(4):
            batch = {k: torch.stack([t[k] for t in train[16 * step:16 * step + 16]]) for k in train[0]}
            model.train()
            model(**batch).loss.backward()
            opt.step()
            opt.zero_grad()
            state.global_step = step + 1
            handler.on_step_end(None, state, control)
    assert sorted({r.step for r in cb.history}) == [2, 4]
    assert sorted({r.name for r in cb.history}) == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    assert all(r.n_samples == 64 and r.dsmi is None and r.label_sharpness is not None for r in cb.history)
