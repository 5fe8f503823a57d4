"""3-D scatter of latent codes, one panel per colouring (e.g. by cluster and by true class)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from keras_clust.viz._figure import new_figure, save_figure


def first_three(codes: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """The codes themselves when they have 3 dimensions (padded with zeros below 3), else
    their first three principal components; returns the points and the axis name."""
    codes = np.asarray(codes, np.float64)
    if codes.shape[1] == 3:
        return codes, "z"
    if codes.shape[1] < 3:
        return np.pad(codes, ((0, 0), (0, 3 - codes.shape[1]))), "z"
    from sklearn.decomposition import PCA

    return PCA(n_components=3, random_state=seed).fit_transform(codes), "PC"


def plot_latent_3d(
    points: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray, Sequence[str] | None]],
    path: str | Path,
    axis: str = "z",
    max_points: int = 5000,
    seed: int = 0,
) -> Path:
    """One 3-D scatter per ``(title, labels, names)`` panel; label -1 is drawn grey as "noise".

    Args:
        points: ``(n, 3)`` coordinates.
        panels: Colourings of the same points.
        path: PNG to write.
        axis: Axis name prefix (``z`` or ``PC``).
        max_points: Seeded subsample above this many points.
        seed: Seed of the subsample.
    """
    points = np.asarray(points)
    idx = np.arange(len(points))
    if len(points) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))
    fig = new_figure(6.0 * len(panels), 5.5)
    for p, (title, labels, names) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1, projection="3d")
        lab = np.asarray(labels)[idx]
        classes = np.unique(lab)
        cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, c in enumerate(classes):
            pts = points[idx][lab == c]
            name = "noise" if c < 0 else (names[c] if names is not None and c < len(names) else str(c))
            colour = "lightgrey" if c < 0 else cmap(i % cmap.N)
            ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=3, alpha=0.6, color=colour, label=name)
        ax.set_xlabel(f"{axis}1")
        ax.set_ylabel(f"{axis}2")
        ax.set_zlabel(f"{axis}3")
        ax.set_title(title)
        ax.legend(markerscale=3, fontsize=7, loc="upper left", framealpha=0.6)
    return save_figure(fig, path)
