"""Choosing the number of KMeans clusters: silhouette curve and elbow of the inertia."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from keras_clust.errors import UsageError
from keras_clust.validation import check_array


@dataclass(frozen=True)
class KSelection:
    """Silhouette and inertia of KMeans for each k, and the k each criterion picks."""

    ks: np.ndarray
    silhouette: np.ndarray
    inertia: np.ndarray
    best_k_silhouette: int
    elbow_k: int

    def to_dict(self) -> dict:
        return {
            "ks": self.ks.tolist(),
            "silhouette": self.silhouette.tolist(),
            "inertia": self.inertia.tolist(),
            "best_k_silhouette": self.best_k_silhouette,
            "elbow_k": self.elbow_k,
        }


def elbow_point(ks: Sequence[int], inertia: Sequence[float]) -> int:
    """The k farthest below the straight line from the first to the last point of the
    (normalised) inertia curve."""
    ks, inertia = np.asarray(ks, float), np.asarray(inertia, float)
    if len(ks) < 3:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = inertia[0] - inertia[-1]
    y = (inertia - inertia[-1]) / span if span > 0 else np.zeros_like(inertia)
    chord = 1.0 - x  # the line from (0, 1) to (1, 0)
    return int(ks[np.argmax(chord - y)])


def select_k(x, ks: Sequence[int] = range(2, 11), random_state: int = 0, n_init: int = 10) -> KSelection:
    """Fit KMeans for every k in ``ks``; the silhouette's maximum and the inertia's elbow."""
    x = check_array(x, "samples", ndim=2)
    ks = np.array(sorted(set(int(k) for k in ks)))
    if len(ks) == 0 or ks[0] < 2 or ks[-1] >= len(x):
        raise UsageError(f"k must run from >= 2 to < the number of samples ({len(x)}), got {ks.tolist()}")
    sil, inertia = [], []
    for k in ks:
        km = KMeans(n_clusters=int(k), n_init=n_init, random_state=random_state).fit(x)
        inertia.append(km.inertia_)
        sil.append(silhouette_score(x, km.labels_, random_state=random_state) if len(set(km.labels_)) > 1 else -1.0)
    sil, inertia = np.array(sil), np.array(inertia)
    return KSelection(ks, sil, inertia, int(ks[np.argmax(sil)]), elbow_point(ks, inertia))
