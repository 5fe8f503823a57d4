"""Long work that survives a kill: backed-up fits continue from their last finished epoch,
and ``<app> run --resume`` continues a killed run from its ``.partial`` folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import assert_one_line_error, cli, cli_in_process

HERE = Path(__file__).parent


ENV = {**os.environ, "PYTHONPATH": str(HERE)}


def _worker(backup: Path) -> list[str]:
    return [sys.executable, str(HERE / "fit_worker.py"), str(backup)]


def _epoch_of(metadata: Path) -> int:
    """Epochs a fit's saved state holds (BackupAndRestore's training_metadata.json)."""
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _rows(path: Path) -> list:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


# slow: 38 s: a killed run continued by 'run --resume' stays in the suite
# (test_run_resume_continues_a_killed_run)
@pytest.mark.slow
def test_a_killed_fit_continues_from_its_last_finished_epoch(tmp_path):
    backup = tmp_path / "backup"
    proc = subprocess.Popen(_worker(backup), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    log = backup / "02-second" / "epochs.json"
    state = backup / "02-second" / "state" / "training_metadata.json"
    deadline = time.monotonic() + 120
    while _epoch_of(state) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # during epoch 3 of 4 (each epoch ends with a 1 s sleep)
    killed_out, _ = proc.communicate(timeout=30)
    assert [r["epoch"] for r in _rows(log)] == [0, 1], killed_out

    out = subprocess.run(_worker(backup), capture_output=True, text=True, timeout=120, env=ENV)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    trained = [line for line in lines if line.startswith("trained")]
    assert trained == ["trained second 2", "trained second 3"]  # nothing repeated, the finished fit not retrained
    result = json.loads(lines[-1])
    assert len(result["second"]["loss"]) == 4 and len(result["first"]["loss"]) == 2  # no epoch lost
    killed_first = [line for line in killed_out.splitlines() if line.startswith("trained first")]
    assert killed_first == ["trained first 0", "trained first 1"]
    # the finished fit's weights are its own final weights, not a fresh model's
    fresh = subprocess.run(_worker(tmp_path / "other"), capture_output=True, text=True, timeout=120, env=ENV)
    assert json.loads(fresh.stdout.splitlines()[-1])["first_checksum"] == pytest.approx(result["first_checksum"])


def test_run_resume_continues_a_killed_run(tmp_path):
    args = ("mnist-l1", "run", "--quick", "--latent-dims", "2", "--no-export", "--fast")  # resumed without --fast
    env = {**os.environ, "KERAS_CLUST_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_clust.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    logs = []
    while not logs and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        logs = [
            p
            for p in (tmp_path / "runs" / "mnist-l1").glob(".*.partial/backup/*/state/training_metadata.json")
            if _epoch_of(p) >= 1
        ]  # the first epoch's state is whole
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert logs, "the run never finished an epoch"
    (partial,) = (tmp_path / "runs" / "mnist-l1").glob(".*.partial")  # a killed run leaves its folder

    # its own process, as a user resumes: a --fast run leaves op determinism off only in a process where no
    # earlier run turned it on (the report says so otherwise), and this worker has run other tests
    res = cli("mnist-l1", "run", "--resume", str(partial), "--tensorboard", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming run" in res.stderr
    # the fit killed after its first epoch goes on from epoch 2, or, killed later, is restored untrained
    assert "resuming from epoch 2" in res.stderr or "was trained before this run was interrupted" in res.stderr
    run = tmp_path / "runs" / "mnist-l1" / partial.name[1 : -len(".partial")]
    assert run.is_dir() and not partial.exists() and not (run / "backup").exists()
    assert list((run / "tensorboard").glob("*/train/events.out.tfevents.*"))  # the fits trained after the resume
    epochs = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    header, rows = epochs[0], epochs[1:]
    col = header.index("epoch")
    assert sorted(int(r[col]) for r in rows) == list(range(1, len(rows) + 1)) and len(rows) == 2  # quick: 2 epochs
    assert json.loads((run / "config.json").read_text())["quick"] is True  # the saved config, not the defaults
    assert "started with --fast: resumed so" in res.stderr  # the run's own --fast, not the resuming command's
    fast = json.loads((run / "metrics.json").read_text())["fast"]
    assert fast["op_determinism"] is False
    if "resuming from epoch 2" in res.stderr:  # a fit trained after the resume, compiled fast
        assert fast["fits"] and all(f["jit_compile"] and f["steps_per_execution"] == 32 for f in fast["fits"])

    again = cli_in_process("mnist-l1", "run", "--resume", str(run), cwd=tmp_path)
    assert_one_line_error(again, 2, "--resume", "finished run folder")


def test_a_backup_damaged_by_a_kill_falls_back_to_the_copy_before(tmp_path):
    import keras
    import numpy as np

    from keras_clust.training import _FitBackup, fit_context, fit_model

    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp), name="m")
    model.compile(optimizer="adam", loss="mse")
    with fit_context(backup=tmp_path):
        fit_model(model, x, x[:, :1], None, epochs=3, batch_size=8, verbose=0)
    state = tmp_path / "01-m" / "state"
    backup = _FitBackup(tmp_path / "01-m")
    assert backup._restorable_epoch() == 3
    (state / "latest.weights.h5").write_bytes((state / "latest.weights.h5").read_bytes()[:96])  # killed mid-write
    assert backup._restorable_epoch() == 2  # the copy written before the last epoch's
    assert json.loads((state / "training_metadata.json").read_text())["epoch"] == 2
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        if (state / name).exists():
            (state / name).write_bytes(b"\x89HDF\r\n")
    assert backup._restorable_epoch() == 0 and not state.exists()  # nothing whole: the fit starts again
