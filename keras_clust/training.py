"""Training through ``compile``/``fit`` with the callbacks every experiment wants."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from keras_clust.errors import DataError
from keras_clust.validation import check_array

log = logging.getLogger(__name__)


def fit_verbosity() -> int:
    """Keras ``fit`` verbosity: a progress bar on a terminal, one line per epoch otherwise."""
    return 1 if sys.stdout.isatty() else 2


@dataclass
class FitResult:
    """What a ``fit`` produced: the per-epoch history and the wall time."""

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int

    def rows(self, **tags) -> list[dict]:
        """History as rows ``{**tags, "epoch": e, "loss": ..., "val_loss": ...}``."""
        return [
            {**tags, "epoch": i + 1, **{k: float(v[i]) for k, v in self.history.items()}}
            for i in range(self.epochs_run)
        ]


def _is_dataset(x) -> bool:
    import tensorflow as tf

    return isinstance(x, (tf.data.Dataset, keras.utils.PyDataset))


def fit_model(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray] | None,
    epochs: int,
    batch_size: int,
    patience: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | None = None,
) -> FitResult:
    """Fit a compiled model, stopping on NaN and (when ``patience`` > 0) on a plateau.

    Args:
        model: A compiled Keras model.
        x, y: Training inputs and targets (checked for NaN/inf; ``y`` None for a model whose
            loss is in its layers), or a ``tf.data.Dataset`` as ``x`` (and ``validation_data``)
            that batches and shuffles itself.
        validation_data: ``(x_val, y_val)`` or None.
        epochs: Maximum number of epochs.
        batch_size: Batch size.
        patience: Epochs without ``val_loss`` improvement before stopping (0: never);
            the best weights are restored.
        callbacks: Further callbacks.
        verbose: Keras verbosity; default a bar on a terminal, a line per epoch otherwise.

    Raises:
        DataError: on NaN inputs, or when the loss became NaN.
    """
    dataset = _is_dataset(x)  # a tf.data.Dataset or PyDataset batches and shuffles itself
    if not dataset:
        x = check_array(x, "training inputs")
        y = None if y is None else check_array(y, "training targets")
    cbs = [keras.callbacks.TerminateOnNaN(), *callbacks]
    if patience > 0 and validation_data is not None:
        cbs.append(keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True))
    if validation_data is not None and not dataset:
        validation_data = tuple(None if v is None else check_array(v, "validation data") for v in validation_data)
    start = time.perf_counter()
    hist = model.fit(
        x, y, validation_data=validation_data, epochs=epochs, batch_size=None if dataset else batch_size,
        shuffle=not dataset, callbacks=cbs, verbose=fit_verbosity() if verbose is None else verbose,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if any(not np.isfinite(v[-1]) for v in history.values() if v):
        raise DataError(
            f"training of {model.name} diverged (loss became NaN); lower the learning rate"
        )
    return FitResult(history, seconds, len(history.get("loss", [])))


OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, learning_rate: float, weight_decay: float | None = None,
                   momentum: float = 0.9) -> keras.optimizers.Optimizer:  # fmt: skip
    """Adam, or SGD with momentum, with decoupled weight decay (Keras applies
    ``w -= learning_rate * weight_decay * w`` each step, as AdamW does).

    Args:
        name: ``adam`` or ``sgd``.
        learning_rate: Step size (> 0).
        weight_decay: Decoupled weight decay, or None/0 for none.
        momentum: SGD momentum (ignored by Adam).
    """
    from keras_clust.errors import UsageError

    if not (learning_rate > 0 and np.isfinite(learning_rate)):
        raise UsageError(f"learning rate must be a finite number > 0, got {learning_rate}")
    wd = weight_decay or None
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=wd)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=wd)
    raise UsageError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
