import json
import stat

import numpy as np
import pytest

from keras_clust.errors import DataError, UsageError
from keras_clust.files import append_json_row, atomic_save_npz, atomic_write_text, rows_to_csv, to_jsonable, write_json
from keras_clust.markdown import markdown_table
from keras_clust.run_folder import RunFolder, check_writable, find_run
from keras_clust.seeding import set_seed


def _complete(run):
    run.write_config({"a": 1})
    run.write_metrics({"acc": np.float32(0.5), "nan": float("nan")})
    run.write_history([{"epoch": 1, "loss": 0.3}, {"epoch": 2, "loss": 0.2, "val_loss": 0.25}])
    run.write_report("# r\n")


def test_run_folder_commits_complete(tmp_path):
    with RunFolder(tmp_path, "exp", seed=3, run_id="r1") as run:
        _complete(run)
        assert run.work.name == ".r1.partial" and not run.path.exists()
    assert run.path == tmp_path / "exp" / "r1"
    assert sorted(p.name for p in run.path.iterdir()) == [
        "config.json",
        "figures",
        "history.csv",
        "metrics.json",
        "report.md",
    ]
    config = json.loads((run.path / "config.json").read_text())
    assert config["run_id"] == "r1" and "tensorflow" in config["versions"]
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics == {"acc": 0.5, "nan": None}
    assert (run.path / "history.csv").read_text().splitlines() == ["epoch,loss,val_loss", "1,0.3,", "2,0.2,0.25"]
    assert find_run(tmp_path, "exp", None) == run.path
    assert find_run(tmp_path, "exp", "r1") == run.path


def test_failed_run_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(tmp_path, "exp", seed=0, run_id="r1") as run:
            run.write_config({"a": 1})
            raise KeyboardInterrupt
    assert list((tmp_path / "exp").iterdir()) == []
    with pytest.raises(DataError, match="no complete run"):
        find_run(tmp_path, "exp", None)


def test_run_ids_do_not_collide(tmp_path):
    with RunFolder(tmp_path, "exp", seed=0, run_id="r") as a:
        _complete(a)
    with RunFolder(tmp_path, "exp", seed=0, run_id="r") as b:
        _complete(b)
    assert a.path.name == "r" and b.path.name == "r-2"


def test_incomplete_run_does_not_commit(tmp_path):
    with pytest.raises(RuntimeError, match="missing"):
        with RunFolder(tmp_path, "exp", seed=0):
            pass


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write to"):
        check_writable(blocker / "runs")


def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    import os

    path = atomic_write_text(tmp_path / "a.json", "old")

    def fail(*args):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_json(path, {"x": 1})
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_npz_written_atomically(tmp_path, monkeypatch):
    arrays = {"a": np.arange(3)}
    path = atomic_save_npz(tmp_path / "d" / "x.npz", arrays)
    with np.load(path) as npz:
        np.testing.assert_array_equal(npz["a"], [0, 1, 2])
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a data file, readable by every user

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        atomic_save_npz(tmp_path / "d" / "y.npz", arrays)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.npz"]


def test_append_json_row_keeps_the_first_header_and_every_row(tmp_path):
    path = tmp_path / "study.json"
    append_json_row(path, {"acc": np.float32(0.5)}, {"machine": {"cores": 2}})
    append_json_row(path, {"acc": 0.75}, {"machine": {"cores": 8}})  # the header is written once
    assert json.loads(path.read_text()) == {"machine": {"cores": 2}, "rows": [{"acc": 0.5}, {"acc": 0.75}]}


def test_to_jsonable_makes_numpy_values_and_paths_plain(tmp_path):
    value = {1: (np.float32(0.5), np.arange(2)), "p": tmp_path, "nan": float("nan"), "inf": -np.inf}
    plain = to_jsonable(value)
    assert plain == {"1": [0.5, [0, 1]], "p": str(tmp_path), "nan": None, "inf": "-inf"}
    assert json.loads(json.dumps(plain)) == plain


def test_tables():
    assert rows_to_csv([{"a": 1}, {"b": 2}]) == "a,b\n1,\n,2\n"
    table = markdown_table([{"m": "x", "acc": 0.5}, {"m": "y", "acc": None}])
    assert table.splitlines() == ["| m | acc |", "|---|---|", "| x | 0.5000 |", "| y |  |"]


def test_same_seed_same_numbers():
    import keras

    def draw():
        set_seed(5)
        layer = keras.layers.Dense(3)
        layer.build((None, 2))
        return np.random.rand(), keras.ops.convert_to_numpy(layer.kernel)

    (a1, k1), (a2, k2) = draw(), draw()
    assert a1 == a2
    np.testing.assert_array_equal(k1, k2)


def test_interrupted_run_keeps_only_marked_files(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(tmp_path, "exp", seed=1, run_id="r") as run:
            run.file("study.db").write_bytes(b"trials")
            run.file("models/half.keras").write_bytes(b"x")
            kept = run.keep_on_abort("study.db")
            raise KeyboardInterrupt
    assert kept == tmp_path / "exp" / "r-study.db"
    assert kept.read_bytes() == b"trials"
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["r-study.db"]
