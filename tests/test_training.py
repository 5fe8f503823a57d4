import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_clust.training import fit_model


def _replay():
    path = Path(__file__).resolve().parents[1] / "bench" / "study_lj_patience.py"
    spec = importlib.util.spec_from_file_location("study_lj_patience", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.early_stopping


def test_patience_keeps_the_best_epoch_and_the_study_replays_it():
    """A fit whose validation loss only worsens stops ``patience`` epochs after its first, ends
    with the first epoch's weights, and ``bench/study_lj_patience.py`` replays the same stop."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    fit = fit_model(model, x, y, (x, -y), epochs=30, batch_size=16, patience=3, verbose=0)  # val: the opposite map
    val = fit.history["val_loss"]
    assert fit.epochs_run == 4 and np.all(np.diff(val) > 0)
    assert fit.kept_epoch(3) == 1 and fit.kept_epoch(0) == 4
    assert model.evaluate(x, -y, verbose=0) == pytest.approx(val[0], rel=1e-5)  # the first epoch's weights
    early_stopping = _replay()
    assert early_stopping(val, 3) == (4, 1)
    assert early_stopping([3.0, 2.0, 2.5, 1.0, 1.5, 1.6, 1.7, 0.5], 3) == (7, 4)  # 3 epochs without a new best
    assert early_stopping([3.0, 2.0, 1.0], 0) == (3, 3)
