"""The pieces every experiment app shares: actions, common options, option types.

An experiment is an :class:`Experiment` holding :class:`Action` objects, each with an
``add_arguments(parser)`` and a ``run(args) -> int``; :mod:`keras_clust.cli`
dispatches to them. What an action does with a run (seeding, the run folder, the report
tail, exports, reading a saved run back) is :mod:`keras_clust.experiment`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Action:
    """One CLI action of an experiment (``run``, ``tune``, ``evaluate``, ``export``)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


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


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line: what is wrong and where to look."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _number(kind: type, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(float, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def names_list(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """argparse type factory: comma-separated distinct names from ``allowed``, e.g. ``u,v``."""

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(p.strip() for p in text.split(",") if p.strip())
        bad = [v for v in values if v not in allowed]
        if not values or bad or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"needs distinct names from {','.join(allowed)}; got {text!r}")
        return values

    return parse


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = _number(float, text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def positive_int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated positive integers, e.g. ``2,16,256``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("needs at least one positive integer, e.g. 2,16,256")
    values = []
    for part in parts:
        try:
            values.append(positive_int(part))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r}: {exc}") from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a value")
    return tuple(values)


def share(text: str) -> float:
    """argparse type: a share in [0, 1)."""
    value = _number(float, text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated distinct seeds >= 0, e.g. ``0,1,2,3,4``."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"needs distinct integers >= 0, e.g. 0,1,2,3,4; got {text!r}")
    return values


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every action shares: seed, output folder, data folder, quick mode."""
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of every random choice in the run (default: 0)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding the dataset files; only this folder is searched when given (default: the known places)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a small subset of the data and 1-2 epochs")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options of every ``run`` about how it runs rather than what it computes: ``--resume``
    (continue a killed run from its ``.partial`` folder), ``--tensorboard``, ``--strategy`` and
    ``--fast``; :func:`run_options` reads them."""
    add_tensorboard_argument(parser)
    parser.add_argument(
        "--fast",
        action="store_true",
        help="train for speed: TensorFlow's op determinism off, the fitted models compiled with "
        "XLA (not under --strategy) and 32 batches per call; the same seed then no longer "
        "gives bitwise-equal numbers; metrics.json lists what each fit ran with (default: "
        "deterministic)",
    )
    parser.add_argument(
        "--strategy",
        choices=("none", "mirrored", "multiworker"),
        default="none",
        help="train with tf.distribute: mirrored copies the model on every GPU of this machine "
        "(the CPU without one) and --batch-size is then per replica; multiworker is refused "
        "until Keras 3's fit supports it (default: none)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_FOLDER",
        help="continue the run killed in this .<run-id>.partial folder with its saved config: "
        "trained models are kept and the interrupted training goes on from its last "
        "finished epoch (options other than --tensorboard are ignored, a --fast run resumes "
        "fast; --strategy is refused)",
    )


def add_tensorboard_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="log every training (every trial of a search) for TensorBoard under the run "
        "folder's tensorboard/ (scalars per epoch, no histograms); watch with: tensorboard "
        "--logdir runs/",
    )


def tensorboard_dir(args: argparse.Namespace, run_folder) -> Path | None:
    """Where ``--tensorboard`` logs go in a run folder (a :class:`~keras_clust.runs.RunFolder`), or None."""
    return run_folder.work / "tensorboard" if getattr(args, "tensorboard", False) else None


def run_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`keras_clust.experiment.run_experiment` that
    :func:`add_run_options` declared."""
    return {"resume": args.resume, "tensorboard": args.tensorboard, "strategy": args.strategy, "fast": args.fast}


def add_models_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("saved_models"),
        help="root of exported SavedModels (default: saved_models/)",
    )


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="run folder or run id to use (default: the newest complete run)")


def add_saved_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of actions that read a finished run: ``--out`` and ``--run``."""
    parser.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    add_run_argument(parser)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``export``: the run to read and where the SavedModels go."""
    add_saved_run_arguments(parser)
    add_models_dir_argument(parser)


def add_study_arguments(parser: argparse.ArgumentParser, study_name: str, study_help: str) -> None:
    """Where an Optuna search lives and who works on it: ``--storage``, ``--study-name``,
    ``--workers`` and the heartbeat that retries the trials of a worker that died."""
    from keras_clust.tuning.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL

    g = parser.add_argument_group("study storage and workers (Optuna)")
    g.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna storage shared by every worker: sqlite:///study.db, "
        "postgresql+psycopg://user@host/db (several machines), journal:FILE (several processes, "
        "no server) (default: study.db in the run folder)",
    )
    g.add_argument(
        "--study-name",
        default=study_name,
        help=f"{study_help}; a study of this name in --storage is joined: its finished trials count "
        f"towards the total (default: {study_name})",
    )
    g.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes optimising the study at once on this machine; the same command on "
        "other machines with the same --storage and --study-name adds more (default: 1)",
    )
    g.add_argument(
        "--heartbeat-interval",
        type=positive_int,
        default=HEARTBEAT_INTERVAL,
        metavar="S",
        help=f"seconds between a running trial's heartbeats (RDB storages) (default: {HEARTBEAT_INTERVAL})",
    )
    g.add_argument(
        "--grace-period",
        type=positive_int,
        default=GRACE_PERIOD,
        metavar="S",
        help="a running trial without a heartbeat for this long belonged to a worker that died: it is "
        f"failed and retried with the same parameters (default: {GRACE_PERIOD})",
    )


def add_cluster_argument(parser: argparse.ArgumentParser, dest: str = "cluster") -> None:
    """``--cluster``: besides KMeans on the codes, also cluster with DEC, IDEC or N2D on the
    experiment's own encoder (``dest``: the attribute it is stored in)."""
    from keras_clust.cluster.deep import METHODS

    parser.add_argument(
        "--cluster",
        choices=METHODS,
        default="kmeans",
        dest=dest,
        help="also cluster with DEC, IDEC (fine-tuning a copy of the encoder) or N2D (UMAP + "
        "Gaussian mixture on the codes) and report it beside KMeans (default: kmeans only)",
    )
