"""KerasTuner engine: the same :class:`SearchSpace` as a ``keras_tuner.HyperModel``."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np

from keras_clust.errors import UsageError
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


#: Environment variables of KerasTuner's distributed mode (one chief oracle, tuner workers).
DISTRIBUTED_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def distributed_role() -> str | None:
    """``chief``, ``worker`` or None (one process), from KerasTuner's environment variables.

    In distributed mode the process whose ``KERASTUNER_TUNER_ID`` contains ``chief`` serves the
    oracle at ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`` and trains nothing; every other
    process (``tuner0``, ``tuner1``, ...) asks it for trials and trains them. All of them need the
    same tuner directory (a shared file system) and project name.
    """
    given = {k: os.environ.get(k, "") for k in DISTRIBUTED_ENV}
    if not any(given.values()):
        return None
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise UsageError(f"KerasTuner's distributed mode needs {', '.join(DISTRIBUTED_ENV)}; {', '.join(missing)} "
                         "not set (the chief: KERASTUNER_TUNER_ID=chief, workers: tuner0, tuner1, ...)")  # fmt: skip
    port = given["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"KERASTUNER_ORACLE_PORT={port!r} is not a port number (1-65535)")
    return "chief" if "chief" in given["KERASTUNER_TUNER_ID"] else "worker"


@contextlib.contextmanager
def local_workers(command: Sequence[str], workers: int) -> Iterator[list[str]]:
    """Make this process the chief of a KerasTuner search served on a free loopback port, with
    ``workers`` worker processes running ``command`` (``[python, -m, ...]``: the same search,
    which must then find its data where this process left it).

    Inside the block, ``KERASTUNER_*`` name this process the chief: a tuner made there serves its
    oracle from ``search`` until the workers have trained every trial. Each worker gets
    ``cores / workers`` TensorFlow threads. Yields the list that, after the block, holds each
    worker's last line of output.

    Raises:
        DataError: a worker failed (its last error line), after the others ended.
    """
    import signal
    import socket
    import subprocess
    import threading

    from keras_clust.errors import DataError
    from keras_clust.parallel import worker_threads

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    chief = {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    threads = str(worker_threads(workers))
    saved = {k: os.environ.get(k) for k in chief}
    os.environ.update(chief)
    procs = [subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "KERASTUNER_TUNER_ID": f"tuner{i}", "TF_NUM_INTRAOP_THREADS": threads})
             for i in range(workers)]  # fmt: skip
    log.info("KerasTuner chief at 127.0.0.1:%s with %d local workers (%s TensorFlow threads each)", port, workers,
             threads)  # fmt: skip
    lines: list[str] = []
    done = threading.Event()

    def watch():  # the chief serves until the workers report the end: if they all died first, stop it
        while not done.wait(1.0):
            if all(p.poll() is not None for p in procs) and any(p.returncode != 0 for p in procs):
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # wakes a sleeping chief
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        try:
            yield lines
        except KeyboardInterrupt:
            if not any(p.poll() not in (None, 0) for p in procs):
                raise  # the user's Ctrl-C
        outs = [p.communicate() for p in procs]
    finally:
        done.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for i, (p, (out, err)) in enumerate(zip(procs, outs, strict=True)):
        if p.returncode != 0:
            last = next((line for line in reversed(err.splitlines()) if line.strip()), f"exit code {p.returncode}")
            raise DataError(f"KerasTuner worker tuner{i} failed: {last}")
        lines.append(out.strip().splitlines()[-1] if out.strip() else f"tuner{i}: no output")


#: Where workers leave each trial's per-epoch curve for the chief, inside the tuner's project folder.
WORKER_CURVES = "worker_curves"


def run_as_worker(tuner, hypermodel, *search_args, tensorboard: str | Path | None = None, **search_kwargs) -> str:
    """Be a worker of a distributed search: train the trials the chief hands out
    (``tuner.search(*search_args, **search_kwargs)``) until it has none left; returns a line
    saying how many.

    ``hypermodel`` records each trial's objective per epoch and fit time (``curves``,
    ``seconds``, as :func:`make_hypermodel`'s does); KerasTuner sends the chief only a trial's
    best value, so after each trial the worker writes them to the shared tuner folder
    (``<project>/worker_curves/trial_<id>.json``), where :func:`record_trials` reads them. With
    ``tensorboard``, this worker's logs go to ``<tensorboard>/<KERASTUNER_TUNER_ID>``.
    """
    from keras_clust.runs import write_json

    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    folder = Path(tuner.project_dir) / WORKER_CURVES
    folder.mkdir(parents=True, exist_ok=True)
    on_trial_end, seen = tuner.on_trial_end, [len(hypermodel.curves)]

    def leave_curve(trial):  # KerasTuner's per-trial hook (also after a failed trial), on this tuner only
        if len(hypermodel.curves) > seen[0]:  # this trial got as far as fitting: its curve is the last
            write_json(folder / f"trial_{int(trial.trial_id)}.json", {"curve": hypermodel.curves[-1],
                       "seconds": hypermodel.seconds[-1], "worker": tuner_id})  # fmt: skip
            seen[0] = len(hypermodel.curves)
        on_trial_end(trial)

    tuner.on_trial_end = leave_curve
    logs = None if tensorboard is None else Path(tensorboard) / tuner_id
    tuner.search(*search_args, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN(), *tensorboard_callbacks(logs)],
                 **search_kwargs)  # fmt: skip
    return (f"KerasTuner worker {tuner_id}: trained {len(hypermodel.curves)} trial(s) for the chief at "
            f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")


def tensorboard_callbacks(folder: str | Path | None) -> list:
    """A TensorBoard callback for a KerasTuner search logging to ``folder`` (none for None)."""
    return [] if folder is None else [keras.callbacks.TensorBoard(log_dir=str(folder), histogram_freq=0)]


def make_tuner(kind: str, hypermodel, *, max_trials: int, epochs: int, seed: int, directory: str | Path,
               project_name: str, objective: str = "val_loss"):  # fmt: skip
    """A KerasTuner tuner minimising ``objective`` (a logged metric, ``val_loss`` by default);
    Hyperband's budget is ``epochs`` (``max_trials`` does not apply to it)."""
    import keras_tuner

    common = dict(objective=keras_tuner.Objective(objective, "min"), seed=seed, directory=str(directory),
                  project_name=project_name,
                  overwrite=False, max_consecutive_failed_trials=max(3, max_trials))  # fmt: skip
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials,
                                                num_initial_points=min(3, max_trials), **common)  # fmt: skip
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=max(2, epochs), factor=3, **common)
    raise UsageError(f"--tuner must be one of {TUNERS}, got {kind!r}")


_STATE = {"COMPLETED": "complete", "STOPPED": "pruned", "INVALID": "failed", "FAILED": "failed"}


def record_trials(tuner, space: SearchSpace, curves=(), seconds=(), first: int = 0,
                  objective: str = "val_loss") -> list[TrialRecord]:  # fmt: skip
    """Trials of ``tuner``; ``curves``/``seconds`` hold the per-epoch validation loss and the
    fit time of the trials this process trained, from number ``first`` on, in the order they
    ran. Trials of distributed workers come from the curves they left in the tuner folder
    (:func:`run_as_worker`); only for a trial of neither kind is the curve KerasTuner's own
    history, which holds just the best epoch's value."""
    out = []
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    left = _worker_curves(Path(tuner.project_dir) / WORKER_CURVES)
    for i, t in enumerate(trials):
        k = i - first
        if 0 <= k < len(curves):
            curve = list(curves[k])
        elif int(t.trial_id) in left:
            curve, k = left[int(t.trial_id)]["curve"], None
        else:
            curve = [float(o.value[0]) for o in t.metrics.get_history(objective)] \
                if t.metrics.exists(objective) else []  # fmt: skip
        state = _STATE.get(str(t.status), "failed")
        value = curve[-1] if curve else None
        if state == "complete" and (value is None or not math.isfinite(value)):
            state = "failed"
        params = {p.name: t.hyperparameters.values[p.name] for p in space.params
                  if p.name in t.hyperparameters.values and t.hyperparameters.is_active(p.name)}  # fmt: skip
        if k is None:
            took = left[int(t.trial_id)]["seconds"]
        else:
            took = seconds[k] if 0 <= k < len(seconds) else None
        out.append(TrialRecord(int(t.trial_id), state, params, value, curve, took))
    return out


def _worker_curves(folder: Path) -> dict[int, dict]:
    """``{trial id: {"curve", "seconds", "worker"}}`` left by :func:`run_as_worker`."""
    if not folder.is_dir():
        return {}
    return {int(p.stem.removeprefix("trial_")): json.loads(p.read_text()) for p in folder.glob("trial_*.json")}


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
    hypermodel = make_hypermodel(space, build_fn, seed)
    t = make_tuner(tuner, hypermodel, max_trials=n_trials, epochs=epochs, seed=seed, directory=directory,
                   project_name=project_name)  # fmt: skip
    before = len(t.oracle.trials)
    start = time.perf_counter()
    t.search(*train, validation_data=val, epochs=epochs, batch_size=batch_size, verbose=0,
             callbacks=[keras.callbacks.TerminateOnNaN(), *tensorboard_callbacks(tensorboard)])  # fmt: skip
    seconds = time.perf_counter() - start
    algorithm = {"bayesian": "Bayesian optimisation", "hyperband": "Hyperband", "random": "random search"}[tuner]
    trials = record_trials(t, space, hypermodel.curves, hypermodel.seconds, before)
    result = SearchResult("kerastuner", algorithm, "val_loss", trials, seconds, project_name, str(directory),
                          resumed_trials=before)  # fmt: skip
    return result, t
