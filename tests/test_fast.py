"""Training for speed: the slice-based crop computes what ``Cropping2D`` does, a fast fit context
trains as a plain one with several batches per call (and XLA where op determinism is off), and
``run --fast`` compiles every fit with XLA and records it (tests/test_resume.py: a resume keeps it)."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import cli
from keras_clust.layers import Crop2D
from keras_clust.models.conv_ae import build_conv_autoencoder
from keras_clust.seeding import op_determinism
from keras_clust.training import (
    FAST_STEPS_PER_EXECUTION,
    _compile_for_speed,
    _xla_slower,
    fit_context,
    fit_model,
)

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


def _fit(fast: bool, seed: int = 3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(4, name="h")(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype("float32")
    y = x @ rng.normal(size=(5, 1)).astype("float32")
    calls = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: calls.append(batch))
    with fit_context(fast=fast) as context:
        fit = fit_model(model, x, y, None, epochs=3, batch_size=10, callbacks=[counter], verbose=0)
    return model, fit, calls, context


def test_a_fast_fit_trains_as_a_plain_one_in_fewer_calls():
    plain, fit_plain, calls_plain, context = _fit(False)
    fast, fit_fast, calls_fast, fast_context = _fit(True)
    assert FAST_STEPS_PER_EXECUTION == 32 and fast.steps_per_execution == 32 and plain.steps_per_execution == 1
    assert len(calls_plain) == 3 * 40 and len(calls_fast) == 3 * 2  # 40 batches an epoch: 32 + 8
    assert fast.jit_compile is (not op_determinism())  # XLA only where op determinism is off
    assert context.fits == [] and fast_context.fits == [
        {"model": fast.name, "jit_compile": fast.jit_compile, "steps_per_execution": 32}
    ]
    for a, b in zip(plain.get_weights(), fast.get_weights(), strict=True):  # XLA may round differently
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert fit_fast.history["loss"] == pytest.approx(fit_plain.history["loss"], rel=1e-4)


def test_a_fast_context_leaves_a_model_that_already_ran_or_chose_its_own():
    model, _, _, _ = _fit(False)
    xla = model.jit_compile
    with fit_context(fast=True) as context:
        fit_model(
            model, np.zeros((20, 5), "float32"), np.zeros((20, 1), "float32"), None, epochs=1, batch_size=10, verbose=0
        )
    assert model.steps_per_execution == 1 and model.jit_compile == xla  # its train function was made before
    assert context.fits == [{"model": model.name, "jit_compile": xla, "steps_per_execution": 1}]
    inputs = keras.Input((5,))
    own = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    own.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    with fit_context(fast=True):
        fit_model(
            own, np.zeros((20, 5), "float32"), np.zeros((20, 1), "float32"), None, epochs=1, batch_size=10, verbose=0
        )
    assert own.steps_per_execution == 2


@pytest.fixture
def without_op_determinism():
    """Op determinism off for one test, as in a ``--fast`` process (Keras and the library keep XLA
    off while it is on, and an earlier test in this process may have turned it on); then as before."""
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    yield
    if was:
        tf_config.enable_op_determinism()


def test_a_fast_fit_keeps_xla_off_for_3d_convolutions_on_a_cpu(without_op_determinism):
    assert not tf.config.list_physical_devices("GPU") and not op_determinism()  # what a --fast run here has
    inner = keras.Sequential([keras.Input((4, 4, 4, 1)), keras.layers.Conv3DTranspose(2, 3, padding="same")])
    inputs = keras.Input((4, 4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling3D()(inner(inputs))))
    model.compile(optimizer="sgd", loss="mse")
    flat = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    conv2d = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    assert _xla_slower(model) and not _xla_slower(flat) and not _xla_slower(conv2d)  # nested models looked into
    with fit_context(fast=True) as context:
        fit_model(model, np.zeros((8, 4, 4, 4, 1), "float32"), np.zeros((8, 1), "float32"), None, 1, 4, verbose=0)
    assert context.fits == [{"model": model.name, "jit_compile": False, "steps_per_execution": 32}]
    flat.compile(optimizer="sgd", loss="mse")
    _compile_for_speed(flat, None)
    assert flat.jit_compile  # the same path gives XLA to a model without 3-D convolutions


# slow: 26 s: a whole quick run under --fast; XLA exactly where op determinism is off is checked on a fit
# in test_a_fast_fit_trains_as_a_plain_one_in_fewer_calls
@pytest.mark.slow
def test_run_fast_compiles_every_fit_with_xla(tmp_path):
    res = cli("mnist-l1", "run", "--quick", "--latent-dims", "2", "--no-export", "--fast", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    fast = json.loads((run / "metrics.json").read_text())["fast"]
    assert fast["op_determinism"] is False and len(fast["fits"]) == 1  # --latent-dims 2: one autoencoder
    assert all(f["jit_compile"] and f["steps_per_execution"] == 32 for f in fast["fits"]), fast
    n = len(fast["fits"])
    assert f"op determinism off (not bitwise reproducible), XLA in {n} of {n} fits" in (run / "report.md").read_text()
    assert json.loads((run / "config.json").read_text())["fast"] is True
    with open(run / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f) if row.get("loss")]
    assert losses and np.all(np.isfinite(losses))


def test_a_fast_fit_under_a_distribution_strategy_keeps_xla_off():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        inputs = keras.Input((5,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse")
        with fit_context(fast=True, strategy=strategy) as context:
            fit_model(
                model,
                np.zeros((40, 5), "float32"),
                np.zeros((40, 1), "float32"),
                None,
                epochs=1,
                batch_size=10,
                verbose=0,
            )
    assert context.fits == [{"model": model.name, "jit_compile": False, "steps_per_execution": 32}]
