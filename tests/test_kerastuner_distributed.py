"""KerasTuner's distributed mode for fashion-cae tune: a chief oracle and two workers on
loopback share one search through one tuner folder."""

import json
import os
import socket
import subprocess

import pytest

from helpers import SCRIPT, assert_one_line_error, cli

needs_data = pytest.mark.needs_dataset("fashion-mnist")


@needs_data
def test_a_chief_and_two_workers_share_one_search(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["fashion-cae", "tune", "--quick", "--engine", "kerastuner", "--tuner", "random", "--trials", "4",
            "--final-epochs", "0", "--kerastuner-dir", str(tmp_path / "kt")]  # fmt: skip
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = {"KERAS_CLUST_OFFLINE": "1", "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port)}  # fmt: skip
        procs[tuner_id] = subprocess.Popen([str(SCRIPT), *args], cwd=tmp_path, env={**os.environ, **env},
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    outs = {k: p.communicate(timeout=600) for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, (k, outs[k][1][-3000:])
    trained = {k: int(outs[k][0].split("trained ")[1].split()[0]) for k in ("tuner0", "tuner1")}
    assert sum(trained.values()) == 4 and min(trained.values()) >= 1, trained  # every trial once, both worked
    (run,) = (tmp_path / "runs" / "fashion-cae").iterdir()  # only the chief writes a run folder
    e = json.loads((run / "metrics.json").read_text())["engines"]["kerastuner"]
    assert e["summary"]["trials"] == 4 and e["summary"]["complete"] == 4
    assert sorted(t["number"] for t in e["trials"]) == [0, 1, 2, 3]
    assert all(len(t["curve"]) == 1 for t in e["trials"])  # the workers' epochs, read back by the chief
    assert e["test"]["checkpoint_test_mse"] > 0  # the best trial's checkpoint, written by a worker


def test_distributed_mode_needs_its_three_variables_and_a_shared_folder(tmp_path):
    res = cli("fashion-cae", "tune", "--quick", "--engine", "kerastuner", cwd=tmp_path,
              env={"KERASTUNER_TUNER_ID": "tuner0"})  # fmt: skip
    assert_one_line_error(res, 2, "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    res = cli("fashion-cae", "tune", "--quick", "--engine", "both", cwd=tmp_path,
              env={"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1"})
    assert_one_line_error(res, 2, "--engine kerastuner", "--kerastuner-dir")
    assert not (tmp_path / "runs").exists()
