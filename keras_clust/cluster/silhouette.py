"""Silhouette "knives" and centroid spacing: the numbers behind a multi-objective choice of clustering.

A knife plot draws, for every cluster, the sorted silhouettes of its points as a
horizontal band. A cluster *cuts* the overall mean silhouette when at least one of
its points has a silhouette above that mean. Counting the cutting clusters guards
against one very good cluster inflating the mean while the others are poor.

Noise (label ``-1``, as DBSCAN writes it) is never given a silhouette: the per-sample
silhouettes and their mean are computed on the clustered points only, and the noise
points are counted in :attr:`KnifeStats.noise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.metrics import silhouette_samples
from sklearn.utils import check_random_state

from keras_clust.errors import DataError
from keras_clust.validation import check_array, check_labels

NOISE = -1


@dataclass(frozen=True)
class KnifeRow:
    """One cluster of a knife plot.

    Attributes:
        label: The cluster id.
        size: Points of the cluster among the silhouetted points (0 if the subsample missed it).
        mean: Their mean silhouette (NaN when ``size`` is 0).
        max: Their largest silhouette (NaN when ``size`` is 0).
        cuts: ``max`` is greater than the overall mean silhouette.
    """

    label: int
    size: int
    mean: float
    max: float
    cuts: bool


@dataclass(frozen=True)
class KnifeStats:
    """Per-sample silhouettes of the clustered (non-noise) points and their per-cluster summary.

    Attributes:
        silhouettes: Silhouette of every silhouetted point, noise excluded.
        labels: The cluster id of each of those points.
        indices: The rows of ``x`` those points are.
        mean: The mean of ``silhouettes`` (the silhouette score without noise).
        clusters: One :class:`KnifeRow` per cluster of the full labelling, in label order.
        n_cutting: Number of clusters whose largest silhouette is above ``mean``.
        n_clusters: Number of clusters in the full labelling, noise excluded.
        noise: Number of noise points (label -1) among all rows of ``x``.
        n_samples: Number of rows of ``x``, noise included.
    """

    silhouettes: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    mean: float
    clusters: tuple[KnifeRow, ...]
    n_cutting: int
    n_clusters: int
    noise: int
    n_samples: int

    @property
    def cutting_share(self) -> float:
        """Share of the clusters that cut the mean, in [0, 1]."""
        return self.n_cutting / self.n_clusters

    @property
    def coverage(self) -> float:
        """Share of the rows that are not noise."""
        return 1.0 - self.noise / self.n_samples

    @property
    def noise_adjusted_mean(self) -> float:
        """The mean silhouette with every noise point counted as 0, i.e. ``mean * coverage``.

        Scikit-learn gives a singleton cluster a silhouette of 0; a noise point is treated
        the same way. Without this, a clustering could raise its mean silhouette by calling
        every hard point noise (the DBCV index weights by coverage for the same reason).
        """
        return self.mean * self.coverage


def subsample_indices(n: int, sample_size: int | None, random_state=None) -> np.ndarray:
    """Sorted rows of a plain (not stratified) uniform subsample without replacement.

    Args:
        n: Number of rows.
        sample_size: Rows to keep; None, or a value >= ``n``, keeps all rows (no random draw).
        random_state: Seed or ``RandomState`` of the draw.

    Returns:
        ``int64`` row indices in increasing order.
    """
    if sample_size is None or sample_size >= n:
        return np.arange(n, dtype=np.int64)
    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=int(sample_size), replace=False)).astype(np.int64)


def _check_x_labels(x, labels) -> tuple[np.ndarray, np.ndarray]:
    n = len(check_array(x, "x", ndim=2))  # validates; the float64 copy keeps float64 input exact
    return np.asarray(x, dtype=np.float64), check_labels(labels, n, "labels")


def silhouette_knives(x, labels, sample_size: int | None = None, random_state=None) -> KnifeStats:
    """Silhouettes of the non-noise points and which clusters cut their mean.

    The subsample, when ``sample_size`` is given and smaller than the number of rows,
    is a plain uniform draw of rows (:func:`subsample_indices`), not a stratified one:
    its mean silhouette is an unbiased estimate of the full mean, and the same rows
    can be used for every candidate labelling of the same ``x``. Noise rows that fall
    into the subsample are then dropped. A small cluster may miss the subsample; it is
    still listed, with ``size`` 0, and does not cut.

    Args:
        x: ``(n, d)`` points.
        labels: ``(n,)`` integer cluster ids, ``-1`` for noise.
        sample_size: Largest number of rows to compute the silhouettes on, or None for all.
        random_state: Seed or ``RandomState`` of the subsample.

    Returns:
        The :class:`KnifeStats`.

    Raises:
        DataError: if the silhouette is undefined: fewer than 2 clusters after removing the
            noise (or in the subsample), or every silhouetted point its own cluster.
            ``DataError`` is a ``ValueError``.
    """
    x, labels = _check_x_labels(x, labels)
    clustered = labels != NOISE
    all_clusters = np.unique(labels[clustered])
    if len(all_clusters) < 2:
        raise DataError(f"the silhouette needs at least 2 clusters besides noise, got {len(all_clusters)}")
    rows = subsample_indices(len(x), sample_size, random_state)
    rows = rows[clustered[rows]]
    lab = labels[rows]
    present = np.unique(lab)
    if len(present) < 2:
        raise DataError(f"the subsample of {sample_size} rows holds only {len(present)} cluster(s); raise sample_size")
    if len(present) >= len(rows):
        raise DataError("the silhouette is undefined when every point is its own cluster")
    sil = silhouette_samples(x[rows], lab)
    mean = float(sil.mean())
    clusters = []
    for c in all_clusters:
        s = sil[lab == c]
        if len(s) == 0:
            clusters.append(KnifeRow(int(c), 0, float("nan"), float("nan"), False))
        else:
            clusters.append(KnifeRow(int(c), len(s), float(s.mean()), float(s.max()), bool(s.max() > mean)))
    return KnifeStats(
        silhouettes=sil,
        labels=lab,
        indices=rows,
        mean=mean,
        clusters=tuple(clusters),
        n_cutting=sum(r.cuts for r in clusters),
        n_clusters=len(all_clusters),
        noise=int(np.count_nonzero(~clustered)),
        n_samples=len(x),
    )


def knife_count(x, labels) -> int:
    """Number of clusters with at least one point whose silhouette is above the mean (noise excluded).

    Raises:
        DataError: as :func:`silhouette_knives`.
    """
    return silhouette_knives(x, labels).n_cutting


def cluster_means(x, labels) -> tuple[np.ndarray, np.ndarray]:
    """The non-noise cluster ids in increasing order and the mean point of each.

    Returns:
        ``(ids, centroids)`` with ``centroids[i]`` the mean of the points labelled ``ids[i]``.
    """
    x, labels = _check_x_labels(x, labels)
    keep = labels != NOISE
    ids, inverse = np.unique(labels[keep], return_inverse=True)
    sums = np.zeros((len(ids), x.shape[1]))
    np.add.at(sums, inverse, x[keep])
    return ids, sums / np.bincount(inverse, minlength=len(ids))[:, None]


def centroid_spacing(x, labels, relative: bool = False) -> float:
    """Standard deviation of the pairwise Euclidean distances between the cluster centroids.

    The centroid of a cluster is the mean of its points; noise (-1) is excluded. The
    standard deviation is the population one (``ddof=0``) over the ``k (k - 1) / 2``
    distances, so it is 0.0 for exactly 2 clusters (a single distance) and 0 whenever
    the centroids are evenly spaced (e.g. the corners of a regular simplex).

    Args:
        x: ``(n, d)`` points.
        labels: ``(n,)`` integer cluster ids, ``-1`` for noise.
        relative: Divide by the mean pairwise distance (the coefficient of variation), which
            makes the number independent of the scale of ``x``; 0.0 if all centroids coincide.

    Raises:
        DataError: with fewer than 2 clusters besides noise.
    """
    _, centroids = cluster_means(x, labels)
    if len(centroids) < 2:
        raise DataError(f"centroid spacing needs at least 2 clusters besides noise, got {len(centroids)}")
    dist = pdist(centroids)
    std = float(dist.std())
    if not relative:
        return std
    mean = float(dist.mean())
    return std / mean if mean > 0 else 0.0
