"""The command line as a user meets it: help, option errors, data errors."""

import numpy as np
import pytest

from helpers import assert_one_line_error, cli, cli_in_process
from keras_clust.cli import EXPERIMENTS, load_experiment
from keras_clust.data import write_idx
from keras_clust.data.registry import IDX_FILES


def test_top_level_help_lists_experiments():
    res = cli("--help")
    assert res.returncode == 0
    for name in EXPERIMENTS:
        assert name in res.stdout


def test_experiment_help_lists_actions_and_options():
    res = cli("mnist-l1", "--help")  # the console script itself; the action helps in this process
    assert res.returncode == 0
    for action in ("run", "evaluate", "export"):
        assert action in res.stdout
    run_help = cli_in_process("mnist-l1", "run", "--help").stdout
    for option in (
        "--latent-dims",
        "--epochs",
        "--batch-size",
        "--quick",
        "--seed",
        "--out",
        "--data-dir",
        "--models-dir",
    ):
        assert option in run_help
    for action in ("evaluate", "export"):
        assert "--run" in cli_in_process("mnist-l1", action, "--help").stdout


def test_each_experiment_is_registered_under_its_own_name():
    for name in EXPERIMENTS:
        experiment = load_experiment(name)
        assert experiment.name == name
        assert len({a.name for a in experiment.actions}) == len(experiment.actions)


def test_an_action_takes_its_help_from_its_docstring():
    from keras_clust.app import Action, action

    @action("go", config=None, add_arguments=lambda p: None)
    def go(args):
        """do the thing.

        More detail that the help line leaves out."""
        return 7

    assert isinstance(go, Action) and go.help == "do the thing" and go(None) == 7
    with pytest.raises(TypeError, match="docstring"):
        Action("bare", lambda args: 0, lambda p: None)
    with pytest.raises(TypeError, match="config="):
        action("no-options")(go.run)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--latent-dims", "0"], ["--latent-dims", "positive"]),
        (["--latent-dims", "2,x"], ["--latent-dims", "'x'"]),
        (["--latent-dims", ""], ["--latent-dims"]),
        (["--epochs", "-3"], ["--epochs", "positive"]),
        (["--batch-size", "many"], ["--batch-size", "not a int"]),
        (["--learning-rate", "nan"], ["--learning-rate", "finite"]),
        (["--val-fraction", "1.5"], ["--val-fraction", "between 0 and 1"]),
        (["--dataset", "cifar"], ["--dataset", "invalid choice"]),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, fragments):
    res = cli_in_process("mnist-l1", "run", "--out", tmp_path / "runs", *args, cwd=tmp_path)
    assert_one_line_error(res, 2, *fragments)
    assert not (tmp_path / "runs").exists()


def test_unknown_experiment_and_action(tmp_path):
    assert_one_line_error(cli("nope", cwd=tmp_path), 2, "invalid choice")
    assert_one_line_error(cli_in_process("mnist-l1", "fly", cwd=tmp_path), 2, "invalid choice")


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = cli_in_process("mnist-l1", "run", "--quick", "--dataset", "digits", "--out", blocker / "runs", cwd=tmp_path)
    assert_one_line_error(res, 2, "cannot write to", "--out")


def test_missing_data(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli_in_process("mnist-l1", "run", "--quick", "--data-dir", empty, "--out", tmp_path / "runs", cwd=tmp_path)
    assert_one_line_error(res, 1, "MNIST not found in", str(empty))
    assert list((tmp_path / "runs" / "mnist-l1").iterdir()) == []


def test_corrupt_idx(tmp_path):
    data = tmp_path / "fm"
    data.mkdir()
    for key, stem in IDX_FILES.items():
        shape = (10, 28, 28) if key.startswith("x") else (10,)
        write_idx(data / f"{stem}.gz", np.zeros(shape, np.uint8))
    broken = data / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:40])
    res = cli_in_process(
        "mnist-l1",
        "run",
        "--quick",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        data,
        "--out",
        tmp_path / "runs",
        cwd=tmp_path,
    )
    assert_one_line_error(res, 1, str(broken))
    assert list((tmp_path / "runs" / "mnist-l1").iterdir()) == []
    assert not (tmp_path / "saved_models").exists()


def test_evaluate_without_runs(tmp_path):
    res = cli_in_process("mnist-l1", "evaluate", "--out", tmp_path / "runs", cwd=tmp_path)
    assert_one_line_error(res, 1, "no complete run", "mnist-l1 run")


def test_share_and_seed_list_option_types():
    import argparse

    from keras_clust.option_types import seed_list, share

    assert share("0") == 0.0 and share("0.00") == 0.0 and share("0.25") == 0.25
    for bad in ("1", "1.5", "-0.1", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            share(bad)
    assert seed_list("0,1, 2,3,4") == (0, 1, 2, 3, 4)
    for bad in ("", "1,1", "-1,2", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            seed_list(bad)
