"""KerasTuner's distributed mode for fashion-cae tune and lj-fluid tune: a chief oracle and two
workers on loopback share one search through one tuner folder."""

import json
import os
import socket
import subprocess

import pytest

from helpers import SCRIPT, assert_one_line_error, cli

needs_data = pytest.mark.needs_dataset("fashion-mnist")


def chief_and_workers(args: list[str], cwd) -> dict[str, tuple[str, str]]:
    """Run ``keras-clust *args`` as a chief and workers tuner0 and tuner1 on a free loopback port;
    returns each one's (stdout, stderr) after checking they all exited 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {
            "KERAS_CLUST_OFFLINE": "1",
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(port),
        }
        procs[tuner_id] = subprocess.Popen(
            [str(SCRIPT), *args],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outs = {k: p.communicate(timeout=600) for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, (k, outs[k][1][-3000:])
    return outs


def trained_by_workers(outs) -> dict[str, int]:
    return {k: int(outs[k][0].split("trained ")[1].split()[0]) for k in ("tuner0", "tuner1")}


@needs_data
def test_a_chief_and_two_workers_share_one_search(tmp_path):
    outs = chief_and_workers(
        [
            "fashion-cae",
            "tune",
            "--quick",
            "--engine",
            "kerastuner",
            "--tuner",
            "random",
            "--trials",
            "4",
            "--final-epochs",
            "0",
            "--kerastuner-dir",
            tmp_path / "kt",
        ],
        tmp_path,
    )
    trained = trained_by_workers(outs)
    assert sum(trained.values()) == 4 and min(trained.values()) >= 1, trained  # every trial once, both worked
    (run,) = (tmp_path / "runs" / "fashion-cae").iterdir()  # only the chief writes a run folder
    e = json.loads((run / "metrics.json").read_text())["engines"]["kerastuner"]
    assert e["summary"]["trials"] == 4 and e["summary"]["complete"] == 4
    assert sorted(t["number"] for t in e["trials"]) == [0, 1, 2, 3]
    assert all(len(t["curve"]) == 1 and t["seconds"] is not None for t in e["trials"])  # from the workers' files
    # the best trial's checkpoint, written by a worker: on the test set it scores near its validation loss
    assert e["test"]["checkpoint_test_mse"] == pytest.approx(e["summary"]["best_value"], rel=0.25)


# slow: 65 s: KerasTuner's distributed mode is tested on fashion-cae's chief and two workers, local_workers'
# failure path on its own
@pytest.mark.slow
def test_lj_fluid_tune_on_two_local_workers(tmp_path):
    """``--workers 2``: this process is the chief on loopback, two workers train on the simulation it
    left in its run folder, and the record has each trial's curve as its worker saw it."""
    res = cli(
        "lj-fluid",
        "tune",
        "--quick",
        "--particles",
        "8",
        "--box",
        "4",
        "--gamma",
        "1,3",
        "--samples",
        "120",
        "--replicas",
        "2",
        "--workers",
        "2",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "lj-fluid").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert config["distributed"] is True and config["workers"] == 2 and (run / "dataset.npz").is_file()
    assert m["algorithm"] == "Hyperband" and m["summary"]["complete"] >= 2
    trained = {line.split()[2].rstrip(":"): int(line.split("trained ")[1].split()[0]) for line in m["worker_reports"]}
    assert set(trained) == {"tuner0", "tuner1"} and sum(trained.values()) == m["summary"]["trials"], trained
    left = {int(p.stem[6:]) for p in (run / "kerastuner" / "lj_grid_vae" / "worker_curves").glob("trial_*.json")}
    assert left == {t["number"] for t in m["trials"]}  # every trial trained by a worker, none by the chief
    for t in m["trials"]:  # each trial's curve as its worker saw it, epoch by epoch, not KerasTuner's best value
        assert t["seconds"] is not None and len(t["curve"]) >= 1
        assert t["state"] != "complete" or t["value"] == t["curve"][-1]
    assert m["use_best"].startswith("keras-clust lj-fluid run --grid-h ")
    res = cli(
        "lj-fluid",
        "tune",
        "--quick",
        cwd=tmp_path,
        env={"KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"},
    )
    assert_one_line_error(res, 2, "--kerastuner-dir", "--dataset", "lj-fluid simulate")
    res = cli(
        "lj-fluid",
        "tune",
        "--quick",
        "--workers",
        "2",
        "--dataset",
        "x.npz",
        "--kerastuner-dir",
        "kt",
        cwd=tmp_path,
        env={"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"},
    )
    assert_one_line_error(res, 2, "--workers", "without --workers")


def test_distributed_mode_needs_its_three_variables_and_a_shared_folder(tmp_path):
    res = cli(
        "fashion-cae", "tune", "--quick", "--engine", "kerastuner", cwd=tmp_path, env={"KERASTUNER_TUNER_ID": "tuner0"}
    )
    assert_one_line_error(res, 2, "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    res = cli(
        "fashion-cae",
        "tune",
        "--quick",
        "--engine",
        "both",
        cwd=tmp_path,
        env={"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"},
    )
    assert_one_line_error(res, 2, "--engine kerastuner", "--kerastuner-dir")
    assert not (tmp_path / "runs").exists()


def test_a_local_worker_that_dies_stops_the_waiting_chief_and_the_other_workers(tmp_path):
    import sys
    import time

    from keras_clust.errors import DataError
    from keras_clust.tuning.distributed import local_workers

    dies = (
        "import os, sys, time\n"
        "if os.environ['KERASTUNER_TUNER_ID'] == 'tuner0': sys.exit('keras-clust: error: no data here')\n"
        "time.sleep(120)"
    )
    before = {k: os.environ.get(k) for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_PORT")}
    start = time.monotonic()
    with pytest.raises(DataError, match=r"worker tuner0 failed: keras-clust: error: no data here \(its output: "):
        with local_workers([sys.executable, "-c", dies], 2, tmp_path / "logs"):
            assert os.environ["KERASTUNER_TUNER_ID"] == "chief"
            time.sleep(120)  # a chief serving its oracle, which would wait for the dead worker's trial forever
    assert time.monotonic() - start < 30  # woken, and tuner1 (asleep) stopped
    assert {k: os.environ.get(k) for k in before} == before  # the chief's variables are gone again
    with local_workers([sys.executable, "-c", "print('tuner done')"], 2, tmp_path / "logs") as reports:
        pass
    assert reports == ["tuner done", "tuner done"]
    assert (tmp_path / "logs" / "tuner1.log").read_text() == "tuner done\n"
