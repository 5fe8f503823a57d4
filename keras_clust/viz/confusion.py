"""Confusion matrix heat map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_clust.viz._figure import new_figure, save_figure


def plot_confusion_matrix(
    cm: np.ndarray, path: str | Path, class_names: Sequence[str], title: str = "", xlabel: str = "matched cluster"
) -> Path:
    """Heat map of counts with the count written in each cell."""
    cm = np.asarray(cm)
    fig = new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("true class")
    threshold = cm.max() / 2 if cm.size else 0
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > threshold else "black")
    ax.set_title(title)
    return save_figure(fig, path)
