"""Clustering estimators and label-matched clustering metrics."""

from keras_clust.cluster.embedding_kmeans import EmbeddingKMeans
from keras_clust.cluster.evaluate import KMeansEvaluation, evaluate_kmeans
from keras_clust.cluster.metrics import (
    ClusteringScores,
    cluster_accuracy,
    contingency,
    match_clusters,
    matched_confusion_matrix,
    relabel,
    score_clustering,
)

__all__ = [
    "ClusteringScores", "EmbeddingKMeans", "KMeansEvaluation", "evaluate_kmeans", "cluster_accuracy", "contingency",
    "match_clusters", "matched_confusion_matrix", "relabel", "score_clustering",
]  # fmt: skip
