"""Optuna engine: TPE sampler, median pruning per epoch, any storage, resumable studies."""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.markdown import format_params
from keras_clust.parallel import configure_worker, worker_threads
from keras_clust.progress import Progress
from keras_clust.training import fit_context, fit_model
from keras_clust.tuning.results import SearchResult, TrialRecord
from keras_clust.tuning.space import SearchSpace, suggest_optuna
from keras_clust.tuning.storage import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_RETRY,
    has_heartbeat,
    open_storage,
    study_progress,
)

log = logging.getLogger(__name__)

_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def record_trials(study) -> list[TrialRecord]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if not t.state.is_finished():
            continue
        steps = sorted(t.intermediate_values)
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        out.append(
            TrialRecord(
                t.number,
                _STATE.get(t.state.name, "failed"),
                dict(t.params),
                t.value,
                [float(t.intermediate_values[s]) for s in steps],
                seconds,
            )
        )
    return out


@dataclass
class _SearchJob:
    """What one worker process needs to take part in a search (picklable for ``spawn``)."""

    space: SearchSpace
    build_fn: Callable[..., keras.Model]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    epochs: int
    batch_size: int
    n_trials: int
    storage: str
    storage_options: dict
    study_name: str
    seed: int
    timeout: float | None
    n_startup_trials: int
    n_warmup_steps: int
    checkpoint: str | None
    prune_if: Callable[[dict], str | None] | None
    callbacks: tuple = ()
    tensorboard: str | None = None


def _load_study(job: _SearchJob, worker: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(job.storage, **job.storage_options)
    known = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(store)}
    # each worker its own sampler stream; worker 0 of a new study draws exactly as a one-process search
    sampler = optuna.samplers.TPESampler(seed=job.seed + known.get(job.study_name, 0) + 7919 * worker)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=job.n_startup_trials, n_warmup_steps=job.n_warmup_steps)
    study = optuna.create_study(
        study_name=job.study_name,
        storage=store,
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise UsageError(f"study {job.study_name!r} in {job.storage} maximises; use another --study-name")
    return study


def _objective(job: _SearchJob, checkpoint: str | None):
    import optuna
    from optuna_integration import KerasPruningCallback

    best_here = {"value": math.inf}

    def objective(trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = suggest_optuna(job.space, trial)
        reason = job.prune_if(job.space.builder_kwargs(params)) if job.prune_if is not None else None
        if reason:
            log.info("trial %d pruned before training: %s", trial.number, reason)
            trial.set_user_attr("pruned_reason", reason)
            raise optuna.TrialPruned(reason)
        keras.backend.clear_session()
        keras.utils.set_random_seed(job.seed + trial.number)
        model = job.build_fn(**job.space.builder_kwargs(params))
        log.info("trial %d: %s", trial.number, format_params(params))
        try:
            fit = fit_model(
                model,
                *job.train,
                validation_data=job.val,
                epochs=job.epochs,
                batch_size=job.batch_size,
                callbacks=[KerasPruningCallback(trial, "val_loss"), *job.callbacks],
                verbose=0,
            )
        except optuna.TrialPruned:
            log.info(
                "trial %d pruned after epoch %d",
                trial.number,
                len(trial.storage.get_trial(trial._trial_id).intermediate_values),
            )
            raise
        except DataError:
            log.info("trial %d diverged (NaN loss): failed", trial.number)
            trial.set_user_attr("diverged", True)
            return math.nan
        value = fit.history["val_loss"][-1]
        log.info("trial %d: val_loss %.5f (%.0f s)", trial.number, value, fit.seconds)
        if checkpoint is not None and value < best_here["value"]:
            best_here["value"] = value
            partial = f"{checkpoint}.partial.keras"  # never a half-written best model
            model.save(partial)
            os.replace(partial, checkpoint)
            trial.set_user_attr("checkpoint", str(checkpoint))
        return value

    return objective


def _fail_dead_local_trials(study) -> None:
    """Fail (and retry) the running trials whose worker ran on this machine and has died.

    A heartbeat storage finds them too, after its grace period, but only once their first
    heartbeat was written; a journal file has no heartbeat at all.
    """
    import optuna

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if owner != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        log.warning("trial %d: its worker (pid %s) died; failed and retried", t.number, pid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(
                study, study._storage.get_trial(t._trial_id)
            )


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, but is not ours to signal
    return True


def optimize_worker(
    job: _SearchJob, worker: int = 0, checkpoint: str | None = None, poll: float = 1.0, study=None
) -> None:
    """Take part in ``job``'s study until it has ``job.n_trials`` finished trials.

    Several such workers, in this process, in others or on other machines, share the study
    through its storage: each asks for one trial at a time (a retried trial first). When the
    trials still running elsewhere would complete the count, a worker waits for them, failing
    (and so retrying) any whose process has died: on this machine at once, elsewhere through
    the heartbeat of an RDB storage after its grace period (a journal file has none: a trial
    of a dead worker on another machine is left running, and the worker stops). Up to
    ``workers - 1`` trials more than ``n_trials`` can finish when several workers start their
    last trial at once.
    """
    import optuna

    study = study if study is not None else _load_study(job, worker)
    objective = _objective(job, checkpoint)
    heartbeat = has_heartbeat(job.storage)
    deadline = None if job.timeout is None else time.monotonic() + job.timeout
    shown = (
        Progress(job.n_trials, f"study {job.study_name}: finished trials", initial=study_progress(study)[0])
        if worker == 0
        else None
    )
    said = 0.0
    try:
        while deadline is None or time.monotonic() < deadline:
            _fail_dead_local_trials(study)
            if heartbeat:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            finished, running, waiting = study_progress(study)
            if shown is not None:
                shown.set_to(finished)
            if finished >= job.n_trials:
                return
            if waiting or finished + running < job.n_trials:
                study.optimize(objective, n_trials=1, gc_after_trial=True)
            elif heartbeat:  # the last trials run elsewhere: wait for them to finish or go stale
                if time.monotonic() - said > 60:
                    said = time.monotonic()
                    running_now = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                    others = [t.number for t in running_now]
                    log.info(
                        "waiting for trial(s) %s running in other workers (a dead one's trial is retried "
                        "%d s after its last heartbeat)",
                        others,
                        job.storage_options["grace_period"],
                    )
                time.sleep(poll)
            else:
                log.warning(
                    "stopping with %d of %d trials finished: %d still running elsewhere, which a "
                    "journal file cannot tell from a dead worker's",
                    finished,
                    job.n_trials,
                    running,
                )
                return
    finally:
        if shown is not None:
            shown.close()


def _worker_main(job: _SearchJob, worker: int, checkpoint: str | None, level: int, threads: int) -> None:
    """Entry point of a worker process started by :func:`run_optuna_search` (``spawn``)."""
    configure_worker(threads, f"worker {worker}", level)
    logs = None if job.tensorboard is None else Path(job.tensorboard) / f"worker-{worker}"
    try:
        with fit_context(tensorboard=logs):
            optimize_worker(job, worker, checkpoint)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # one line, as the command's own errors; the parent reports the exit code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"keras-clust: worker {worker} error: {type(exc).__name__}: {first}", file=sys.stderr)
        raise SystemExit(1) from None


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
    workers: int = 1,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    callbacks: tuple = (),
    tensorboard: str | Path | None = None,
) -> tuple[SearchResult, object]:
    """Minimise the final validation loss of ``build_fn(**params)`` over ``space``.

    The study is created in ``storage`` or, when ``study_name`` exists there, joined: its
    finished trials are kept and only the missing ones run, so ``n_trials`` is the total
    wanted. The same call in another process or on another machine with the same storage
    and study name works on the same study. A trial whose loss becomes NaN is recorded as
    failed and the search goes on; a trial whose process died is retried (heartbeat storages).

    Args:
        space: The search space.
        build_fn: ``build_fn(**kwargs) -> compiled keras.Model``; a module-level function (or a
            ``functools.partial`` of one) when ``workers > 1``, as the workers are spawned.
        train, val: ``(x, y)`` arrays.
        epochs, batch_size: Per-trial training.
        n_trials: Total finished trials wanted in the study.
        storage: Optuna storage URL (see :func:`open_storage`).
        study_name: Study to create or join.
        seed: Seeds the TPE sampler (offset by the trials already present and by the worker)
            and each trial's weights (``seed + trial number``).
        timeout: Stop starting trials after this many seconds.
        n_startup_trials, n_warmup_steps: MedianPruner settings.
        checkpoint: Where to save the best model trained by this call (``.keras``).
        enqueue: Parameter sets to try first.
        prune_if: ``prune_if(builder_kwargs) -> reason or None``, asked before a trial's model
            is built; a reason prunes the trial at once (stored as its ``pruned_reason``
            user attribute), e.g. a configuration over a memory budget.
        workers: Processes optimising the study at once: this one and ``workers - 1`` spawned
            ones (each spawned one with ``cores / workers`` threads; this one keeps the
            threads TensorFlow started with), each training one trial at a time.
        heartbeat_interval, grace_period: Heartbeat of RDB storages, in seconds.
        callbacks: More Keras callbacks for every trial's ``fit``.
        tensorboard: A folder for the TensorBoard logs of the spawned workers' trials (this
            process's trials log where its :func:`~keras_clust.training.fit_context` says).

    Returns:
        The :class:`SearchResult` and the Optuna study.
    """
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    job = _SearchJob(
        space,
        build_fn,
        train,
        val,
        epochs,
        batch_size,
        n_trials,
        storage,
        options,
        study_name,
        seed,
        timeout,
        n_startup_trials,
        n_warmup_steps,
        None if checkpoint is None else str(checkpoint),
        prune_if,
        tuple(callbacks),
        None if tensorboard is None else str(tensorboard),
    )
    study = _load_study(job, 0)
    before_numbers = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    before = study_progress(study)[0]
    for params in enqueue or ():
        study.enqueue_trial(params, skip_if_exists=True)
    remaining = max(0, n_trials - before)
    if before:
        log.info("joining study %r: %d finished trials kept, %d to run", study_name, before, remaining)
    paths = [
        job.checkpoint if i == 0 or job.checkpoint is None else f"{job.checkpoint}.worker{i}.keras"
        for i in range(workers)
    ]
    start = time.perf_counter()
    if remaining:
        procs = _start_workers(job, paths, workers)
        try:
            optimize_worker(job, 0, paths[0], study=study)
        except BaseException:
            for proc in procs:  # this process failed: its workers stop with it
                proc.terminate()
            raise
        finally:
            for i, proc in enumerate(procs, start=1):
                proc.join()
                if proc.exitcode:
                    log.warning(
                        "worker %d stopped with exit code %s; its trials were trained by the others", i, proc.exitcode
                    )
    seconds = time.perf_counter() - start
    checkpoint_trial = _gather_checkpoint(
        study, paths, before_numbers, {os.getpid(), *(p.pid for p in procs)} if remaining else set()
    )
    result = SearchResult(
        "optuna",
        "TPE + median pruning",
        "val_loss",
        record_trials(study),
        seconds,
        study_name,
        storage,
        resumed_trials=before,
        checkpoint_trial=checkpoint_trial,
    )
    return result, study


def _start_workers(job: _SearchJob, paths: list, workers: int) -> list:
    if workers == 1:
        return []
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # TensorFlow's runtime does not survive fork
    threads = worker_threads(workers)
    level = logging.getLogger("keras_clust").getEffectiveLevel()
    procs = [
        ctx.Process(target=_worker_main, args=(job, i, paths[i], level, threads), name=f"optuna-worker-{i}")
        for i in range(1, workers)
    ]
    for proc in procs:
        proc.start()
    log.info("optimising study %r with %d workers", job.study_name, workers)
    return procs


def _gather_checkpoint(study, paths: list, before: set[int], pids: set[int]) -> int | None:
    """Keep the best model trained by this call's processes (``pids``, on this host) at
    ``paths[0]``; the trial's number."""
    if paths[0] is None:
        return None
    ours = {f"{socket.gethostname()}:{pid}" for pid in pids}
    mine = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number not in before
        and t.state.name == "COMPLETE"
        and math.isfinite(t.value)
        and t.user_attrs.get("checkpoint") in paths
        and t.user_attrs.get("worker") in ours
    ]
    best = min(mine, key=lambda t: t.value, default=None)
    if best is not None and best.user_attrs["checkpoint"] != paths[0]:
        os.replace(best.user_attrs["checkpoint"], paths[0])
    for path in paths[1:]:
        Path(path).unlink(missing_ok=True)
    return None if best is None else best.number
