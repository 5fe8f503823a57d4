"""2-D maps of latent codes: the code itself when 2-D, else PCA or t-SNE."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from keras_clust.errors import UsageError
from keras_clust.progress import stage
from keras_clust.validation import check_array, check_labels
from keras_clust.viz._figure import new_figure, save_figure

METHODS = ("auto", "identity", "pca", "tsne")


@dataclass(frozen=True)
class LatentMap:
    """Points of a 2-D latent map with their labels and how they were computed."""

    xy: np.ndarray
    labels: np.ndarray
    method: str
    seconds: float


def latent_map(
    codes, labels, method: str = "auto", seed: int = 0, max_points: int = 10000, perplexity: float = 30.0
) -> LatentMap:
    """Project codes to 2-D.

    Args:
        codes: ``(n, d)`` latent codes.
        labels: ``(n,)`` labels used for colouring.
        method: ``identity`` (needs d = 2), ``pca``, ``tsne``, or ``auto`` (identity for
            d = 2, else t-SNE).
        seed: Seed of the subsample and of t-SNE.
        max_points: Largest number of points mapped (seeded subsample above it).
        perplexity: t-SNE perplexity.
    """
    codes = check_array(codes, "codes", ndim=2)
    labels = check_labels(labels, len(codes))
    if method not in METHODS:
        raise UsageError(f"latent map method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        method = "identity" if codes.shape[1] == 2 else "tsne"
    if len(codes) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(codes), max_points, replace=False))
        codes, labels = codes[idx], labels[idx]
    start = time.perf_counter()
    if method == "identity":
        if codes.shape[1] != 2:
            raise UsageError(f"identity map needs 2-D codes, got {codes.shape[1]}-D")
        xy = codes
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(codes)
    else:
        from sklearn.manifold import TSNE

        perp = min(perplexity, max(2.0, (len(codes) - 1) / 3.0))
        with stage(f"t-SNE of {len(codes)} codes"):
            xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(codes)
    return LatentMap(np.asarray(xy, np.float32), labels, method, time.perf_counter() - start)


def plot_latent_map(lm: LatentMap, path: str | Path, class_names: Sequence[str] | None = None, title: str = "") -> Path:
    """Scatter the map, one colour per label, with a legend of class names."""
    fig = new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    classes = np.unique(lm.labels)
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, c in enumerate(classes):
        pts = lm.xy[lm.labels == c]
        name = class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
    axis = {"identity": "z", "pca": "PC", "tsne": "t-SNE "}[lm.method]
    ax.set_xlabel(f"{axis}1")
    ax.set_ylabel(f"{axis}2")
    ax.set_title(title or f"latent map ({lm.method}, {len(lm.xy)} points)")
    ax.legend(markerscale=3, fontsize=8, loc="best", framealpha=0.7)
    return save_figure(fig, path)
