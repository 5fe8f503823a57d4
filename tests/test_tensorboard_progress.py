"""TensorBoard logs of every fit inside a run's fit context, and progress shown as plain log
lines when stderr is not a terminal (the bar itself is tqdm's)."""

import logging

import keras
import numpy as np
import pytest

from keras_clust.progress import Progress, stage
from keras_clust.training import fit_context, fit_model


def _scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    if tag in tags.get("tensors", []):
        import tensorflow as tf

        return [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
    return [e.value for e in acc.Scalars(tag)] if tag in tags.get("scalars", []) else []


def test_every_fit_in_a_context_logs_its_epochs_for_tensorboard(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    with fit_context(tensorboard=tmp_path / "tb"):
        for name, epochs in (("first", 3), ("second", 2)):
            inp = keras.Input((4,))
            model = keras.Model(inp, keras.layers.Dense(1)(inp), name=name)
            model.compile(optimizer="adam", loss="mse")
            fit = fit_model(model, x, y, (x, y), epochs=epochs, batch_size=16, verbose=0)
            train = _scalars(tmp_path / "tb" / f"{'01' if name == 'first' else '02'}-{name}" / "train", "epoch_loss")
            assert train == pytest.approx(fit.history["loss"], rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["01-first", "02-second"]
    assert (tmp_path / "tb" / "01-first" / "validation").is_dir()
    # outside a context nothing is logged
    fit_model(model, x, y, None, epochs=1, batch_size=16, verbose=0)
    assert len(list((tmp_path / "tb").iterdir())) == 2


def test_progress_is_plain_lines_off_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="keras_clust.progress")
    with Progress(4, "sweeps", initial=1, every=1e9) as p:
        p.update()
        p.update(force=True)
        p.set_to(4)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("sweeps: 3/4") and lines[1].startswith("sweeps: 4/4")
    caplog.clear()
    with stage("UMAP of 10 codes"):
        pass
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["UMAP of 10 codes ...", "UMAP of 10 codes"]
    assert "done in" in caplog.records[1].getMessage()
