"""KerasTuner engine: the same :class:`SearchSpace` as a ``keras_tuner.HyperModel``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from keras_clust.errors import UsageError
from keras_clust.tuning.callbacks import search_callbacks
from keras_clust.tuning.distributed import run_as_worker, worker_curves
from keras_clust.tuning.results import SearchResult, TrialRecord
from keras_clust.tuning.space import SearchSpace, suggest_kerastuner

log = logging.getLogger(__name__)

TUNERS = ("bayesian", "hyperband", "random")


def make_hypermodel(space: SearchSpace, build_fn: Callable[..., keras.Model], seed: int = 0):
    """A ``keras_tuner.HyperModel`` whose ``build(hp)`` only translates ``hp`` into
    ``build_fn``'s keyword arguments (weights seeded ``seed + build number``)."""
    import keras_tuner

    class SpaceHyperModel(keras_tuner.HyperModel):
        def __init__(self):
            super().__init__(name="space_hypermodel", tunable=True)
            self.builds = 0
            self.curves: list[list[float]] = []  # val_loss per epoch, one list per fit (trial)
            self.seconds: list[float] = []

        def build(self, hp):
            values = suggest_kerastuner(space, hp)
            keras.utils.set_random_seed(seed + self.builds)
            self.builds += 1
            return build_fn(**space.builder_kwargs(values))

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            curve: list[float] = []
            self.curves.append(curve)
            record = keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: curve.append(float((logs or {}).get("val_loss", math.nan)))
            )
            start = time.perf_counter()
            try:
                return model.fit(*args, callbacks=[*(callbacks or []), record], **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - start)

    return SpaceHyperModel()


def make_tuner(
    kind: str,
    hypermodel,
    *,
    max_trials: int,
    epochs: int,
    seed: int,
    directory: str | Path,
    project_name: str,
    objective: str = "val_loss",
):
    """A KerasTuner tuner minimising ``objective`` (a logged metric, ``val_loss`` by default);
    Hyperband's budget is ``epochs`` (``max_trials`` does not apply to it)."""
    import keras_tuner

    common = dict(
        objective=keras_tuner.Objective(objective, "min"),
        seed=seed,
        directory=str(directory),
        project_name=project_name,
        overwrite=False,
        max_consecutive_failed_trials=max(3, max_trials),
    )
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(
            hypermodel, max_trials=max_trials, num_initial_points=min(3, max_trials), **common
        )
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=max(2, epochs), factor=3, **common)
    raise UsageError(f"--tuner must be one of {TUNERS}, got {kind!r}")


_STATE = {"COMPLETED": "complete", "STOPPED": "pruned", "INVALID": "failed", "FAILED": "failed"}


def record_trials(
    tuner, space: SearchSpace, curves=(), seconds=(), first: int = 0, objective: str = "val_loss"
) -> list[TrialRecord]:
    """Trials of ``tuner``; ``curves``/``seconds`` hold the per-epoch validation loss and the
    fit time of the trials this process trained, from number ``first`` on, in the order they
    ran. Trials of distributed workers come from the curves they left in the tuner folder
    (:func:`keras_clust.tuning.distributed.run_as_worker`); only for a trial of neither kind is
    the curve KerasTuner's own history, which holds just the best epoch's value."""
    out = []
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    left = worker_curves(tuner.project_dir)
    for i, t in enumerate(trials):
        k, number = i - first, int(t.trial_id)
        if 0 <= k < len(curves):
            curve, took = list(curves[k]), seconds[k] if k < len(seconds) else None
        elif number in left:
            curve, took = left[number]["curve"], left[number]["seconds"]
        else:
            curve, took = (
                [float(o.value[0]) for o in t.metrics.get_history(objective)] if t.metrics.exists(objective) else [],
                None,
            )
        state = _STATE.get(str(t.status), "failed")
        value = curve[-1] if curve else None
        if state == "complete" and (value is None or not math.isfinite(value)):
            state = "failed"
        params = {
            p.name: t.hyperparameters.values[p.name]
            for p in space.params
            if p.name in t.hyperparameters.values and t.hyperparameters.is_active(p.name)
        }
        out.append(TrialRecord(number, state, params, value, curve, took))
    return out


def _searcher(space, build_fn, *, tuner, n_trials, epochs, directory, project_name, seed=0):
    """The hypermodel and tuner of a search (the same in its chief and its workers)."""
    hypermodel = make_hypermodel(space, build_fn, seed)
    t = make_tuner(
        tuner, hypermodel, max_trials=n_trials, epochs=epochs, seed=seed, directory=directory, project_name=project_name
    )
    return hypermodel, t


def run_kerastuner_search(
    space: SearchSpace,
    build_fn: Callable[..., keras.Model],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    tuner: str,
    epochs: int,
    batch_size: int,
    n_trials: int,
    directory: str | Path,
    project_name: str,
    seed: int = 0,
    tensorboard: str | Path | None = None,
) -> tuple[SearchResult, object]:
    """Search ``space`` with KerasTuner; a trial's value is its final validation loss.

    ``tensorboard``: a folder for TensorBoard logs (KerasTuner gives each trial its own).

    Returns:
        The :class:`SearchResult` and the tuner (``tuner.get_best_models()`` reloads the
        best trial's checkpoint).
    """
    hypermodel, t = _searcher(
        space,
        build_fn,
        tuner=tuner,
        n_trials=n_trials,
        epochs=epochs,
        seed=seed,
        directory=directory,
        project_name=project_name,
    )
    before = len(t.oracle.trials)
    start = time.perf_counter()
    t.search(
        *train,
        validation_data=val,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=search_callbacks(tensorboard),
    )
    seconds = time.perf_counter() - start
    algorithm = {"bayesian": "Bayesian optimisation", "hyperband": "Hyperband", "random": "random search"}[tuner]
    trials = record_trials(t, space, hypermodel.curves, hypermodel.seconds, before)
    result = SearchResult(
        "kerastuner", algorithm, "val_loss", trials, seconds, project_name, str(directory), resumed_trials=before
    )
    return result, t


def work_on_kerastuner_search(space, build_fn, train, val, *, batch_size: int, tensorboard=None, **search) -> str:
    """Be a worker of the distributed :func:`run_kerastuner_search` of the same arguments (the
    chief's; ``KERASTUNER_*`` names this process a worker): train the trials the chief hands out
    (:func:`~keras_clust.tuning.distributed.run_as_worker`) and return its line. ``search``: the
    ``tuner``, ``epochs``, ``n_trials``, ``directory``, ``project_name`` and ``seed`` of the search."""
    hypermodel, t = _searcher(space, build_fn, **search)
    return run_as_worker(
        t,
        hypermodel,
        *train,
        validation_data=val,
        epochs=search["epochs"],
        batch_size=batch_size,
        tensorboard=tensorboard,
    )
