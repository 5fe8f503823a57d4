"""The pieces every experiment app shares: actions and the common options.

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

from keras_clust.settings import (
    RunOptions,
    add_settings,
    data_dir_setting,
    models_dir_setting,
    quick_setting,
    seed_setting,
)


@dataclass(frozen=True)
class Action:
    """One CLI action of an experiment (``run``, ``tune``, ``evaluate``, ``export``).

    ``help`` is the first line of ``run``'s docstring unless given; ``add_arguments`` is
    ``config_arguments(config)`` unless given. An action calls through to ``run``."""

    name: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    #: The config dataclass whose declared settings the action's options are: with it the
    #: action takes ``--config FILE`` (a saved ``config.json`` as its defaults).
    config: type | None = None
    help: str | None = None

    def __post_init__(self) -> None:
        if self.help is None:
            doc = (self.run.__doc__ or "").strip()
            if not doc:
                raise TypeError(f"action {self.name!r}: give help= or a docstring to its function")
            object.__setattr__(self, "help", doc.splitlines()[0].rstrip("."))
        if self.add_arguments is None:
            if self.config is None:
                raise TypeError(f"action {self.name!r}: give add_arguments= or config=")
            object.__setattr__(self, "add_arguments", config_arguments(self.config))

    def __call__(self, args: argparse.Namespace) -> int:
        return self.run(args)


def action(
    name: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None, config: type | None = None
) -> Callable[[Callable[[argparse.Namespace], int]], Action]:
    """Decorator: the function becomes the action ``name``, its docstring's first line the help."""
    return lambda run: Action(name, run, add_arguments, config)


@dataclass(frozen=True)
class Experiment:
    """An experiment app: its name, its module docstring and its actions.

    The description under ``keras-clust <name> --help`` is the docstring after its first
    paragraph; the one-line summary is declared once, in :data:`keras_clust.cli.EXPERIMENTS`.
    ``default_action`` names the action run when none is given (``keras-clust cluster-bench
    --dataset digits`` is ``keras-clust cluster-bench run --dataset digits``)."""

    name: str
    doc: str
    actions: list[Action] = field(default_factory=list)
    default_action: str | None = None

    @property
    def description(self) -> str:
        parts = self.doc.strip().split("\n\n", 1)
        return parts[-1]


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
