"""Training through ``compile``/``fit`` with the callbacks every experiment wants."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_clust.errors import DataError
from keras_clust.validation import check_array

log = logging.getLogger(__name__)

#: Batches per ``fit`` call under ``--fast`` (``steps_per_execution``): fewer Python round
#: trips. For the ``fashion-cae`` CAE, 8, 32 and a whole epoch were within the benchmark's noise
#: of each other (BENCHMARKS.md); per-epoch callbacks see every epoch whatever the value.
FAST_STEPS_PER_EXECUTION = 32


def fit_verbosity() -> int:
    """Keras ``fit`` verbosity: a progress bar on a terminal, one line per epoch otherwise."""
    return 1 if sys.stdout.isatty() else 2


@dataclass
class FitResult:
    """What a ``fit`` produced: the per-epoch history, the wall time, and the 1-based epoch whose
    weights the model ended with (``kept_epoch``: early stopping's best, else the last; 0 or
    omitted means the last)."""

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    kept_epoch: int = 0

    def __post_init__(self):
        if not self.kept_epoch:
            self.kept_epoch = self.epochs_run

    def rows(self, **tags) -> list[dict]:
        """History as rows ``{**tags, "epoch": e, "loss": ..., "val_loss": ...}``."""
        return [
            {**tags, "epoch": i + 1, **{k: float(v[i]) for k, v in self.history.items()}}
            for i in range(self.epochs_run)
        ]


class FitContext:
    """What the fits of one run share: where they keep backups and TensorBoard logs.

    Every :func:`fit_model` call made inside :func:`fit_context` gets the next key
    ``<nn>-<model name>``. With ``backup``, the fit's folder ``<backup>/<key>`` holds Keras'
    ``BackupAndRestore`` state (weights, optimizer, epoch; written after every epoch and kept
    after the fit ends) and ``epochs.json``, the finished epochs' logs. A run's fits come in
    the same order every time, so when the run is started again on the same folder, a
    finished fit restores its final weights without training, and the fit that was
    interrupted continues from its last finished epoch, its history whole: no epoch repeated,
    none lost. With ``tensorboard``, the fit writes TensorBoard logs to ``<tensorboard>/<key>``
    (scalars per epoch; no weight histograms). With a ``tf.distribute`` ``strategy`` (whose
    scope the models were built in), a fit's ``batch_size`` is per replica. With ``fast``, a
    model that has not run yet (no train, test or predict function made) is compiled for
    speed as if ``compile`` had been given ``jit_compile=True`` (XLA; only while TensorFlow's
    op determinism is off, without ``strategy``, and for models Keras can compile so) and, if it was compiled
    with Keras' default of 1, ``steps_per_execution=FAST_STEPS_PER_EXECUTION``; ``fits`` then
    lists, per trained fit, what the model ran with. Keras' own ``jit_compile="auto"``
    turns XLA off on machines without an accelerator, hence the explicit setting.
    """

    def __init__(
        self, backup: str | Path | None = None, tensorboard: str | Path | None = None, strategy=None, fast: bool = False
    ):
        self.backup = None if backup is None else Path(backup)
        self.tensorboard = None if tensorboard is None else Path(tensorboard)
        self.strategy = strategy
        self.fast = bool(fast)
        self.fits: list[dict] = []
        self.count = 0

    def next_key(self, model_name: str) -> str:
        self.count += 1
        return f"{self.count:02d}-{model_name}"


_active_contexts: list[FitContext] = []


@contextlib.contextmanager
def fit_context(
    backup: str | Path | None = None, tensorboard: str | Path | None = None, strategy=None, fast: bool = False
) -> Iterator[FitContext]:
    """Back up (``backup``), log to TensorBoard (``tensorboard``), scale the batch by the
    replicas of ``strategy`` and compile for speed (``fast``: XLA, several batches per call)
    every :func:`fit_model` call inside the block; see :class:`FitContext`."""
    context = FitContext(backup, tensorboard, strategy, fast)
    _active_contexts.append(context)
    try:
        yield context
    finally:
        _active_contexts.remove(context)


class EpochLog(keras.callbacks.Callback):
    """Keeps every finished epoch's logs in a JSON file, rewritten atomically after each epoch.

    Epochs are numbered as ``fit`` numbers them (from ``initial_epoch`` on a resumed fit), and
    an epoch run again after a restore replaces its earlier row.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict] = json.loads(self.path.read_text()) if self.path.is_file() else []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.rows))
        os.replace(tmp, self.path)

    def history(self) -> dict[str, list[float]]:
        keys = [k for k in self.rows[0] if k != "epoch"] if self.rows else []
        return {k: [r.get(k, float("nan")) for r in self.rows] for k in keys}


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping(patience, restore_best_weights=True)`` that a resumed fit continues: its
    best loss, best epoch and wait are replayed from the backup's epoch log, and its best
    weights, saved beside the backup whenever they change, are loaded again. A resumed fit then
    stops and keeps the same epoch as one never interrupted."""

    def __init__(self, patience: int, backup: _FitBackup):
        super().__init__(patience=patience, restore_best_weights=True)
        self.backup = backup
        self.best_file = backup.folder / "best.weights.npz"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        done = int(getattr(self.model, "_initial_epoch", 0) or 0)  # set by BackupAndRestore, which ran first
        rows = [r for r in self.backup.epochs.rows if r["epoch"] < done and "val_loss" in r]
        if not done or not rows:
            return
        self._set_monitor_op()
        for row in rows:  # the same rule as on_epoch_end, without training
            self.wait += 1
            if self._is_improvement(row["val_loss"], self.best):
                self.best, self.best_epoch, self.wait = row["val_loss"], row["epoch"], 0
        if self.best_epoch == done - 1:
            self.best_weights = self.model.get_weights()  # the restored state is that epoch's
            return
        saved = self._saved_best()
        if saved is not None:
            self.best_weights = saved
        else:
            log.warning("the best weights of %s were not backed up; early stopping restarts", self.model.name)
            super().on_train_begin(logs)

    def _saved_best(self) -> list[np.ndarray] | None:
        """The best epoch's weights saved beside the backup, if that file holds this epoch."""
        if not self.best_file.is_file():
            return None
        with np.load(self.best_file) as saved:
            if int(saved["epoch"]) != self.best_epoch:
                return None
            return [saved[f"w{i}"] for i in range(len(saved.files) - 1)]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best_weights is not None:
            tmp = self.best_file.with_name("best.weights.tmp.npz")
            np.savez(tmp, epoch=epoch, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            os.replace(tmp, self.best_file)


class _ResumableHalving(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau(factor=0.5)`` that a resumed fit continues: with a ``backup``, its best
    loss, wait and cooldown are replayed from the backup's epoch log before the first epoch after
    the resume (the rate itself is the restored optimizer's). A resumed fit then halves its rate at
    the same epochs as one never interrupted. Without one it is Keras' callback."""

    def __init__(self, patience: int, min_lr: float, backup: _FitBackup | None = None):
        super().__init__(factor=0.5, patience=patience, min_lr=min_lr)
        self.backup = backup
        self._replayed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._replayed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._replayed or self.backup is None:
            return
        self._replayed = True
        rows = [r for r in self.backup.epochs.rows if r["epoch"] < epoch and self.monitor in r]
        if rows and self.monitor_op is None:
            self._set_monitor_op()
        for row in rows:  # the rule of on_epoch_end, without training; the rate is the one the epoch ran at
            if self.in_cooldown():
                self.cooldown_counter -= 1
                self.wait = 0
            if self._is_improvement(row[self.monitor], self.best):
                self.best, self.wait = row[self.monitor], 0
            elif not self.in_cooldown():
                self.wait += 1
                if self.wait >= self.patience and row.get("learning_rate", math.inf) > np.float32(self.min_lr):
                    self.cooldown_counter, self.wait = self.cooldown, 0


class _FitBackup:
    """One fit's backup folder: Keras' BackupAndRestore state, the epochs' logs, and once the
    fit has ended its final weights (after EarlyStopping's restore) with its wall time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.epochs = EpochLog(folder / "epochs.json")
        self.final = folder / "final.weights.h5"
        self.done = folder / "done.json"

    def restore_finished(self, model: keras.Model) -> FitResult | None:
        """The finished fit's result with its final weights loaded into ``model``, or None."""
        if not self.done.is_file():
            return None
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.final)
        log.info("%s was trained before this run was interrupted: weights restored from %s", model.name, self.folder)
        history = self.epochs.history()
        done = json.loads(self.done.read_text())
        return FitResult(history, done["seconds"], len(history.get("loss", [])), done.get("kept_epoch", 0))

    def _restorable_epoch(self) -> int:
        """Epochs the saved state holds, after making sure Keras will read a whole state: a kill
        while the state was written leaves a truncated file, so the previous copy is used, or,
        without one, the fit starts again."""
        import h5py

        state = self.folder / "state"
        latest = (state / "latest.weights.h5", state / "training_metadata.json")
        for weights, meta in (latest, tuple(p.with_name(p.name + ".bkp") for p in latest)):
            try:
                epoch = int(json.loads(meta.read_text())["epoch"])
                with h5py.File(weights, "r"):
                    pass
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if weights != latest[0]:
                log.warning("the latest backup in %s is damaged (killed while written); using the one before", state)
                os.replace(weights, latest[0])
                os.replace(meta, latest[1])
            return epoch
        if state.exists():
            log.warning("the backup in %s is damaged (killed while written); this fit starts again", state)
            shutil.rmtree(state)
        return 0

    def callbacks(self) -> list[keras.callbacks.Callback]:
        epoch = self._restorable_epoch()
        if epoch:
            log.info("resuming from epoch %d (backup %s)", epoch + 1, self.folder)
        # the epoch's log first: a kill between the two writes then repeats that epoch (its row is
        # replaced) instead of losing its row; two copies of the state, so a kill while one is
        # written leaves the other
        restore = keras.callbacks.BackupAndRestore(
            str(self.folder / "state"), delete_checkpoint=False, double_checkpoint=True
        )
        return [self.epochs, restore]

    def finish(self, model: keras.Model, seconds: float, kept_epoch: int) -> None:
        model.save_weights(self.final, overwrite=True)
        tmp = self.done.with_name("done.json.tmp")
        tmp.write_text(json.dumps({"seconds": seconds, "kept_epoch": kept_epoch}))
        os.replace(tmp, self.done)  # written last: a fit is finished only with its final weights


def _context_callbacks(model: keras.Model) -> tuple[_FitBackup | None, list[keras.callbacks.Callback]]:
    if not _active_contexts:
        return None, []
    context = _active_contexts[-1]
    key = context.next_key(model.name)
    cbs = []
    if context.tensorboard is not None:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(context.tensorboard / key), histogram_freq=0))
    if context.backup is None:
        return None, cbs
    if not model.built:  # BackupAndRestore restores into built weights only
        log.warning("model %s is not built before fit: its training is not backed up", model.name)
        return None, cbs
    return _FitBackup(context.backup / key), cbs


def _compile_for_speed(model: keras.Model, strategy) -> None:
    """What ``compile(jit_compile=True, steps_per_execution=FAST_STEPS_PER_EXECUTION)`` sets,
    for a model whose train/test/predict functions are not made yet (they read both when they
    are made); a model compiled with its own ``steps_per_execution`` keeps it. No XLA under op
    determinism (not every op has a deterministic XLA kernel) or a ``tf.distribute`` strategy,
    where Keras keeps it off too, nor where it would be slower (:func:`_xla_slower`)."""
    from keras_clust.seeding import op_determinism

    if any(f is not None for f in (model.train_function, model.test_function, model.predict_function)):
        return
    if not op_determinism() and strategy is None and not _xla_slower(model):
        model.jit_compile = True  # Keras' setter warns and keeps False for a model XLA cannot compile
    if model.steps_per_execution == 1:
        model.steps_per_execution = FAST_STEPS_PER_EXECUTION


def _layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, those of nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def _xla_slower(model: keras.Model) -> bool:
    """Whether XLA would make this model slower: on a machine without a GPU, XLA's 3-D
    convolutions trained the lj-fluid grid VAE 30-50x slower than TensorFlow's own (oneDNN)
    kernels (BENCHMARKS.md, "XLA and bfloat16 for the grid VAE"), so a model with one keeps them."""
    import tensorflow as tf

    conv3d = (keras.layers.Conv3D, keras.layers.Conv3DTranspose)
    return any(isinstance(layer, conv3d) for layer in _layers(model)) and not tf.config.list_physical_devices("GPU")


def _is_dataset(x) -> bool:
    import tensorflow as tf

    return isinstance(x, (tf.data.Dataset, keras.utils.PyDataset))


def without_autotuning(data):
    """``data`` with tf.data's autotuning off when it is a ``tf.data.Dataset`` (anything else as
    it is).

    Keras makes a new iterator of a dataset every epoch, for training and for validation, and
    deleting an autotuned one stalled the fit for about a second before the next epoch's first
    batch, in some runs on 2 cores half the epochs, in others none; without autotuning none did
    (BENCHMARKS.md, "A stall between epochs"). Autotuning only chooses parallelism and buffer
    sizes, never what a pipeline yields or in which order: the batches, and so the trained
    weights, are the same without it.
    """
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        return data
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


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
    halve_lr_after: int = 0,
    min_lr: float = 0.0,
) -> FitResult:
    """Fit a compiled model, stopping on NaN and (when ``patience`` > 0) on a plateau.

    Args:
        model: A compiled Keras model.
        x, y: Training inputs and targets (checked for NaN/inf; ``y`` None for a model whose
            loss is in its layers), or a ``tf.data.Dataset`` as ``x`` (and ``validation_data``)
            that batches and shuffles itself (fitted without tf.data's autotuning:
            :func:`without_autotuning`).
        validation_data: ``(x_val, y_val)`` or None.
        epochs: Maximum number of epochs.
        batch_size: Batch size.
        patience: Epochs without ``val_loss`` improvement before stopping (0: never);
            the best weights are restored and their epoch is the result's ``kept_epoch``. A fit
            resumed from its backup (:func:`fit_context`) goes on counting from the epochs
            before the interruption, with their best weights.
        callbacks: Further callbacks.
        verbose: Keras verbosity; default a bar on a terminal, a line per epoch otherwise.
        halve_lr_after: Epochs without ``val_loss`` improvement before the learning rate halves
            (Keras' ``ReduceLROnPlateau``, down to ``min_lr``; 0: never). The history then has
            each epoch's ``learning_rate``; a resumed fit halves at the same epochs.
        min_lr: The learning rate ``halve_lr_after`` stops at.

    Inside :func:`fit_context` the fit is backed up after every epoch and, when its backup
    exists, resumed from it (the history then holds every epoch, before and after), and/or
    logged for TensorBoard.

    Raises:
        DataError: on NaN inputs, or when the loss became NaN.
    """
    dataset = _is_dataset(x)  # a tf.data.Dataset or PyDataset batches and shuffles itself
    if not dataset:
        x = check_array(x, "training inputs")
        y = None if y is None else check_array(y, "training targets")
    cbs = [keras.callbacks.TerminateOnNaN(), *callbacks]
    stopping = None
    backup, more = _context_callbacks(model)
    if halve_lr_after > 0 and validation_data is not None:
        # before the backup's callbacks: an epoch's row then logs its rate, and the backup holds a halved one
        cbs.append(_ResumableHalving(halve_lr_after, min_lr, backup))
    cbs.extend(more)
    if backup is not None:
        finished = backup.restore_finished(model)
        if finished is not None:
            return finished
        cbs.extend(backup.callbacks())
    if patience > 0 and validation_data is not None:
        # after the backup's callbacks: on a resume it starts from the restored epochs
        stopping = (
            keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
            if backup is None
            else _ResumableEarlyStopping(patience, backup)
        )
        cbs.append(stopping)
    if validation_data is not None and not dataset:
        validation_data = tuple(None if v is None else check_array(v, "validation data") for v in validation_data)
    samples = "" if dataset else f" on {len(x)} samples"
    params = f" ({model.count_params()} parameters)" if model.built else ""
    log.info("training %s: up to %d epochs%s%s", model.name, epochs, samples, params)
    if _active_contexts and _active_contexts[-1].strategy is not None and not dataset:
        batch_size *= int(_active_contexts[-1].strategy.num_replicas_in_sync)  # per replica -> global
    if _active_contexts and _active_contexts[-1].fast:
        _compile_for_speed(model, _active_contexts[-1].strategy)
        _active_contexts[-1].fits.append(
            {
                "model": model.name,
                "jit_compile": bool(model.jit_compile),
                "steps_per_execution": int(model.steps_per_execution),
            }
        )
    start = time.perf_counter()
    hist = model.fit(
        without_autotuning(x),
        y,
        validation_data=without_autotuning(validation_data),
        epochs=epochs,
        batch_size=None if dataset else batch_size,
        shuffle=not dataset,
        callbacks=cbs,
        verbose=fit_verbosity() if verbose is None else verbose,
    )
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if backup is not None:
        history = backup.epochs.history()  # the epochs before a resume too
    if any(not np.isfinite(v[-1]) for v in history.values() if v):
        raise DataError(f"training of {model.name} diverged (loss became NaN); lower the learning rate")
    epochs_run = len(history.get("loss", []))
    kept = epochs_run
    if stopping is not None and stopping.best_weights is not None:
        kept = int(stopping.best_epoch) + 1  # the epoch it restored, counted from the fit's start
    if backup is not None:
        backup.finish(model, seconds, kept)
    return FitResult(history, seconds, epochs_run, kept)


def fit_autoencoder(model: keras.Model, split, epochs: int, batch_size: int, **options) -> FitResult:
    """:func:`fit_model` for a model that reconstructs its input: trained on ``split.x_train``
    against itself and validated on ``split.x_val`` against itself.

    Args:
        model: A compiled autoencoder.
        split: Anything with ``x_train`` and ``x_val`` arrays (e.g. a
            :class:`~keras_clust.data.splits.Split`).
        epochs, batch_size: As for :func:`fit_model`.
        **options: ``patience``, ``callbacks`` or ``verbose`` of :func:`fit_model`.
    """
    return fit_model(
        model, split.x_train, split.x_train, (split.x_val, split.x_val), epochs=epochs, batch_size=batch_size, **options
    )


OPTIMIZERS = ("adam", "sgd")


def make_optimizer(
    name: str, learning_rate: float, weight_decay: float | None = None, momentum: float = 0.9
) -> keras.optimizers.Optimizer:
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
