"""KerasTuner's distributed mode for fashion-cae tune and lj-fluid tune: a chief oracle and two
workers on loopback share one search through one tuner folder."""

import json
import os
import shutil
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
        env = {"KERAS_CLUST_OFFLINE": "1", "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port)}  # fmt: skip
        procs[tuner_id] = subprocess.Popen([str(SCRIPT), *args], cwd=cwd, env={**os.environ, **env},
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    outs = {k: p.communicate(timeout=600) for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, (k, outs[k][1][-3000:])
    return outs


def trained_by_workers(outs) -> dict[str, int]:
    return {k: int(outs[k][0].split("trained ")[1].split()[0]) for k in ("tuner0", "tuner1")}


@needs_data
def test_a_chief_and_two_workers_share_one_search(tmp_path):
    outs = chief_and_workers(["fashion-cae", "tune", "--quick", "--engine", "kerastuner", "--tuner", "random",
                              "--trials", "4", "--final-epochs", "0", "--kerastuner-dir", tmp_path / "kt"],
                             tmp_path)  # fmt: skip
    trained = trained_by_workers(outs)
    assert sum(trained.values()) == 4 and min(trained.values()) >= 1, trained  # every trial once, both worked
    (run,) = (tmp_path / "runs" / "fashion-cae").iterdir()  # only the chief writes a run folder
    e = json.loads((run / "metrics.json").read_text())["engines"]["kerastuner"]
    assert e["summary"]["trials"] == 4 and e["summary"]["complete"] == 4
    assert sorted(t["number"] for t in e["trials"]) == [0, 1, 2, 3]
    assert all(len(t["curve"]) == 1 and t["seconds"] is not None for t in e["trials"])  # from the workers' files
    assert e["test"]["checkpoint_test_mse"] > 0  # the best trial's checkpoint, written by a worker


def test_lj_fluid_hyperband_shared_by_a_chief_and_two_workers(tmp_path):
    res = cli("lj-fluid", "simulate", "--quick", "--particles", "8", "--box", "4", "--gamma", "1,3",
              "--samples", "120", "--replicas", "2", "--output", "d.npz", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    shutil.rmtree(tmp_path / "runs")
    outs = chief_and_workers(["lj-fluid", "tune", "--quick", "--dataset", "d.npz", "--kerastuner-dir", "kt"],
                             tmp_path)  # fmt: skip
    trained = trained_by_workers(outs)
    (run,) = (tmp_path / "runs" / "lj-fluid").iterdir()  # the chief's
    m = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "config.json").read_text())["distributed"] is True
    assert m["algorithm"] == "Hyperband" and m["summary"]["complete"] >= 2
    assert sum(trained.values()) == m["summary"]["trials"], trained  # every trial trained once, by a worker
    left = {int(p.stem[6:]) for p in (tmp_path / "kt" / "lj_grid_vae" / "worker_curves").glob("trial_*.json")}
    assert left == {t["number"] for t in m["trials"]}
    for t in m["trials"]:  # each trial's curve as its worker saw it, epoch by epoch, not KerasTuner's best value
        assert t["seconds"] is not None and len(t["curve"]) >= 1
        assert t["state"] != "complete" or t["value"] == t["curve"][-1]
    assert m["use_best"].startswith("keras-clust lj-fluid run --grid-h ")
    res = cli("lj-fluid", "tune", "--quick", cwd=tmp_path, env={"KERASTUNER_TUNER_ID": "tuner0",
              "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"})  # fmt: skip
    assert_one_line_error(res, 2, "--kerastuner-dir", "--dataset", "lj-fluid simulate")


def test_distributed_mode_needs_its_three_variables_and_a_shared_folder(tmp_path):
    res = cli("fashion-cae", "tune", "--quick", "--engine", "kerastuner", cwd=tmp_path,
              env={"KERASTUNER_TUNER_ID": "tuner0"})  # fmt: skip
    assert_one_line_error(res, 2, "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    res = cli("fashion-cae", "tune", "--quick", "--engine", "both", cwd=tmp_path,
              env={"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"})
    assert_one_line_error(res, 2, "--engine kerastuner", "--kerastuner-dir")
    assert not (tmp_path / "runs").exists()
