"""Figures of an ``lj-fluid`` run, drawn from numbers computed elsewhere (Agg canvas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_clust.viz._figure import new_figure, save_figure


def plot_grid_reconstructions(original: np.ndarray, decoded: np.ndarray, path: Path, h: float) -> Path:
    """Occupancy summed along the height axis's orthogonal view: for 3-D grids the sum over y
    (an x-z side view, gravity pointing down), original above, decoded below (occupancy
    probabilities, or the density's mean for smooth grids)."""
    k = len(original)
    fig = new_figure(2.2 * k, 4.6)
    axes = fig.subplots(2, k, squeeze=False)
    for j in range(k):
        for row, (grid, name) in enumerate(((original[j], "original"), (decoded[j], "decoded"))):
            g = grid[..., 0]
            side = g.sum(axis=1) if g.ndim == 3 else g  # (x, z) for 3-D, (x, y) for 2-D
            ax = axes[row, j]
            ax.imshow(side.T, origin="lower", cmap="viridis", aspect="equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{name}\nheight ->")
    fig.suptitle(f"density grids (cell h = {h:.4g} sigma), side view: summed over y")
    return save_figure(fig, path)


def plot_matrices(original: np.ndarray, decoded: np.ndarray, path: Path) -> Path:
    k = len(original)
    fig = new_figure(2.2 * k, 4.6)
    axes = fig.subplots(2, k, squeeze=False)
    for j in range(k):
        for row, (m, name) in enumerate(((original[j], "original"), (decoded[j], "decoded"))):
            ax = axes[row, j]
            ax.imshow(m[..., 0], vmin=0, vmax=1, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name)
    fig.suptitle("distance matrices / box diagonal, particles ordered by distance from the origin")
    return save_figure(fig, path)


def plot_recovered(original: np.ndarray, recovered: Mapping[str, np.ndarray], box: float, path: Path) -> Path:
    """A few configurations: original (filled) and each recovered set (open), same axes."""
    k, dim = len(original), original.shape[-1]
    fig = new_figure(3.4 * k, 3.4 * len(recovered))
    for r, (name, pos) in enumerate(recovered.items()):
        for j in range(k):
            index = r * k + j + 1
            ax = fig.add_subplot(len(recovered), k, index, **({"projection": "3d"} if dim == 3 else {}))
            o, p = original[j], pos[j]
            if dim == 3:
                ax.scatter(o[:, 0], o[:, 1], o[:, 2], s=18, c="tab:blue", label="original")
                ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=18, facecolors="none", edgecolors="tab:red", label=name)
                ax.set_zlim(0, box)
            else:
                ax.scatter(o[:, 0], o[:, 1], s=18, c="tab:blue", label="original")
                ax.scatter(p[:, 0], p[:, 1], s=18, facecolors="none", edgecolors="tab:red", label=name)
            ax.set_xlim(0, box)
            ax.set_ylim(0, box)
            ax.set_title(f"{name}" if j == 0 else "", fontsize=8)
            if r == 0 and j == 0:
                ax.legend(fontsize=7, loc="upper right")
    return save_figure(fig, path)


def plot_energy_histograms(mapping: Mapping[str, Mapping], path: Path, invalid_distance: float) -> Path:
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    originals = np.asarray(mapping["original"]["energy_per_particle"])
    lo, hi = np.percentile(originals, 0.5) - 1.0, np.percentile(originals, 99.5) + 3.0
    bins = np.linspace(lo, hi, 60)
    for name, m in mapping.items():
        e = np.clip(np.asarray(m["energy_per_particle"]), lo, hi)
        ax.hist(
            e,
            bins=bins,
            histtype="step",
            linewidth=1.5,
            label=f"{name} ({m['invalid']}/{m['n']} with a pair < {invalid_distance:g} sigma)",
        )
    ax.set_xlabel(f"U / N (reduced units; clipped to [{lo:.1f}, {hi:.1f}], overlaps pile up at the right edge)")
    ax.set_ylabel("configurations")
    ax.legend(fontsize=8)
    ax.set_title("Lennard-Jones + gravity energy of original and recovered configurations")
    return save_figure(fig, path)


def plot_gamma_maps(maps: Mapping[str, np.ndarray], gamma: np.ndarray, titles: Mapping[str, str], path: Path) -> Path:
    fig = new_figure(4.2 * len(maps), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    values = np.unique(gamma)
    for ax, (view, xy) in zip(axes, maps.items(), strict=True):
        for g in values:
            sel = np.isclose(gamma, g)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.6, label=f"gamma {g:g}")
        ax.set_title(titles[view], fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0].legend(fontsize=8, markerscale=3)
    return save_figure(fig, path)


def plot_energy_map(xy: np.ndarray, energy: np.ndarray, title: str, path: Path) -> Path:
    """The latent plane (PCA of the test codes) coloured by each configuration's energy per particle."""
    fig = new_figure(5.6, 4.6)
    ax = fig.subplots()
    lo, hi = np.percentile(energy, [1, 99])
    points = ax.scatter(xy[:, 0], xy[:, 1], c=np.clip(energy, lo, hi), s=6, cmap="viridis")
    fig.colorbar(points, ax=ax, label="U / N (LJ + gravity; 1-99 % range)")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return save_figure(fig, path)


def plot_rocs(curves: Mapping[str, Mapping[str, object]], path: Path, titles: Sequence[str]) -> Path:
    """One panel per anomaly kind; one ROC curve per score."""
    fig = new_figure(4.6 * len(curves), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(curves)))
    for ax, per_score, title in zip(axes, curves.values(), titles, strict=True):
        for name, a in per_score.items():
            ax.plot(a.fpr, a.tpr, label=f"{name} (AUC {a.auc:.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", linestyle=":")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)
