"""Loss curves: compute the series from a Keras history, then plot them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.viz._figure import new_figure, save_figure


@dataclass(frozen=True)
class LossCurves:
    """Per-epoch values of each logged quantity (``loss``, ``val_loss``, ...)."""

    epochs: np.ndarray
    series: dict[str, np.ndarray]


def loss_curves(history: Mapping[str, Sequence[float]]) -> LossCurves:
    """Turn ``keras.callbacks.History.history`` into :class:`LossCurves` (epochs from 1); the
    learning rate a schedule logs beside the losses (``learning_rate``) is not a loss and is left out."""
    series = {k: np.asarray(v, dtype=float) for k, v in history.items() if len(v) and k != "learning_rate"}
    n = max((len(v) for v in series.values()), default=0)
    return LossCurves(np.arange(1, n + 1), series)


def plot_loss_curves(curves: LossCurves, path: str | Path, title: str = "", log_scale: bool = False) -> Path:
    """Plot training and validation curves; ``val_x`` is drawn dashed beside ``x``."""
    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    for key, values in curves.series.items():
        style = "--" if key.startswith("val_") else "-"
        ax.plot(curves.epochs[: len(values)], values, style, label=key, marker="." if len(values) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)
