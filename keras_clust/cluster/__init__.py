"""Clustering estimators and label-matched clustering metrics."""

from keras_clust.cluster.embedding_kmeans import EmbeddingKMeans
from keras_clust.cluster.evaluate import KMeansEvaluation, evaluate_kmeans
from keras_clust.cluster.k_selection import KSelection, elbow_point, select_k
from keras_clust.cluster.metrics import (
    ClusteringScores,
    cluster_accuracy,
    contingency,
    match_clusters,
    matched_confusion_matrix,
    relabel,
    score_clustering,
)
from keras_clust.cluster.modes import (
    ModeCoverage,
    chi2_radius,
    mahalanobis_distances,
    min_share_count,
    mode_coverage,
    radius_share,
)

__all__ = [
    "KSelection", "ModeCoverage", "chi2_radius", "elbow_point", "mahalanobis_distances", "min_share_count",
    "mode_coverage", "radius_share", "select_k",
    "ClusteringScores", "EmbeddingKMeans", "KMeansEvaluation", "evaluate_kmeans", "cluster_accuracy", "contingency",
    "match_clusters", "matched_confusion_matrix", "relabel", "score_clustering",
]  # fmt: skip
