"""Optuna searches shared by several workers through a real PostgreSQL server (started by the
``postgres_server`` fixture on a loopback port) or a journal file: every trial recorded once,
a SIGKILLed worker's trial failed by the heartbeat and retried, studies kept apart."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import optuna
import pytest
from distributed_data import SPACE, SlowEpochs, tiny_images

from keras_clust.errors import UsageError
from keras_clust.tuning import build_compiled_cae, open_storage, run_optuna_search, study_progress

HERE = Path(__file__).parent


def _search(storage, study_name, n_trials, **kw):
    return run_optuna_search(
        SPACE,
        build_compiled_cae,
        *tiny_images(),
        epochs=1,
        batch_size=32,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name,
        seed=0,
        **kw,
    )


def _trials(storage, study_name):
    return optuna.load_study(study_name=study_name, storage=open_storage(storage)).get_trials()


# slow: 38 s: several workers on one study stay in the suite in the killed-worker retry tests (postgres, journal)
@pytest.mark.slow
def test_two_workers_record_every_trial_once(postgres_url, tmp_path):
    # 2 s per trial: the spawned worker (a TensorFlow import away) joins before this one is done
    result, study = _search(
        postgres_url, "two", 6, workers=2, checkpoint=tmp_path / "best.keras", callbacks=(SlowEpochs(2.0),)
    )
    trials = _trials(postgres_url, "two")
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # no trial lost or written twice
    assert 6 <= len(trials) <= 7  # both may start their last trial at once
    assert all(t.state.is_finished() for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes trained trials
    assert [r.number for r in result.trials] == numbers
    # the best model of whichever worker trained it, and no worker's leftovers
    assert result.checkpoint_trial == result.best.number
    best = keras.models.load_model(tmp_path / "best.keras")
    assert best.evaluate(*tiny_images()[1], verbose=0) == pytest.approx(result.best.value, rel=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["best.keras"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("backend", ["postgres", "journal"])
def test_a_killed_worker_trial_is_retried_and_the_study_completes(backend, request, tmp_path):
    # PostgreSQL, a worker of another machine: found by the heartbeat after the grace period;
    # journal file (no heartbeat), a worker of this machine: found by its dead pid
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else f"journal:{tmp_path / 'j.log'}"
    cmd = [
        sys.executable,
        str(HERE / "search_worker.py"),
        url,
        "killed",
        "2",
        *(["remote"] if backend == "postgres" else []),
    ]
    worker = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(HERE)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        running = []
        while not running and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.5)
            try:
                running = [
                    t
                    for t in _trials(url, "killed")
                    if t.state.name == "RUNNING"
                    and t.params
                    and t.user_attrs.get("worker", "").endswith(f":{worker.pid}")
                ]
                # (params: a trial caught between its worker attribute and its suggestions has none yet)
            except KeyError:  # the study is not created yet
                pass
        assert running, f"the worker never started a trial: {worker.stderr.read() if worker.poll() else ''}"
        time.sleep(1.5)  # mid-trial: its epochs take a second each
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        worker.kill()
    (killed,) = running
    assert _trials(url, "killed")[killed.number].state.name == "RUNNING"  # nobody closed it

    result, study = _search(url, "killed", 2, heartbeat_interval=1, grace_period=3)
    trials = study.get_trials()
    assert trials[killed.number].state.name == "FAIL"
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    retries = [t for t in trials if retried(t) == killed.number]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    assert retries[0].params == killed.params
    assert study_progress(study) == (2, 0, 0)
    assert sum(r.state != "failed" for r in result.trials) == 2


def test_studies_of_different_names_do_not_mix(postgres_url):
    a, _ = _search(postgres_url, "study-a", 1)
    b, _ = _search(postgres_url, "study-b", 2)
    assert b.resumed_trials == 0  # a new study, not study-a's trials
    summaries = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(open_storage(postgres_url))}
    assert summaries == {"study-a": 1, "study-b": 2}
    for name, res in (("study-a", a), ("study-b", b)):
        assert [(t.params, t.value) for t in _trials(postgres_url, name)] == [(r.params, r.value) for r in res.trials]


# slow: 37 s: the journal storage's retried trial stays in the suite (test_a_killed_worker_trial...[journal])
@pytest.mark.slow
def test_journal_storage_is_shared_and_joined(tmp_path):
    url = f"journal:{tmp_path / 'study.log'}"
    first, _ = _search(url, "j", 4, workers=2, callbacks=(SlowEpochs(3.0),))
    assert len({t.user_attrs["worker"] for t in _trials(url, "j")}) == 2
    again, _ = _search(url, "j", len(first.trials) + 1)
    assert again.resumed_trials == len(first.trials) >= 4
    assert len(again.trials) == len(first.trials) + 1


def test_storage_errors_are_one_line(tmp_path):
    for url in ("journal:/no/such/folder/s.log", "nosuchdb://x", "postgresql+psycopg://u@127.0.0.1:1/db"):
        with pytest.raises(UsageError) as err:
            open_storage(url)
        assert "\n" not in str(err.value) and "journal:FILE" in str(err.value)
    with pytest.raises(UsageError, match="--grace-period .* longer than --heartbeat-interval"):
        open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=10, grace_period=10)
