"""The pieces every experiment app shares: actions, common options, option types.

An experiment is an :class:`Experiment` holding :class:`Action` objects, each with an
``add_arguments(parser)`` and a ``run(args) -> int``; :mod:`keras_clust.cli`
dispatches to them. What an action does with a run (seeding, the run folder, the report
tail, exports, reading a saved run back) is :mod:`keras_clust.experiment`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from keras_clust.option_types import (  # noqa: F401 (re-exported for the apps)
    fraction,
    names_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    seed_list,
    share,
)
from keras_clust.settings import (
    RunOptions,
    add_settings,
    data_dir_setting,
    models_dir_setting,
    quick_setting,
    run_options,  # noqa: F401 (re-exported for the apps)
    seed_setting,
)


@dataclass(frozen=True)
class Action:
    """One CLI action of an experiment (``run``, ``tune``, ``evaluate``, ``export``)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: The config dataclass whose declared settings the action's options are: with it the
    #: action takes ``--config FILE`` (a saved ``config.json`` as its defaults).
    config: type | None = None


@dataclass(frozen=True)
class Experiment:
    """An experiment app: its name, a one-line summary, a description and its actions.

    ``default_action`` names the action run when none is given (``keras-clust cluster-bench
    --dataset digits`` is ``keras-clust cluster-bench run --dataset digits``)."""

    name: str
    summary: str
    description: str
    actions: list[Action] = field(default_factory=list)
    default_action: str | None = None


def config_arguments(
    config: type, *extra: Callable[[argparse.ArgumentParser], None], run: bool = True
) -> Callable[[argparse.ArgumentParser], None]:
    """``add_arguments`` of an action whose options are the declared settings of ``config``
    (after ``--out`` and, with ``run``, the :class:`~keras_clust.settings.RunOptions`), then
    whatever the ``extra`` functions add."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_settings(parser, RunOptions, only=("out",))
        if run:
            add_settings(parser, RunOptions, only=("tensorboard", "fast", "strategy", "resume"))
        add_settings(parser, config)
        for more in extra:
            more(parser)

    return add_arguments


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line: what is wrong and where to look."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


@dataclass
class CommonSettings:
    """The settings every action that computes something has (its config declares them too,
    with the same declarations)."""

    seed: int = seed_setting()
    quick: bool = quick_setting()
    data_dir: str | None = data_dir_setting()


def add_tensorboard_argument(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, RunOptions, only=("tensorboard",))


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="run folder or run id to use (default: the newest complete run)")


def add_saved_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of actions that read a finished run: ``--out`` and ``--run``."""
    add_settings(parser, RunOptions, only=("out",))
    add_run_argument(parser)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``export``: the run to read and where the SavedModels go."""
    add_saved_run_arguments(parser)
    add_settings(parser, dataclasses.make_dataclass("ModelsDir", [("models_dir", str, models_dir_setting())]))
