import importlib.util
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_clust.training import fit_context, fit_model, without_autotuning


def _replay():
    path = Path(__file__).resolve().parents[1] / "bench" / "study_lj_patience.py"
    spec = importlib.util.spec_from_file_location("study_lj_patience", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.early_stopping


def _worsening_fit(patience: int, epochs: int = 30):
    """A linear model fitted to y and validated on -y: its validation loss only worsens."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    fit = fit_model(model, x, y, (x, -y), epochs=epochs, batch_size=16, patience=patience, verbose=0)
    return model, fit, x, y


def test_patience_keeps_the_best_epoch_and_says_which():
    model, fit, x, y = _worsening_fit(patience=3)
    val = fit.history["val_loss"]
    assert fit.epochs_run == 4 and np.all(np.diff(val) > 0)
    assert fit.kept_epoch == 1
    assert model.evaluate(x, -y, verbose=0) == pytest.approx(val[0], rel=1e-5)  # the first epoch's weights
    _, plain, _, _ = _worsening_fit(patience=0, epochs=4)
    assert plain.kept_epoch == plain.epochs_run == 4


def test_a_finished_backed_up_fit_restores_its_kept_epoch(tmp_path):
    with fit_context(backup=tmp_path):
        model, fit, x, y = _worsening_fit(patience=2)
    with fit_context(backup=tmp_path):  # the same run started again: the fit is restored, not redone
        again, restored, _, _ = _worsening_fit(patience=2)
    assert (restored.kept_epoch, restored.epochs_run) == (fit.kept_epoch, fit.epochs_run) == (1, 3)
    assert again.evaluate(x, -y, verbose=0) == pytest.approx(fit.history["val_loss"][0], rel=1e-5)


@pytest.mark.parametrize(
    "val",
    [
        [3.0, 2.0, 2.5, 1.0, 1.5, 1.6, 1.7, 0.5],  # a new best after a pause, then a stop
        [2.0, 2.0, 2.0, 2.0, 2.0],  # ties are no improvement
        [3.0, math.nan, 2.5, math.nan, math.nan, math.nan, 1.0],  # NaN is no improvement
        [5.0, 4.0, 3.0, 2.0],  # never stops
    ],
)
def test_the_patience_study_replays_keras_early_stopping(val):
    """``bench/study_lj_patience.py`` stops and keeps the same epochs as Keras' EarlyStopping fed
    the same validation losses."""
    patience = 3
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    es = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    es.set_model(model)
    model.stop_training = False
    es.on_train_begin()
    trained = len(val)
    for epoch, v in enumerate(val):
        es.on_epoch_end(epoch, {"val_loss": v})
        if model.stop_training:
            trained = epoch + 1
            break
    assert _replay()(val, patience) == (trained, es.best_epoch + 1)


class _Interrupt(Exception):
    pass


class _KillAt(keras.callbacks.Callback):
    """Raises at the end of one epoch, before that epoch is backed up: a kill mid-fit."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Interrupt


def _backed_up_line_fit(backup, callbacks=(), **options):
    """A one-weight linear fit, backed up in ``backup``, whose validation loss (against ``-y``) only
    worsens after its first epoch; ``options`` go to :func:`fit_model`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")], name="m")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    with fit_context(backup=backup):
        result = fit_model(model, x, y, (x, -y), batch_size=16, callbacks=callbacks, verbose=0, **options)
    return model, result


def test_a_resumed_fit_stops_and_keeps_the_epoch_an_uninterrupted_one_does(tmp_path):
    """Killed after its best epoch, a backed-up fit with early stopping resumes counting from
    the epochs before the kill and ends with the same epochs, kept epoch and weights as one
    never interrupted (not with the best of the epochs after the resume)."""

    def fit(backup, callbacks=()):
        return _backed_up_line_fit(backup, callbacks, epochs=30, patience=3)

    whole, ref = fit(tmp_path / "whole")
    assert (ref.epochs_run, ref.kept_epoch) == (4, 1)
    with pytest.raises(_Interrupt):
        fit(tmp_path / "killed", [_KillAt(2)])  # epochs 1 and 2 backed up, the best is the first
    resumed, res = fit(tmp_path / "killed")
    assert (res.epochs_run, res.kept_epoch) == (4, 1)
    assert res.history["val_loss"] == pytest.approx(ref.history["val_loss"])
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_resumed_fit_halves_its_learning_rate_at_the_epochs_an_uninterrupted_one_does(tmp_path):
    """With ``halve_lr_after``, a backed-up fit killed while counting epochs without a gain resumes
    that count: it halves its rate at the same epochs, and ends with the same history and weights,
    as one never interrupted (a fresh count would halve later)."""

    def fit(backup, callbacks=()):
        return _backed_up_line_fit(backup, callbacks, epochs=8, halve_lr_after=3)

    whole, ref = fit(tmp_path / "whole")
    # the validation loss only worsens after the first epoch: the rate halves after epochs 4 and 7
    assert ref.history["learning_rate"] == pytest.approx([0.05] * 4 + [0.025] * 3 + [0.0125])
    _, plain = fit(None)  # with no backup to replay, the same callback halves at the same epochs
    assert plain.history["learning_rate"] == pytest.approx(ref.history["learning_rate"])
    with pytest.raises(_Interrupt):
        fit(tmp_path / "killed", [_KillAt(2)])  # epochs 1 and 2 backed up, two without a gain counted
    resumed, res = fit(tmp_path / "killed")
    assert res.history["learning_rate"] == pytest.approx(ref.history["learning_rate"])
    assert res.history["val_loss"] == pytest.approx(ref.history["val_loss"])
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _shuffled_pipeline(n: int = 40):
    import tensorflow as tf

    ds = tf.data.Dataset.range(n).shuffle(n, seed=3, reshuffle_each_iteration=True).batch(8)
    return ds.map(lambda i: i * 2, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _epochs(ds, count: int = 2) -> list[list[int]]:
    return [[int(v) for batch in ds for v in batch.numpy()] for _ in range(count)]


def test_without_autotuning_turns_it_off_and_keeps_every_epochs_batches():
    keras.utils.set_random_seed(0)
    plain = _epochs(_shuffled_pipeline())
    keras.utils.set_random_seed(0)
    tuned = without_autotuning(_shuffled_pipeline())
    assert tuned.options().autotune.enabled is False
    assert _shuffled_pipeline().options().autotune.enabled is not False
    assert _epochs(tuned) == plain and plain[0] != plain[1]  # reshuffled, the same way
    x = np.zeros((3, 2), np.float32)
    assert without_autotuning(x) is x and without_autotuning(None) is None


def test_a_fit_on_a_dataset_ends_with_the_weights_kerass_own_fit_does():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)

    def run(fit):
        keras.utils.set_random_seed(0)
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(48, seed=5).batch(8).prefetch(tf.data.AUTOTUNE)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        fit(model, data)
        return model.get_weights()

    ours = run(lambda m, d: fit_model(m, d, None, d, epochs=3, batch_size=8, verbose=0))
    kerass = run(lambda m, d: m.fit(d, validation_data=d, epochs=3, verbose=0))
    for a, b in zip(ours, kerass, strict=True):
        np.testing.assert_array_equal(a, b)


def test_batches_per_call_leave_a_vaes_weights_as_they_are():
    """Several batches per call of the train function (``steps_per_execution``) train the same
    weights to the bit as one, the sampling layer's draws included; 5 batches leave a part call."""
    from keras_clust.models import build_dense_vae

    x = np.random.default_rng(2).normal(size=(40, 6)).astype(np.float32)

    def weights(steps: int):
        keras.utils.set_random_seed(0)
        vae = build_dense_vae(6, 2, (8,), seed=3, likelihood="gaussian", sigma=None)
        vae.vae.compile(optimizer=keras.optimizers.Adam(0.01), steps_per_execution=steps)
        fit_model(vae.vae, x, None, (x[:16], None), epochs=3, batch_size=8, verbose=0)
        return vae.vae.get_weights()

    one, four = weights(1), weights(4)
    for a, b in zip(one, four, strict=True):
        np.testing.assert_array_equal(a, b)
