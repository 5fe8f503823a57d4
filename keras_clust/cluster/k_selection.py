"""Choosing the number of KMeans clusters: silhouette curve and elbow of the inertia."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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

    @classmethod
    def from_dict(cls, d: dict) -> KSelection:
        """The selection :meth:`to_dict` wrote (e.g. read back from a run's metrics)."""
        return cls(
            ks=np.asarray(d["ks"], dtype=int),
            silhouette=np.asarray(d["silhouette"], dtype=float),
            inertia=np.asarray(d["inertia"], dtype=float),
            best_k_silhouette=int(d["best_k_silhouette"]),
            elbow_k=int(d["elbow_k"]),
        )


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


#: Rows the silhouette is computed on (a seeded sample; KMeans and the mixtures see every row).
#: Its cost grows with the rows squared: 1 s for each k on 10,000 rows, 0.25 s on 5,000.
SILHOUETTE_ROWS = 5000


def select_k(x, ks: Sequence[int] = range(2, 11), random_state: int = 0, n_init: int = 10) -> KSelection:
    """Fit KMeans for every k in ``ks``; the silhouette's maximum (on at most
    :data:`SILHOUETTE_ROWS` seeded rows) and the inertia's elbow."""
    x = check_array(x, "samples", ndim=2)
    ks = np.array(sorted(set(int(k) for k in ks)))
    if len(ks) == 0 or ks[0] < 2 or ks[-1] >= len(x):
        raise UsageError(f"k must run from >= 2 to < the number of samples ({len(x)}), got {ks.tolist()}")
    sil, inertia = [], []
    for k in ks:
        km = KMeans(n_clusters=int(k), n_init=n_init, random_state=random_state).fit(x)
        inertia.append(km.inertia_)
        rows = min(len(x), SILHOUETTE_ROWS)
        one = len(set(km.labels_)) < 2
        sil.append(-1.0 if one else float(silhouette_score(x, km.labels_, sample_size=rows, random_state=random_state)))
    sil, inertia = np.array(sil), np.array(inertia)
    return KSelection(ks, sil, inertia, int(ks[np.argmax(sil)]), elbow_point(ks, inertia))


#: The criteria :func:`choose_k` offers.
K_CRITERIA = ("silhouette", "bic")
#: Below this best silhouette the data has "no substantial structure" (Kaufman & Rousseeuw,
#: *Finding Groups in Data*, 1990): :func:`choose_k` then answers one cluster.
MIN_STRUCTURE = 0.25


@dataclass(frozen=True)
class KChoice:
    """The number of clusters a label-free criterion chose, with its whole curve.

    Attributes:
        criterion: ``silhouette`` (higher is better) or ``bic`` (lower is better).
        ks: The candidate k.
        scores: The criterion at each k.
        k: The chosen k (1 when the best silhouette is below ``threshold``).
        threshold: The silhouette below which the data counts as one cluster (None for BIC).
        labels: The chosen k's mixture labels of every point (all 0 for one cluster); not in
            :meth:`to_dict`.
    """

    criterion: str
    ks: tuple[int, ...]
    scores: tuple[float, ...]
    k: int
    threshold: float | None = None
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "criterion": self.criterion,
            "ks": list(self.ks),
            "scores": [round(float(s), 6) for s in self.scores],
            "k": self.k,
            "threshold": self.threshold,
        }


def choose_k(
    z,
    k_range: tuple[int, int] = (2, 20),
    criterion: str = "silhouette",
    random_state: int = 0,
    threshold: float = MIN_STRUCTURE,
) -> KChoice:
    """Choose the number of clusters of ``z`` without labels.

    For each k in ``k_range`` a full-covariance Gaussian mixture is fitted to ``z`` (N2D's
    clusterer; ``z`` is best its UMAP manifold, see :func:`manifold_for_k`), then:

    - ``silhouette``: the mean silhouette of the mixture's labels (on at most
      :data:`SILHOUETTE_ROWS` seeded rows); the largest wins, and when even that is below
      ``threshold`` the data has no substantial structure and k is 1.
    - ``bic``: the mixture's Bayesian information criterion, k = 1 included; the smallest wins.
      It needs clusters that are Gaussian in ``z``: on a UMAP manifold (clumps with sharp
      edges) it keeps adding components, so it is not the default.

    Raises:
        UsageError: an unknown criterion, or a range that does not fit the rows.
    """
    z = check_array(z, "the points to choose k on", ndim=2)
    if criterion not in K_CRITERIA:
        raise UsageError(f"the k criterion must be one of {', '.join(K_CRITERIA)}, got {criterion!r}")
    low, high = int(k_range[0]), int(k_range[1])
    high = min(high, len(z) - 1)
    if low < 2 or high < low:
        raise UsageError(f"k from {low} to {k_range[1]} does not fit {len(z)} rows: give a range of 2 <= k < rows")
    from sklearn.mixture import GaussianMixture

    ks = tuple(range(1 if criterion == "bic" else low, high + 1))
    scores, labels_of = [], {}
    for k in ks:
        mixture = GaussianMixture(k, covariance_type="full", random_state=random_state).fit(z)
        labels_of[k] = labels = mixture.predict(z).astype(np.int64)
        if criterion == "bic":
            scores.append(float(mixture.bic(z)))
        else:
            one = len(np.unique(labels)) < 2
            sample = min(len(z), SILHOUETTE_ROWS)
            scores.append(
                -1.0 if one else float(silhouette_score(z, labels, sample_size=sample, random_state=random_state))
            )
    if criterion == "bic":
        k = int(ks[int(np.argmin(scores))])
        return KChoice(criterion, ks, tuple(scores), k, labels=labels_of[k])
    best = int(np.argmax(scores))
    k = int(ks[best]) if scores[best] >= threshold else 1
    labels = labels_of[k] if k > 1 else np.zeros(len(z), dtype=np.int64)
    return KChoice(criterion, ks, tuple(scores), k, threshold, labels)


def manifold_for_k(codes, n_neighbors: int = 20, n_components: int = 10, random_state: int = 0) -> np.ndarray:
    """N2D's UMAP manifold of ``codes`` (``min_dist`` 0) with a fixed number of dimensions, the
    space :func:`choose_k` looks in before k, and so N2D's own dimension, is known."""
    from keras_clust.cluster.n2d import fit_umap

    codes = check_array(codes, "codes", ndim=2)
    manifold = fit_umap(codes, n_neighbors, min(n_components, len(codes) - 2), random_state)
    return np.asarray(manifold.embedding_, dtype=np.float32)
