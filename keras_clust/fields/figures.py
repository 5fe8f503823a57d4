"""Figures of 2-D vector fields: originals beside reconstructions (streamlines), galleries per class (arrows).

Fields are ``(n, H, W, C)`` arrays laid out as in :mod:`keras_clust.fields.generator` (row 0 is
y = -1, columns along x, both over pixel centres in (-1, 1)); channels 0 and 1 are u and v. Both
functions draw on an Agg canvas and return the path of the PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize

from keras_clust.errors import UsageError
from keras_clust.fields.generator import pixel_centres
from keras_clust.viz._figure import new_figure, save_figure

ARROWS = 16  # arrows per side of a gallery panel
CMAP = "viridis"


def _velocity(fields, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(fields, dtype=np.float64)
    if x.ndim != 4 or x.shape[-1] < 2 or x.shape[1] != x.shape[2]:
        raise UsageError(f"{what} have shape {x.shape}; expected (n, H, H, C) with u, v in channels 0 and 1")
    return np.nan_to_num(x[..., 0]), np.nan_to_num(x[..., 1])


def _plain(ax) -> None:
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_field_pairs(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: str | Path,
    titles: Sequence[str] | None = None,
    max_pairs: int = 6,
) -> Path:
    """Each original beside its reconstruction as streamlines coloured by speed, one colour scale per pair.

    Args:
        originals: Fields ``(n, H, W, C)``, u and v in channels 0 and 1.
        reconstructions: Same shape as ``originals``.
        path: Where the PNG goes.
        titles: One title per pair (e.g. the class); the first ``max_pairs`` are used.
        max_pairs: At most this many pairs are drawn, three pairs per row.
    """
    u0, v0 = _velocity(originals, "originals")
    u1, v1 = _velocity(reconstructions, "reconstructions")
    if u0.shape != u1.shape:
        raise UsageError(f"originals {u0.shape[:3]} and reconstructions {u1.shape[:3]} differ; pass matching arrays")
    n = min(len(u0), int(max_pairs))
    if n < 1:
        raise UsageError("no fields to draw; pass at least one original and max_pairs >= 1")
    titles = [f"field {k}" for k in range(n)] if titles is None else [str(t) for t in titles][:n]
    if len(titles) < n:
        raise UsageError(f"{len(titles)} titles for {n} pairs; give one title per pair")
    xs = pixel_centres(u0.shape[1])
    per_row = min(n, 3)
    rows = math.ceil(n / per_row)
    fig = new_figure(5.6 * per_row, 2.9 * rows)
    grid = fig.add_gridspec(rows, 2 * per_row)
    for k in range(n):
        speeds = [np.hypot(u0[k], v0[k]), np.hypot(u1[k], v1[k])]
        norm = Normalize(0.0, max(float(max(s.max() for s in speeds)), 1e-12))
        row, col = divmod(k, per_row)
        axes = [fig.add_subplot(grid[row, 2 * col + side]) for side in (0, 1)]
        for ax, u, v, speed, label in zip(
            axes, (u0[k], u1[k]), (v0[k], v1[k]), speeds, ("original", "reconstruction"), strict=True
        ):
            lines = ax.streamplot(
                xs, xs, u, v, color=speed, cmap=CMAP, norm=norm, density=0.9, linewidth=0.8, arrowsize=0.7
            ).lines
            _plain(ax)
            ax.set_title(f"{titles[k]}: {label}", fontsize=8)
        fig.colorbar(lines, ax=axes, shrink=0.8, label="speed")
    return save_figure(fig, path)


def _row_name(label: int, class_names: Sequence[str]) -> str:
    if label == -1:
        return "noise"
    return str(class_names[label]) if 0 <= label < len(class_names) else f"cluster {label}"


def plot_field_gallery(
    fields: np.ndarray,
    labels: np.ndarray | None,
    class_names: Sequence[str],
    path: str | Path,
    per_class: int = 3,
    title: str = "",
) -> Path:
    """A grid of arrow plots: one row per class or cluster, its first ``per_class`` fields across.

    Arrows are subsampled to about 16 x 16 per panel; their lengths are scaled per panel (the
    fastest arrow spans 0.9 of the arrow spacing) so every pattern is legible, and their colours
    show the speed on one scale shared by the whole gallery, so strong and weak fields can be compared.

    Args:
        fields: Fields ``(n, H, W, C)``, u and v in channels 0 and 1.
        labels: Class or cluster of every field (``-1`` is drawn as "noise", last); None for one row.
        class_names: Row names indexed by label; labels beyond them are called ``cluster <k>``.
        path: Where the PNG goes.
        per_class: Columns: fields shown per row.
        title: Title of the figure.
    """
    u, v = _velocity(fields, "fields")
    unlabelled = labels is None
    labels = np.zeros(len(u), np.int64) if labels is None else np.asarray(labels).astype(np.int64)
    if labels.shape != (len(u),):
        raise UsageError(f"{labels.shape[0] if labels.ndim else 0} labels for {len(u)} fields; give one per field")
    if len(u) == 0 or per_class < 1:
        raise UsageError("no fields to draw; pass at least one field and per_class >= 1")
    rows = sorted(set(labels.tolist()), key=lambda c: (c == -1, c))
    chosen = {c: np.flatnonzero(labels == c)[:per_class] for c in rows}
    size = u.shape[1]
    step = max(1, round(size / ARROWS))
    sub = slice(step // 2, None, step)
    xs = pixel_centres(size)[sub]
    cell = float(xs[1] - xs[0]) if len(xs) > 1 else 2.0
    shown = np.concatenate(list(chosen.values()))
    norm = Normalize(0.0, max(float(np.hypot(u[shown][:, sub, sub], v[shown][:, sub, sub]).max()), 1e-12))
    fig = new_figure(2.1 * per_class + 0.3, 2.1 * len(rows) + 0.8 + (0.3 if title else 0.0))
    mappable = None
    for r, c in enumerate(rows):
        for k in range(per_class):
            ax = fig.add_subplot(len(rows), per_class, r * per_class + k + 1)
            _plain(ax)
            if k == 0:
                ax.set_ylabel("fields" if unlabelled else _row_name(c, class_names), fontsize=9)
            if k >= len(chosen[c]):
                ax.set_axis_off()
                continue
            i = chosen[c][k]
            uu, vv = u[i][sub, sub], v[i][sub, sub]
            speed = np.hypot(uu, vv)
            scale = max(float(speed.max()), 1e-12) / (0.9 * cell)  # the panel's fastest arrow spans 0.9 of a cell
            mappable = ax.quiver(
                xs, xs, uu, vv, speed, cmap=CMAP, norm=norm, angles="xy", scale_units="xy", scale=scale, width=0.007
            )
    if title:
        fig.suptitle(title)
    if mappable is not None:
        fig.colorbar(mappable, ax=fig.axes, location="bottom", shrink=0.7, aspect=30, label="speed")
    return save_figure(fig, path)
