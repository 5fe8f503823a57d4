"""A killed Lennard-Jones simulation goes on from its checkpoint, bitwise as if never interrupted.

The library tests stop :func:`simulate` right after each of its checkpoints in turn (kernel calls
made tiny so that every phase is checkpointed: within the preliminary run, after a doubling,
within the sampling run, between gammas) and continue it from the file; the command-line test
SIGKILLs ``keras-clust lj-fluid simulate`` once its first checkpoint is on disk and resumes it.
"""

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from helpers import SCRIPT, cli_in_process
from keras_clust.errors import DataError, UsageError
from keras_clust.lj import sampling as lj_sampling
from keras_clust.lj.checkpoint import Checkpoint
from keras_clust.lj.dataset import load_lj_dataset
from keras_clust.lj.monte_carlo import LJSystem
from keras_clust.lj.sampling import MAX_DOUBLINGS, simulate

# 2 gammas, 2 replicas of 5 particles; 20 preliminary sweeps are too few to trust a lag, so both double
SYSTEM, GAMMAS = LJSystem(5, 4.0), [0.5, 2.0]
OPTIONS = {"replicas": 2, "kick": 0.3, "seed": 5, "preliminary_sweeps": 20, "progress": False}
TIMINGS = ("seconds", "kernel_seconds", "moves_per_second")


class Killed(Exception):
    pass


def run(checkpoint=None):
    return simulate(SYSTEM, GAMMAS, 12, **OPTIONS, checkpoint=checkpoint, checkpoint_every=0.0)


def assert_identical(a, b):
    for name in ("positions", "gamma", "energy", "replica"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.settings == b.settings
    for da, db in zip(a.diagnostics, b.diagnostics, strict=True):
        for name in da.ARRAYS:
            assert np.array_equal(getattr(da, name), getattr(db, name)), name
        sa, sb = da.scalars(), db.scalars()
        assert {k: v for k, v in sa.items() if k not in TIMINGS} == {k: v for k, v in sb.items() if k not in TIMINGS}


@pytest.fixture
def tiny_calls(monkeypatch):
    """Kernel calls of 300 moves (30 preliminary sweeps, or 1 saved configuration per replica), each checkpointed."""
    monkeypatch.setattr(lj_sampling, "_MOVES_PER_CALL", 300)


@pytest.fixture
def writes(monkeypatch):
    """Where the chains were at each checkpoint written: (finished gammas, phase, sweeps, saved per replica)."""
    seen, write = [], Checkpoint.write

    def spy(self, finished, current):
        write(self, finished, current)
        at = (None, None, None) if current is None else (current.phase, int(current.chains["sweeps"]), current.done)
        seen.append((len(finished), *at))
        if len(seen) == spy.kill_after:
            raise Killed

    spy.kill_after = None
    monkeypatch.setattr(Checkpoint, "write", spy)
    return seen, spy


def where(checkpoint: tuple) -> str:
    """The phase of a checkpoint seen by the ``writes`` spy."""
    _, phase, sweeps, done = checkpoint
    if phase is None:
        return "between gammas"
    if phase == "sampling":
        return "within the sampling run" if done else "at the start of the sampling run"
    # the preliminary run ends after 20 sweeps, then after each of its doublings
    ends = {20 << d for d in range(MAX_DOUBLINGS + 1)}
    return "after a preliminary segment" if sweeps in ends else "within a preliminary segment"


def test_resumed_after_a_checkpoint_of_any_phase_is_bitwise_the_uninterrupted_run(tmp_path, tiny_calls, writes):
    seen, spy = writes
    reference = run()
    assert all(d.preliminary_sweeps > OPTIONS["preliminary_sweeps"] for d in reference.diagnostics)  # doubled
    assert_identical(run(tmp_path / "full.npz"), reference)
    trail = list(seen)
    assert trail[-1] == (2, None, None, None)  # the last checkpoint holds both gammas
    phases = (
        "between gammas",
        "within the sampling run",
        "at the start of the sampling run",
        "after a preliminary segment",
        "within a preliminary segment",
    )
    # killed right after checkpoint k, so everything after it is lost: every third checkpoint, the
    # first of each phase (the longer preliminary runs can put every third past some phases) and the
    # second gamma's last preliminary segment
    firsts = {phase: next((k for k in range(1, len(trail)) if where(trail[k - 1]) == phase), None) for phase in phases}
    assert None not in firsts.values(), firsts
    second = [k for k in range(1, len(trail)) if trail[k - 1][0] == 1 and trail[k - 1][1] == "preliminary"]
    kills = sorted({*range(1, len(trail), 3), *firsts.values(), second[-1]})
    for k in kills:
        path = tmp_path / f"kill{k}.npz"
        spy.kill_after, seen[:] = k, []
        with pytest.raises(Killed):
            run(path)
        spy.kill_after, seen[:] = None, []
        assert_identical(run(path), reference)
        assert seen == trail[k:], k  # it went on from checkpoint k: nothing redone, nothing skipped

    # a finished checkpoint only assembles the result: no chain moves again
    spy.kill_after, seen[:] = 1, []
    assert_identical(run(tmp_path / "full.npz"), reference)
    assert seen == []


def test_another_simulations_checkpoint_is_refused_in_one_line(tmp_path):
    path = tmp_path / "ck.npz"
    run(path)
    with pytest.raises(UsageError) as info:
        simulate(SYSTEM, GAMMAS, 14, **{**OPTIONS, "seed": 6}, checkpoint=path)
    message = str(info.value)
    assert "\n" not in message and "samples_per_gamma 12 there, 14 here; seed 5 there, 6 here" in message
    assert "delete it to start afresh" in message and path.is_file()  # refused, not overwritten
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable checkpoint") as info:
        run(path)
    assert "\n" not in str(info.value)


def test_killed_command_resumes_and_removes_its_checkpoint(tmp_path):
    options = [
        "--particles",
        "30",
        "--box",
        "5",
        "--gamma",
        "1,4",
        "--samples",
        "64",
        "--replicas",
        "2",
        "--preliminary-sweeps",
        "2000",
        "--seed",
        "1",
    ]  # about 2 s of chains once compiled
    proc = subprocess.Popen(
        [str(SCRIPT), "lj-fluid", "simulate", *options, "--output", "d.npz", "--checkpoint-every", "0"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    runs = tmp_path / "runs" / "lj-fluid"
    deadline = time.monotonic() + 120
    while not list(runs.glob(".*.partial/backup/simulation.npz")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint in 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL, "the simulation ended before it could be killed"
    (partial,) = runs.glob(".*.partial")
    assert not (tmp_path / "d.npz").exists() and (partial / "backup" / "simulation.npz").is_file()

    # an option that contradicts the interrupted run is refused (in-process: the CLI prints this one line)
    from keras_clust.cli import build_parser, load_experiment

    args = build_parser(load_experiment("lj-fluid")).parse_args(
        ["lj-fluid", "simulate", "--resume", str(partial), "--samples", "100", "--gamma", "1,4"]
    )
    with pytest.raises(UsageError) as info:
        args._run(args)
    assert "\n" not in str(info.value) and "ran with --samples 64, not --samples 100; drop" in str(info.value)

    res = cli_in_process("lj-fluid", "simulate", "--resume", partial, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "continuing the simulation of checkpoint" in res.stderr
    final = runs / partial.name[1 : -len(".partial")]
    assert final.is_dir() and not partial.exists() and not (final / "backup").exists()  # checkpoint removed
    assert json.loads((final / "config.json").read_text())["options"]["samples"] == 64
    expected = simulate(LJSystem(30, 5.0), [1.0, 4.0], 32, replicas=2, seed=1, preliminary_sweeps=2000, progress=False)
    for got in (load_lj_dataset(tmp_path / "d.npz"), load_lj_dataset(final / "dataset.npz")):
        for name in ("positions", "gamma", "energy", "replica"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), name
