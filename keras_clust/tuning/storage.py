"""Where an Optuna study lives: storages shared by several workers, and a study's progress.

Kept apart from the search engine (no Keras import), so command lines can name its defaults.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from keras_clust.errors import UsageError

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats (RDB storages)
GRACE_PERIOD = 30  # seconds without a heartbeat after which a running trial is failed and retried
MAX_RETRY = 2  # retries of a trial whose process died


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
):
    """An Optuna storage for ``url``.

    ``journal:PATH`` is Optuna's journal file (several processes on machines sharing a file
    system, no server, no heartbeat). Any other URL is an RDB storage (``sqlite:///study.db``,
    ``postgresql+psycopg://user@host/db``, ``mysql+pymysql://...``) with a heartbeat: a trial
    whose process dies (SIGKILL, power loss) stops beating, is failed ``grace_period`` seconds
    later by the next worker that looks, and is retried with the same parameters by
    :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` (at most ``max_retry`` times).
    """
    import optuna

    if not url.startswith("journal:") and grace_period <= heartbeat_interval:
        raise UsageError(
            f"--grace-period ({grace_period} s) must be longer than --heartbeat-interval "
            f"({heartbeat_interval} s), or running trials are failed while they still beat; "
            "Optuna suggests at least twice the interval"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if url.startswith("journal:"):
                from optuna.storages.journal import JournalFileBackend, JournalStorage

                path = Path(url.removeprefix("journal:")).expanduser()
                if not url.removeprefix("journal:") or not path.parent.is_dir():
                    raise FileNotFoundError(f"no folder {path.parent} for the journal file")
                return JournalStorage(JournalFileBackend(str(path)))
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry,
            )
    except Exception as exc:  # bad URL, missing driver, unreachable server, unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "pass sqlite:///study.db, postgresql+psycopg://user@host/db or another RDB URL, or journal:FILE"
        raise UsageError(f"cannot open Optuna storage {url!r}: {first}; {hint}") from None


def has_heartbeat(url: str) -> bool:
    """Whether trials in the storage at ``url`` beat (RDB storages do; journal files do not)."""
    return not url.startswith("journal:")


def study_progress(study) -> tuple[int, int, int]:
    """``(finished, running, waiting)`` trials of ``study``. A trial failed because its process
    died and then retried counts once, through its retry."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = {n for t in trials for n in optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(t)}
    finished = sum(t.state.is_finished() and t.number not in retried for t in trials)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
    return finished, running, waiting
