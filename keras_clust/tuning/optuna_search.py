"""Optuna engine: TPE sampler, median pruning per epoch, any storage, resumable studies."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.runs import format_params
from keras_clust.training import fit_model
from keras_clust.tuning.results import SearchResult, TrialRecord
from keras_clust.tuning.space import SearchSpace, suggest_optuna

log = logging.getLogger(__name__)

_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def open_storage(url: str):
    """An Optuna RDB storage for ``url`` (``sqlite:///file.db``, ``postgresql://...``), with a
    heartbeat so trials of a killed process are marked failed when the study is resumed."""
    import optuna

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=30)
    except Exception as exc:  # bad URL, missing driver, unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot open Optuna storage {url!r}: {first}; pass an RDB URL such "
                         "as sqlite:///study.db") from None  # fmt: skip


def _finished(study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def record_trials(study) -> list[TrialRecord]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if not t.state.is_finished():
            continue
        steps = sorted(t.intermediate_values)
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None  # fmt: skip
        out.append(TrialRecord(t.number, _STATE.get(t.state.name, "failed"), dict(t.params),
                               t.value, [float(t.intermediate_values[s]) for s in steps], seconds))  # fmt: skip
    return out


def run_optuna_search(
    space: SearchSpace,
    build_fn: Callable[..., keras.Model],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    n_trials: int,
    storage: str,
    study_name: str,
    seed: int = 0,
    timeout: float | None = None,
    n_startup_trials: int = 5,
    n_warmup_steps: int = 2,
    checkpoint: str | Path | None = None,
    enqueue: list[dict] | None = None,
    prune_if: Callable[[dict], str | None] | None = None,
) -> tuple[SearchResult, object]:
    """Minimise the final validation loss of ``build_fn(**params)`` over ``space``.

    The study is created in ``storage`` or, when ``study_name`` exists there, resumed:
    its finished trials are kept and only the missing ones run, so ``n_trials`` is the
    total wanted. A trial whose loss becomes NaN is recorded as failed and the search goes on.

    Args:
        space: The search space.
        build_fn: ``build_fn(**kwargs) -> compiled keras.Model``.
        train, val: ``(x, y)`` arrays.
        epochs, batch_size: Per-trial training.
        n_trials: Total finished trials wanted in the study.
        storage: Optuna RDB storage URL.
        study_name: Study to create or resume.
        seed: Seeds the TPE sampler (offset by the trials already present) and each
            trial's weights (``seed + trial number``).
        timeout: Stop starting trials after this many seconds.
        n_startup_trials, n_warmup_steps: MedianPruner settings.
        checkpoint: Where to save the best model trained by this call (``.keras``).
        enqueue: Parameter sets to try first.
        prune_if: ``prune_if(builder_kwargs) -> reason or None``, asked before a trial's model
            is built; a reason prunes the trial at once (stored as its ``pruned_reason``
            user attribute), e.g. a configuration over a memory budget.

    Returns:
        The :class:`SearchResult` and the Optuna study.
    """
    import optuna
    from optuna_integration import KerasPruningCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage)
    known = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(store)}
    sampler = optuna.samplers.TPESampler(seed=seed + known.get(study_name, 0))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
    study = optuna.create_study(study_name=study_name, storage=store, direction="minimize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)  # fmt: skip
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise UsageError(f"study {study_name!r} in {storage} maximises; use another --study-name")
    before = _finished(study)
    for params in enqueue or ():
        study.enqueue_trial(params, skip_if_exists=True)
    best_here = {"value": math.inf}

    def objective(trial) -> float:
        params = suggest_optuna(space, trial)
        reason = prune_if(space.builder_kwargs(params)) if prune_if is not None else None
        if reason:
            log.info("trial %d pruned before training: %s", trial.number, reason)
            trial.set_user_attr("pruned_reason", reason)
            raise optuna.TrialPruned(reason)
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed + trial.number)
        model = build_fn(**space.builder_kwargs(params))
        log.info("trial %d: %s", trial.number, format_params(params))
        try:
            fit = fit_model(model, *train, validation_data=val, epochs=epochs, batch_size=batch_size,
                            callbacks=[KerasPruningCallback(trial, "val_loss")], verbose=0)  # fmt: skip
        except optuna.TrialPruned:
            log.info("trial %d pruned after epoch %d", trial.number, len(trial.storage.get_trial(trial._trial_id)
                                                                         .intermediate_values))  # fmt: skip
            raise
        except DataError:
            log.info("trial %d diverged (NaN loss): failed", trial.number)
            trial.set_user_attr("diverged", True)
            return math.nan
        value = fit.history["val_loss"][-1]
        log.info("trial %d: val_loss %.5f (%.0f s)", trial.number, value, fit.seconds)
        if checkpoint is not None and value < best_here["value"]:
            best_here.update(value=value, trial=trial.number)
            model.save(checkpoint)
            trial.set_user_attr("checkpoint", str(checkpoint))
        return value

    remaining = max(0, n_trials - before)
    if before:
        log.info("resuming study %r: %d finished trials kept, %d to run", study_name, before, remaining)
    start = time.perf_counter()
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=timeout, gc_after_trial=True)
    seconds = time.perf_counter() - start
    result = SearchResult("optuna", "TPE + median pruning", "val_loss", record_trials(study), seconds,
                          study_name, storage, resumed_trials=before,
                          checkpoint_trial=best_here.get("trial"))  # fmt: skip
    return result, study
