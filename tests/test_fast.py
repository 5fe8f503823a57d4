"""Training for speed: the slice-based crop computes what ``Cropping2D`` does, several batches
per call train exactly as one, and ``run --fast`` turns op determinism off and records it."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import cli
from keras_clust.layers import Crop2D
from keras_clust.models.conv_ae import build_conv_autoencoder
from keras_clust.training import fit_context, fit_model

CROPS = [((1, 0), (1, 0)), ((2, 1), (0, 3)), ((0, 0), (0, 0))]


@pytest.mark.parametrize("cropping", CROPS)
def test_crop_equals_keras_cropping_with_its_gradient(cropping):
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 15, 13, 2)).astype("float32"))
    ours, theirs = Crop2D(cropping), keras.layers.Cropping2D(cropping)
    shape = theirs.compute_output_shape((3, 15, 13, 2))
    w = tf.constant(np.random.default_rng(1).normal(size=shape).astype("float32"))  # a gradient for every kept cell
    outs, grads = [], []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        outs.append(y.numpy())
        grads.append(tape.gradient(loss, x).numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])
    assert ours.compute_output_shape((None, 15, 13, 2)) == theirs.compute_output_shape((None, 15, 13, 2))


def test_crop_config_round_trip_and_refusals(tmp_path):
    inputs = keras.Input((7, 7, 1))
    model = keras.Model(inputs, Crop2D(((1, 2), (3, 0)), name="crop")(inputs))
    model.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras")
    assert back.get_layer("crop").cropping == ((1, 2), (3, 0))
    assert back.output_shape == (None, 4, 4, 1)
    with pytest.raises(ValueError, match="leaves nothing"):
        Crop2D(((4, 3), (0, 0)))(keras.Input((7, 7, 1)))
    with pytest.raises(ValueError, match=">= 0"):
        Crop2D(((-1, 0), (0, 0)))


def test_cae_uses_the_slice_crop_and_keeps_the_reports_shapes():
    ae = build_conv_autoencoder(4, 6)
    crops = [layer for layer in ae.decoder.layers if "crop" in layer.name]
    assert [type(layer) for layer in crops] == [Crop2D, Crop2D]
    assert ae.autoencoder.output_shape == (None, 28, 28, 1)


def _fit(steps: int, seed: int = 3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(4, name="h")(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5)).astype("float32")
    y = x @ rng.normal(size=(5, 1)).astype("float32")
    calls = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: calls.append(batch))
    with fit_context(steps_per_execution=steps):
        fit = fit_model(model, x, y, None, epochs=3, batch_size=10, callbacks=[counter], verbose=0)
    return model, fit, calls


def test_steps_per_execution_trains_the_same_in_fewer_calls():
    one, fit_one, calls_one = _fit(1)
    four, fit_four, calls_four = _fit(4)
    assert four.steps_per_execution == 4 and one.steps_per_execution == 1
    assert len(calls_one) == 3 * 10 and len(calls_four) == 3 * 3  # 10 batches an epoch: 4 + 4 + 2
    for a, b in zip(one.get_weights(), four.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert fit_four.history["loss"] == pytest.approx(fit_one.history["loss"], rel=1e-6)


def test_steps_per_execution_leaves_a_model_that_already_ran_or_chose_its_own():
    model, _, _ = _fit(1)
    with fit_context(steps_per_execution=8):
        fit_model(model, np.zeros((20, 5), "float32"), np.zeros((20, 1), "float32"), None, epochs=1,
                  batch_size=10, verbose=0)  # fmt: skip
    assert model.steps_per_execution == 1  # its train function was made with 1
    inputs = keras.Input((5,))
    own = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    own.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    with fit_context(steps_per_execution=8):
        fit_model(own, np.zeros((20, 5), "float32"), np.zeros((20, 1), "float32"), None, epochs=1, batch_size=10,
                  verbose=0)  # fmt: skip
    assert own.steps_per_execution == 2


def test_run_fast_turns_determinism_off_and_says_so(tmp_path):
    res = cli("mnist-l1", "run", "--quick", "--latent-dims", "2", "--no-export", "--fast", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fast"] == {"op_determinism": False, "steps_per_execution": 32}
    assert "`--fast`: op determinism off, XLA, 32 batches per call" in (run / "report.md").read_text()
    import csv

    with open(run / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f) if row.get("loss")]
    assert losses and np.all(np.isfinite(losses))
