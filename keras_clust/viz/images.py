"""Image grids: rows of images (originals, reconstructions, ...) with optional captions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_clust.viz._figure import new_figure, save_figure


def pick_examples(n_total: int, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` examples drawn without replacement, sorted, from a seeded generator."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


def plot_image_rows(
    rows: Sequence[np.ndarray],
    path: str | Path,
    row_titles: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str = "",
) -> Path:
    """Plot one row of grey-scale images per array in ``rows``.

    Args:
        rows: Arrays of shape ``(n, h, w)`` or ``(n, h*w)`` with values in [0, 1].
        path: PNG to write.
        row_titles: Label of each row (shown at its left).
        captions: Text under each image, per row.
        image_shape: ``(h, w)`` for flattened rows.
        title: Figure title.
    """
    n = max(len(r) for r in rows)
    fig = new_figure(max(4.0, 1.0 * n), 1.15 * len(rows) + 0.4)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j >= len(row):
                continue
            img = np.asarray(row[j])
            if img.ndim == 1:
                img = img.reshape(image_shape)
            ax.imshow(np.squeeze(img), cmap="gray", vmin=0.0, vmax=1.0)
            if captions is not None and captions[i] is not None:
                ax.set_xlabel(str(captions[i][j]), fontsize=9)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=9)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_image_grids(
    panels: Sequence[tuple[str, np.ndarray]], path: str | Path, ncols: int = 8, title: str = ""
) -> Path:
    """Draw one grid of images per panel, side by side (e.g. VAE vs CAE samples).

    Args:
        panels: ``(caption, images)`` pairs; images ``(n, h, w[, 1])`` in [0, 1].
        path: PNG to write.
        ncols: Images per grid row.
        title: Figure title.
    """
    grids = []
    for caption, images in panels:
        images = np.asarray(images).reshape(len(images), *np.shape(images)[1:3])
        h, w = images.shape[1:3]
        rows = -(-len(images) // ncols)
        canvas = np.ones((rows * (h + 1) - 1, ncols * (w + 1) - 1), np.float32)
        for k, img in enumerate(images):
            r, c = divmod(k, ncols)
            canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
        grids.append((caption, canvas))
    fig = new_figure(4.2 * len(grids), 4.6)
    for i, (caption, canvas) in enumerate(grids):
        ax = fig.add_subplot(1, len(grids), i + 1)
        ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(caption, fontsize=10)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
