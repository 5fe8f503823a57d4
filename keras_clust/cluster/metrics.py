"""Clustering metrics that match cluster ids to labels before comparing them.

A cluster id is an arbitrary name: cluster 3 may hold the digit 7. Accuracy is
only meaningful after the one-to-one assignment of clusters to classes that
maximises agreement (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.metrics.cluster import contingency_matrix

from keras_clust.validation import check_array, check_labels


def contingency(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count matrix ``C[i, j]`` = samples of class ``classes[i]`` in cluster ``clusters[j]``.

    Returns:
        ``(C, classes, clusters)``.
    """
    y_true = check_labels(y_true, len(np.asarray(y_true)), "y_true")
    y_pred = check_labels(y_pred, len(y_true), "y_pred")
    counts = contingency_matrix(y_true, y_pred, dtype=np.int64)  # rows and columns in np.unique order
    return counts, np.unique(y_true), np.unique(y_pred)


def _assignment(y_true, y_pred):
    """Contingency table and the Hungarian assignment of clusters (columns) to classes (rows)."""
    counts, classes, clusters = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return counts, classes, clusters, rows, cols


def match_clusters(y_true, y_pred) -> dict[int, int]:
    """Map each cluster id to the class it is assigned to by the Hungarian algorithm.

    Clusters left over when there are more clusters than classes map to -1.
    """
    _, classes, clusters, rows, cols = _assignment(y_true, y_pred)
    mapping = {int(c): -1 for c in clusters}
    mapping.update({int(clusters[c]): int(classes[r]) for r, c in zip(rows, cols, strict=True)})
    return mapping


def relabel(y_true, y_pred) -> np.ndarray:
    """Return ``y_pred`` with every cluster id replaced by its matched class (-1 if none)."""
    _, classes, clusters, rows, cols = _assignment(y_true, y_pred)
    target = np.full(len(clusters), -1, dtype=np.int64)
    target[cols] = classes[rows]
    return target[np.searchsorted(clusters, np.asarray(y_pred))]


def cluster_accuracy(y_true, y_pred) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes."""
    counts, _, _, rows, cols = _assignment(y_true, y_pred)
    return float(counts[rows, cols].sum() / counts.sum())


def matched_confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Confusion matrix of true classes (rows) vs matched cluster classes (columns).

    Args:
        y_true: True labels.
        y_pred: Cluster ids.
        labels: Class values giving the row/column order; default the sorted classes.

    Returns:
        ``(n_classes, n_classes)`` counts; samples in unmatched clusters are not counted
        in any column, so a row sums to less than its class size when that happens.
    """
    counts, classes, _, rows, cols = _assignment(y_true, y_pred)
    labels = classes if labels is None else np.asarray(labels)
    index = {int(c): i for i, c in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    present = np.array([int(c) in index for c in classes])
    row_of = np.array([index.get(int(c), -1) for c in classes])
    for r, c in zip(rows, cols, strict=True):  # one column per matched cluster
        if int(classes[r]) in index:
            cm[row_of[present], index[int(classes[r])]] += counts[present, c]
    return cm


@dataclass(frozen=True)
class ClusteringScores:
    """Scores of one clustering against the true labels."""

    acc: float
    nmi: float
    ari: float
    silhouette: float | None
    n_clusters: int

    def to_dict(self) -> dict:
        return {
            "acc": self.acc,
            "nmi": self.nmi,
            "ari": self.ari,
            "silhouette": self.silhouette,
            "n_clusters": self.n_clusters,
        }


def score_clustering(y_true, y_pred, x=None, silhouette_sample: int = 5000, random_state: int = 0) -> ClusteringScores:
    """ACC (Hungarian-matched), NMI, ARI and, when ``x`` is given, the silhouette.

    Args:
        y_true: True labels.
        y_pred: Cluster ids.
        x: The points that were clustered (for the silhouette), or None.
        silhouette_sample: Largest number of points the silhouette is computed on.
        random_state: Seed of the silhouette subsample.
    """
    y_true = check_labels(y_true, len(np.asarray(y_true)), "y_true")
    y_pred = check_labels(y_pred, len(y_true), "y_pred")
    sil = None
    n_clusters = len(np.unique(y_pred))
    if x is not None:
        x = check_array(x, "x", ndim=2)
        if 1 < n_clusters < len(x):
            size = min(silhouette_sample, len(x))
            sil = float(silhouette_score(x, y_pred, sample_size=size, random_state=random_state))
    return ClusteringScores(
        acc=cluster_accuracy(y_true, y_pred),
        nmi=float(normalized_mutual_info_score(y_true, y_pred)),
        ari=float(adjusted_rand_score(y_true, y_pred)),
        silhouette=sil,
        n_clusters=n_clusters,
    )


def clustering_row(y_true, y_pred) -> dict:
    """ACC, NMI with both averagings the literature uses, ARI and the number of clusters, as one
    table row. NMI divides the mutual information by the arithmetic mean of the two entropies
    (scikit-learn's default, ``nmi``) or by their geometric mean (``nmi_geometric``, as DEC's code)."""
    y_true = check_labels(y_true, len(np.asarray(y_true)), "y_true")
    y_pred = check_labels(y_pred, len(y_true), "y_pred")
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic")),
        "nmi_geometric": float(normalized_mutual_info_score(y_true, y_pred, average_method="geometric")),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "clusters": int(len(np.unique(y_pred))),
    }
