"""True vs generated samples: a 3-D scatter and the pairwise 2-D projections; the k curve."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from keras_clust.viz._figure import new_figure, save_figure


def minmax_columns(x) -> np.ndarray:
    """Scale every column of ``x`` to [0, 1] on its own (constant columns become 0)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (x - lo) / span


def _limits(*sets: np.ndarray) -> list[tuple[float, float]]:
    both = np.concatenate(sets)
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    return list(zip(lo - pad, hi + pad, strict=True))


def plot_true_vs_generated(
    true: np.ndarray, generated: np.ndarray, path: str | Path, title: str = "", means: np.ndarray | None = None
) -> Path:
    """A 3-D scatter (first three columns) and every pairwise projection, true and generated
    samples on the same axes; component means as black crosses when given."""
    true, generated = np.asarray(true), np.asarray(generated)
    d = true.shape[1]
    pairs = list(combinations(range(d), 2))[:6]
    ncols = 1 + len(pairs) if d >= 3 else len(pairs)
    fig = new_figure(4.0 * ncols, 4.2)
    lims = _limits(true, generated)
    col = 1
    if d >= 3:
        ax = fig.add_subplot(1, ncols, 1, projection="3d")
        ax.scatter(*true[:, :3].T, s=3, alpha=0.35, label="true", color="tab:blue")
        ax.scatter(*generated[:, :3].T, s=3, alpha=0.35, label="generated", color="tab:orange")
        if means is not None:
            ax.scatter(*means[:, :3].T, s=40, marker="x", color="black", label="means")
        ax.set(xlim=lims[0], ylim=lims[1], zlim=lims[2], xlabel="x1", ylabel="x2", zlabel="x3")
        ax.legend(fontsize=8, markerscale=3)
        col = 2
    for k, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(1, ncols, col + k)
        ax.scatter(true[:, i], true[:, j], s=3, alpha=0.35, color="tab:blue", label="true")
        ax.scatter(generated[:, i], generated[:, j], s=3, alpha=0.35, color="tab:orange", label="generated")
        if means is not None:
            ax.scatter(means[:, i], means[:, j], s=40, marker="x", color="black", label="means")
        ax.set(xlim=lims[i], ylim=lims[j], xlabel=f"x{i + 1}", ylabel=f"x{j + 1}")
        ax.set_aspect("auto")
        if d < 3 and k == 0:
            ax.legend(fontsize=8, markerscale=3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_k_selection(selection, path: str | Path, title: str = "") -> Path:
    """Silhouette per k beside the inertia (elbow) curve, the chosen k marked on each."""
    fig = new_figure(9, 3.6)
    a, b = fig.subplots(1, 2)
    a.plot(selection.ks, selection.silhouette, "o-")
    a.axvline(selection.best_k_silhouette, color="tab:red", ls="--", label=f"max at k={selection.best_k_silhouette}")
    a.set(xlabel="k", ylabel="silhouette", title="silhouette")
    a.legend(fontsize=8)
    b.plot(selection.ks, selection.inertia, "o-")
    b.axvline(selection.elbow_k, color="tab:red", ls="--", label=f"elbow at k={selection.elbow_k}")
    b.set(xlabel="k", ylabel="inertia", title="elbow")
    b.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
