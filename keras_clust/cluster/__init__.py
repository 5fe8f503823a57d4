"""Clustering estimators and label-matched clustering metrics."""

from keras_clust.cluster.embedding_kmeans import EmbeddingKMeans
from keras_clust.cluster.evaluate import KMeansEvaluation, evaluate_kmeans, evaluate_method
from keras_clust.cluster.k_selection import KSelection, elbow_point, select_k
from keras_clust.cluster.metrics import (
    ClusteringScores,
    cluster_accuracy,
    clustering_row,
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
    weighted_need,
)

__all__ = [
    "KSelection",
    "ModeCoverage",
    "chi2_radius",
    "elbow_point",
    "mahalanobis_distances",
    "min_share_count",
    "mode_coverage",
    "radius_share",
    "select_k",
    "weighted_need",
    "ClusteringScores",
    "EmbeddingKMeans",
    "KMeansEvaluation",
    "evaluate_kmeans",
    "evaluate_method",
    "cluster_accuracy",
    "clustering_row",
    "contingency",
    "match_clusters",
    "matched_confusion_matrix",
    "relabel",
    "score_clustering",
]

from keras_clust.cluster.pareto import ParetoClustering, dbscan_eps_range, knee_point, normalise_front  # noqa: E402
from keras_clust.cluster.silhouette import (  # noqa: E402
    KnifeRow,
    KnifeStats,
    centroid_spacing,
    cluster_means,
    knife_count,
    silhouette_knives,
    subsample_indices,
)

__all__ += [
    "KnifeRow",
    "KnifeStats",
    "ParetoClustering",
    "centroid_spacing",
    "cluster_means",
    "dbscan_eps_range",
    "knee_point",
    "knife_count",
    "normalise_front",
    "silhouette_knives",
    "subsample_indices",
]

from keras_clust.cluster.dec import DEC, IDEC, SelfTrainingKL, TargetUpdate, target_distribution  # noqa: E402
from keras_clust.cluster.deep_base import pretrain_autoencoder  # noqa: E402
from keras_clust.cluster.n2d import N2D  # noqa: E402

__all__ += ["DEC", "IDEC", "N2D", "SelfTrainingKL", "TargetUpdate", "pretrain_autoencoder", "target_distribution"]
