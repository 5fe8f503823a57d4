"""Settings declared once: parser, config, config.json and --config all come from one declaration."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.app import OneLineParser, config_arguments
from keras_clust.errors import DataError
from keras_clust.experiment import saved_config_defaults
from keras_clust.option_types import positive_int, positive_int_list
from keras_clust.settings import (
    RunOptions,
    add_settings,
    config_from_args,
    data_dir_setting,
    export_setting,
    quick_setting,
    seed_setting,
    setting,
    show_default,
)


@dataclass
class Toy:
    sizes: tuple[int, ...] = setting((2, 16), "latent sizes", type=positive_int_list)
    epochs: int = setting(200, "training epochs", type=positive_int, quick=2)
    n_clusters: int = setting(10, "clusters", type=positive_int, flag="--clusters")
    scaling: str = setting("standard", "code scaling", choices=("none", "standard"))
    data_dir: str | None = data_dir_setting()
    hidden: int = 7  # a plain field: saved, no option
    quick: bool = quick_setting()
    seed: int = seed_setting()
    export: bool = export_setting()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="toy")
    add_settings(parser, Toy)
    return parser.parse_args(argv)


def test_defaults_options_and_help_come_from_the_declaration():
    parser = OneLineParser(prog="toy")
    add_settings(parser, Toy)
    text = parser.format_help()
    for option, shown in [
        ("--sizes", "(default: 2,16)"),
        ("--epochs", "--quick caps it at 2 (default: 200)"),
        ("--clusters", "(default: 10)"),
        ("--data-dir", "(default: the known places)"),
    ]:
        assert option in text and shown in " ".join(text.split()), option
    assert "--hidden" not in text and "--export" not in text and "--no-export" in text
    assert _parse([]) == argparse.Namespace(
        sizes=(2, 16), epochs=200, n_clusters=10, scaling="standard", data_dir=None, quick=False, seed=0, export=True
    )


def test_config_from_args_reads_every_declared_field_and_caps_quick():
    cfg = config_from_args(Toy, _parse(["--clusters", "4", "--no-export", "--data-dir", "d/", "--epochs", "50"]))
    assert cfg == Toy(n_clusters=4, export=False, data_dir="d", epochs=50)
    quick = config_from_args(Toy, _parse(["--quick", "--epochs", "50"]))
    assert (quick.epochs, quick.quick) == (2, True)
    assert config_from_args(Toy, _parse(["--quick", "--epochs", "1"])).epochs == 1  # a cap, not a value
    assert config_from_args(Toy, _parse([]), hidden=3).hidden == 3


def test_bad_values_are_one_line_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(["--epochs", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs" in err and "positive integer" in err


def test_only_and_unknown_names():
    parser = OneLineParser(prog="toy")
    add_settings(parser, RunOptions, only=("out",))
    assert parser.parse_args([]) == argparse.Namespace(out=Path("runs"))
    with pytest.raises(TypeError, match="declares no setting nope"):
        add_settings(OneLineParser(prog="toy"), RunOptions, only=("nope",))


def test_show_default():
    assert [show_default(v) for v in [None, True, (1, 2), 1e-3, 0.1, Path("runs")]] == [
        "none",
        "on",
        "1,2",
        "0.001",
        "0.1",
        "runs/",
    ]


def test_every_run_action_offers_config_and_the_run_options():
    parser = OneLineParser(prog="toy")
    config_arguments(Toy)(parser)
    args = parser.parse_args(["--fast", "--strategy", "mirrored"])
    assert (args.fast, args.strategy, args.resume, args.tensorboard, args.out) == (
        True,
        "mirrored",
        None,
        False,
        Path("runs"),
    )


def _saved(tmp_path, **changes) -> Path:
    from keras_clust.apps.mnist_l1 import NAME, Config

    raw = {
        "experiment": NAME,
        "action": "run",
        "config_version": Config.CONFIG_VERSION,
        **dataclasses.asdict(Config(epochs=7, latent_dims=(3, 5), n_clusters=4, seed=9)),
        "data": None,
        "fast": False,
        **changes,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_config_file_is_the_command_lines_defaults_and_options_override_it(tmp_path):
    """What ``--config`` gives a run: the saved settings, except those given as options."""
    from keras_clust.apps.mnist_l1 import NAME, Config
    from keras_clust.cli import build_parser, load_experiment

    path = _saved(tmp_path)
    parser = build_parser(load_experiment(NAME))
    argv = [NAME, "run", "--config", str(path), "--epochs", "3"]
    args = parser.parse_args(argv)
    args._parser.set_defaults(**saved_config_defaults(Config, path, NAME, "run"))
    args = parser.parse_args(argv)
    cfg = config_from_args(Config, args)
    assert cfg == Config(epochs=3, latent_dims=(3, 5), n_clusters=4, seed=9)


def test_config_file_of_another_experiment_or_version_is_refused(tmp_path):
    from keras_clust.apps.mnist_l1 import NAME, Config

    with pytest.raises(DataError, match="holds the settings of 'gmm-vae run', not 'mnist-l1 run'"):
        saved_config_defaults(Config, _saved(tmp_path, experiment="gmm-vae"), NAME, "run")
    with pytest.raises(DataError, match="unknown keys epoch_count"):
        saved_config_defaults(Config, _saved(tmp_path, epoch_count=3), NAME, "run")
    with pytest.raises(DataError, match="does not exist"):
        saved_config_defaults(Config, tmp_path / "missing.json", NAME, "run")


def test_config_option_through_the_command(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    result = cli_in_process("mnist-l1", "run", "--config", str(bad), "--out", str(tmp_path / "runs"))
    assert_one_line_error(result, 1, "cannot read")
    assert not (tmp_path / "runs").exists()
