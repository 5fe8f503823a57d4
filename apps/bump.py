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
from pathlib import Path

from keras_clust.app import Action, Experiment, non_negative_int, positive_float, positive_int
from keras_clust.bump import OPTIMIZERS, run_optimizer
from keras_clust.errors import UsageError
from keras_clust.runs import RunFolder, markdown_table, set_seed
from keras_clust.viz._figure import new_figure, save_figure

NAME = "bump"
log = logging.getLogger("apps.bump")


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


def run(args: argparse.Namespace) -> int:
    if args.x0 >= 1.0:
        raise UsageError(f"--x0 must start left of the minimum (< 1), got {args.x0}")
    set_seed(args.seed)
    with RunFolder(args.out, NAME, args.seed) as rf:
        config = {"experiment": NAME, "optimizers": list(args.optimizer), "learning_rate": args.lr,
                  "steps": args.steps, "bump_width": str(args.bump_width), "x0": args.x0,
                  "seed": args.seed}  # fmt: skip
        rf.write_config(config)
        trajectories = [run_optimizer(n, args.lr, args.steps, args.bump_width, args.x0) for n in args.optimizer]
        # the escape height is measured on a bump that never ends: the widest bump it would cross
        heights = {t.optimizer: (t if math.isinf(args.bump_width)
                                 else run_optimizer(t.optimizer, args.lr, args.steps, math.inf, args.x0)).escape_height
                   for t in trajectories}  # fmt: skip
        table = [{"step": s, **{t.optimizer: float(t.x[s]) for t in trajectories}} for s in range(args.steps + 1)]
        summary = [{"optimizer": t.optimizer, "furthest x": t.furthest, "escape height": heights[t.optimizer],
                    "final x": float(t.x[-1]),
                    "escaped": "yes" if t.escaped else ("no" if math.isfinite(args.bump_width) else "-")}
                   for t in trajectories]  # fmt: skip
        plot_trajectories(trajectories, args.bump_width, rf.figures / "trajectories.png")
        rf.write_metrics({"run_id": rf.run_id, "optimizers": {t.optimizer: {
            "trajectory": t.x.tolist(), "furthest": t.furthest, "escape_height": heights[t.optimizer],
            "escaped": t.escaped} for t in trajectories}})  # fmt: skip
        rf.write_history(table)
        rf.write_report("\n".join([
            f"# bump run `{rf.run_id}`", "", __doc__.split("\n\n", 1)[1].replace("\n", " "), "",
            f"Step {args.lr}, {args.steps} steps from x0 = {args.x0}, bump width {args.bump_width}.", "",
            "The escape height is how far past the minimum the optimiser gets on a bump that never ends: "
            "it crosses any narrower bump.", "", markdown_table(summary), "",
            "![trajectories](figures/trajectories.png)", "",
            "## Trajectories", "", markdown_table(table), "",
        ]))  # fmt: skip
    print(markdown_table(table), end="")
    print(markdown_table(summary), end="")
    print(f"run folder: {rf.path}")
    return 0


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--optimizer", type=_optimizers, default=("sgd", "adam"),
                   help=f"comma-separated Keras optimizers: {', '.join(OPTIMIZERS)} (default: sgd,adam)")
    p.add_argument("--lr", type=positive_float, default=0.3, help="learning rate (default: 0.3)")
    p.add_argument("--steps", type=positive_int, default=20, help="update steps (default: 20)")
    p.add_argument("--bump-width", type=_width, default=math.inf,
                   help="bump width k past the minimum; inf: a bump that never ends (default: inf)")
    p.add_argument("--x0", type=float, default=0.0, help="start point, left of the minimum (default: 0)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed (the experiment is deterministic)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    p.add_argument("--quick", action="store_true", help="accepted for symmetry; the experiment is already instant")


EXPERIMENT = Experiment(
    name=NAME,
    summary="gradient descent vs Adam and other Keras optimizers escaping a local minimum over a bump",
    description=__doc__.split("\n\n", 1)[1],
    actions=[Action("run", "run the optimizers, print the trajectories and escape heights, plot them",
                    add_run_arguments, run)],
)  # fmt: skip
