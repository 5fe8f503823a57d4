"""``bump``: gradient descent vs Adam (and other Keras optimisers) at a local minimum with a bump.

Seed: BS6207 homework, Q1. The loss |x - 1| has its minimum at x = 1 and a bump of width
k beyond it (gradient +1 on 1 < x < 1 + k, -1 elsewhere). From x0 = 0 with step 0.3,
plain gradient descent walks 0.3, 0.6, 0.9, 1.2 and then oscillates between 0.9 and 1.2;
Adam overshoots to about 1.41, so it crosses any bump narrower than about 0.41.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass

from keras_clust.app import Experiment, action, config_arguments
from keras_clust.apps.bump.loss import OPTIMIZERS, run_optimizer
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, Run, run_from_args
from keras_clust.markdown import markdown_table
from keras_clust.option_types import positive_float, positive_int
from keras_clust.settings import config_from_args, seed_setting, setting
from keras_clust.viz._figure import new_figure, save_figure

NAME = "bump"
log = logging.getLogger("keras_clust.apps.bump")


def _optimizers(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OPTIMIZERS]
    if not names or unknown:
        choices = ", ".join(OPTIMIZERS)
        raise argparse.ArgumentTypeError(f"unknown optimizer(s) {unknown or text!r}; choose from {choices}")
    return names


def _width(text: str) -> float:
    if text.strip().lower() in ("inf", "infinite", "none"):
        return math.inf
    return positive_float(text)


@dataclass
class Config:
    """Every setting of a ``bump run`` (stored as ``config.json``)."""

    optimizers: tuple[str, ...] = setting(
        ("sgd", "adam"),
        f"comma-separated Keras optimizers: {', '.join(OPTIMIZERS)}",
        type=_optimizers,
        flag="--optimizer",
    )
    learning_rate: float = setting(0.3, "learning rate", type=positive_float, flag="--lr")
    steps: int = setting(20, "update steps", type=positive_int)
    bump_width: float = setting(math.inf, "bump width k past the minimum; inf: a bump that never ends", type=_width)
    x0: float = setting(0.0, "start point, left of the minimum", type=float)
    seed: int = seed_setting()


def run_config(args: argparse.Namespace) -> Config:
    """The config of a ``bump run`` command line; the start must lie left of the minimum."""
    cfg = config_from_args(Config, args)
    if cfg.x0 >= 1.0:
        raise UsageError(f"--x0 must start left of the minimum (< 1), got {cfg.x0}")
    return cfg


def plot_trajectories(trajectories, width: float, path):
    fig = new_figure(7, 4.2)
    ax = fig.add_subplot()
    for t in trajectories:
        ax.plot(range(len(t.x)), t.x, marker="o", ms=3, label=f"{t.optimizer} (max {t.furthest:.2f})")
    ax.axhline(1.0, color="black", lw=0.8, ls=":", label="local minimum x = 1")
    if math.isfinite(width):
        ax.axhline(1.0 + width, color="tab:red", lw=0.8, ls="--", label=f"end of bump x = {1 + width:g}")
    ax.set(xlabel="step", ylabel="x", title="optimisers on the bump loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def steps(cfg: Config, run: Run) -> None:
    run.set_data(note="no dataset: the 1-D bump loss, deterministic")
    trajectories = [run_optimizer(n, cfg.learning_rate, cfg.steps, cfg.bump_width, cfg.x0) for n in cfg.optimizers]
    # the escape height is measured on a bump that never ends: the widest bump it would cross
    heights = {
        t.optimizer: (
            t
            if math.isinf(cfg.bump_width)
            else run_optimizer(t.optimizer, cfg.learning_rate, cfg.steps, math.inf, cfg.x0)
        ).escape_height
        for t in trajectories
    }
    plot_trajectories(trajectories, cfg.bump_width, run.figures / "trajectories.png")
    run.metrics["optimizers"] = {
        t.optimizer: {
            "trajectory": t.x.tolist(),
            "furthest": t.furthest,
            "escape_height": heights[t.optimizer],
            "escaped": t.escaped,
        }
        for t in trajectories
    }
    run.history = trajectory_rows(cfg, run.metrics)


def trajectory_rows(cfg: Config, metrics: dict) -> list[dict]:
    opts = metrics["optimizers"]
    return [{"step": s, **{name: float(o["trajectory"][s]) for name, o in opts.items()}} for s in range(cfg.steps + 1)]


def summary_rows(cfg: Config, metrics: dict) -> list[dict]:
    finite = math.isfinite(cfg.bump_width)
    return [
        {
            "optimizer": name,
            "furthest x": o["furthest"],
            "escape height": o["escape_height"],
            "final x": float(o["trajectory"][-1]),
            "escaped": "yes" if o["escaped"] else ("no" if finite else "-"),
        }
        for name, o in metrics["optimizers"].items()
    ]


def render_report(cfg: Config, metrics: dict) -> str:
    return "\n".join(
        [
            f"# bump run `{metrics['run_id']}`",
            "",
            __doc__.split("\n\n", 1)[1].replace("\n", " "),
            "",
            f"Step {cfg.learning_rate}, {cfg.steps} steps from x0 = {cfg.x0}, bump width {cfg.bump_width}.",
            "",
            "The escape height is how far past the minimum the optimiser gets on a bump that never ends: "
            "it crosses any narrower bump.",
            "",
            markdown_table(summary_rows(cfg, metrics)),
            "",
            "![trajectories](figures/trajectories.png)",
            "",
            "## Trajectories",
            "",
            markdown_table(trajectory_rows(cfg, metrics)),
        ]
    )


def summary(cfg: Config, metrics: dict) -> str:
    return markdown_table(trajectory_rows(cfg, metrics)) + markdown_table(summary_rows(cfg, metrics))


SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=render_report, summary=summary)


def add_quick_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="accepted for symmetry; the experiment is already instant")


@action("run", config_arguments(Config, add_quick_argument), Config)
def run(args: argparse.Namespace) -> int:
    """run the optimizers, print the trajectories and escape heights, plot them"""
    return run_from_args(SPEC, args, run_config)


EXPERIMENT = Experiment(NAME, __doc__, [run])
