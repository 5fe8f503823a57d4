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

from helpers import assert_one_line_error, cli

HERE = Path(__file__).parent


ENV = {**os.environ, "PYTHONPATH": str(HERE)}


def _worker(backup: Path) -> list[str]:
    return [sys.executable, str(HERE / "fit_worker.py"), str(backup)]


def _rows(path: Path) -> list:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_a_killed_fit_continues_from_its_last_finished_epoch(tmp_path):
    backup = tmp_path / "backup"
    proc = subprocess.Popen(_worker(backup), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    log = backup / "02-second" / "epochs.json"
    deadline = time.monotonic() + 120
    while len(_rows(log)) < 2 and time.monotonic() < deadline and proc.poll() is None:
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
    args = ("mnist-l1", "run", "--quick", "--latent-dims", "2", "--no-export")
    env = {**os.environ, "KERAS_CLUST_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "keras_clust.cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    logs = []
    while not logs and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        logs = [p for p in (tmp_path / "runs" / "mnist-l1").glob(".*.partial/backup/*/epochs.json") if _rows(p)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert logs, "the run never finished an epoch"
    (partial,) = (tmp_path / "runs" / "mnist-l1").glob(".*.partial")  # a killed run leaves its folder

    res = cli("mnist-l1", "run", "--resume", str(partial), "--tensorboard", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming run" in res.stderr
    run = tmp_path / "runs" / "mnist-l1" / partial.name[1:-len(".partial")]
    assert run.is_dir() and not partial.exists() and not (run / "backup").exists()
    assert list((run / "tensorboard").glob("*/train/events.out.tfevents.*"))  # the fits trained after the resume
    epochs = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    header, rows = epochs[0], epochs[1:]
    col = header.index("epoch")
    assert sorted(int(r[col]) for r in rows) == list(range(1, len(rows) + 1)) and len(rows) == 2  # quick: 2 epochs
    assert json.loads((run / "config.json").read_text())["quick"] is True  # the saved config, not the defaults

    again = cli("mnist-l1", "run", "--resume", str(run), cwd=tmp_path)
    assert_one_line_error(again, 2, "--resume", "finished run folder")
