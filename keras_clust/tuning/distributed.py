"""KerasTuner's distributed mode: who is chief or worker, a worker's loop, and local workers.

One chief process serves the search's oracle over gRPC and trains nothing; workers
(``tuner0``, ``tuner1``, ...) ask it for trials and train them. KerasTuner reads the roles from
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``; every process
needs the same tuner folder (a shared file system) and project name. KerasTuner tells the chief
only a trial's best value, so workers also leave each trial's per-epoch curve in that folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from keras_clust.errors import DataError, UsageError

log = logging.getLogger(__name__)

#: Environment variables of KerasTuner's distributed mode (one chief oracle, tuner workers).
DISTRIBUTED_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")

#: Where workers leave each trial's per-epoch curve for the chief, inside the tuner's project folder.
WORKER_CURVES = "worker_curves"


def distributed_role() -> str | None:
    """``chief``, ``worker`` or None (one process), from KerasTuner's environment variables.

    Raises:
        UsageError: some of the three variables are set and others not, or the port is not one.
    """
    given = {k: os.environ.get(k, "") for k in DISTRIBUTED_ENV}
    if not any(given.values()):
        return None
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise UsageError(
            f"KerasTuner's distributed mode needs {', '.join(DISTRIBUTED_ENV)}; {', '.join(missing)} "
            "not set (the chief: KERASTUNER_TUNER_ID=chief, workers: tuner0, tuner1, ...)"
        )
    port = given["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"KERASTUNER_ORACLE_PORT={port!r} is not a port number (1-65535)")
    return "chief" if "chief" in given["KERASTUNER_TUNER_ID"] else "worker"


def run_as_worker(tuner, hypermodel, *search_args, tensorboard: str | Path | None = None, **search_kwargs) -> str:
    """Be a worker: train the trials the chief hands out until it has none left.

    Args:
        tuner: A KerasTuner tuner made in this process with ``KERASTUNER_*`` naming a worker.
        hypermodel: Its hypermodel, recording each fitted trial's objective per epoch and fit
            time in ``curves`` and ``seconds`` (as :func:`~keras_clust.tuning.make_hypermodel`'s).
        *search_args, **search_kwargs: What ``tuner.search`` gets (data, epochs, ...).
        tensorboard: A folder for this worker's TensorBoard logs
            (``<tensorboard>/<KERASTUNER_TUNER_ID>``), or None.

    Returns:
        A line saying how many trials this worker trained, for whom.

    After each trial that got as far as fitting, its curve and time go to
    ``<project>/worker_curves/trial_<id>.json`` (a retried trial's file is replaced), where
    :func:`worker_curves` reads them.
    """

    from keras_clust.files import write_json
    from keras_clust.tuning.callbacks import search_callbacks

    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    folder = Path(tuner.project_dir) / WORKER_CURVES
    folder.mkdir(parents=True, exist_ok=True)
    on_trial_begin, on_trial_end, seen = tuner.on_trial_begin, tuner.on_trial_end, [0]

    def forget_curve(trial):  # KerasTuner's per-trial hooks, on this tuner only
        (folder / f"trial_{int(trial.trial_id)}.json").unlink(missing_ok=True)  # an earlier attempt's
        seen[0] = len(hypermodel.curves)
        on_trial_begin(trial)

    def leave_curve(trial):  # also called after a failed trial
        if len(hypermodel.curves) > seen[0]:  # it got as far as fitting: its curve is the last one
            write_json(
                folder / f"trial_{int(trial.trial_id)}.json",
                {"curve": hypermodel.curves[-1], "seconds": hypermodel.seconds[-1], "worker": tuner_id},
            )
        on_trial_end(trial)

    tuner.on_trial_begin, tuner.on_trial_end = forget_curve, leave_curve
    logs = None if tensorboard is None else Path(tensorboard) / tuner_id
    tuner.search(*search_args, verbose=0, callbacks=search_callbacks(logs), **search_kwargs)
    return (
        f"KerasTuner worker {tuner_id}: trained {len(hypermodel.curves)} trial(s) for the chief at "
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )


def worker_curves(project_dir: str | Path) -> dict[int, dict]:
    """``{trial id: {"curve", "seconds", "worker"}}`` that workers left in a tuner's project folder."""
    folder = Path(project_dir) / WORKER_CURVES
    if not folder.is_dir():
        return {}
    return {int(p.stem.removeprefix("trial_")): json.loads(p.read_text()) for p in folder.glob("trial_*.json")}


class _WorkerDied(Exception):
    """Raised in the chief's thread when a local worker has failed."""


@contextlib.contextmanager
def local_workers(command: Sequence[str], workers: int, logs: str | Path) -> Iterator[list[str]]:
    """Make this process the chief of a search on a free loopback port, with local workers.

    Args:
        command: A worker's command line (``[python, -m, ...]``): the same search, which must
            find its data where this process left it.
        workers: How many worker processes to start; each gets ``cores / workers`` TensorFlow
            threads and its own session (the terminal's Ctrl-C reaches the chief only, which
            then stops them).
        logs: A folder for each worker's output, ``tuner<i>.log``.

    Yields:
        A list that, after the block, holds each worker's last line of output. Inside the
        block ``KERASTUNER_*`` name this process the chief: a tuner made there serves its oracle
        from ``search`` until the workers have trained every trial.

    Raises:
        DataError: a worker failed. The first failure stops the others and wakes the chief
            (KerasTuner would wait for the dead worker's trial forever); the message quotes the
            worker's error line and names its log.
    """
    from keras_clust.parallel import worker_threads

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("local_workers runs in the main thread (it wakes the chief with a signal)")
    logs = Path(logs)
    logs.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    chief = {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    saved_env = {k: os.environ.get(k) for k in chief}
    threads = str(worker_threads(workers))
    procs: list[subprocess.Popen] = []
    failed: list[int] = []
    done, armed = threading.Event(), [True]

    def wake(signum, frame):
        if armed[0]:  # a signal that arrives after the block is over does nothing
            raise _WorkerDied

    def watch():
        while not done.wait(0.5):
            dead = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
            if dead:
                failed.extend(dead)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                return

    previous = signal.signal(signal.SIGUSR1, wake)
    watcher = threading.Thread(target=watch, daemon=True)
    lines: list[str] = []
    try:
        os.environ.update(chief)
        for i in range(workers):
            with open(logs / f"tuner{i}.log", "w") as out:
                procs.append(
                    subprocess.Popen(
                        list(command),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, "KERASTUNER_TUNER_ID": f"tuner{i}", "TF_NUM_INTRAOP_THREADS": threads},
                    )
                )
        log.info(
            "KerasTuner chief at 127.0.0.1:%s with %d local workers (%s TensorFlow threads each; logs in %s)",
            port,
            workers,
            threads,
            logs,
        )
        watcher.start()
        try:
            yield lines
            for p in procs:
                p.wait()
        except _WorkerDied:
            pass
    finally:
        armed[0] = False
        done.set()
        if watcher.is_alive():
            watcher.join()
        signal.signal(signal.SIGUSR1, previous)  # the watcher has ended: no signal is on its way
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for i, p in enumerate(procs):
        text = (logs / f"tuner{i}.log").read_text(errors="replace").strip().splitlines()
        if p.returncode != 0 and (i in failed or not failed):
            why = next(
                (t for t in reversed(text) if "error" in t.lower() and len(t.strip()) > 1), f"exit code {p.returncode}"
            )
            raise DataError(f"KerasTuner worker tuner{i} failed: {why.strip()} (its output: {logs / f'tuner{i}.log'})")
        lines.append(text[-1] if text else f"tuner{i}: no output")
