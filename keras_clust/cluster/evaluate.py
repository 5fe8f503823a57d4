"""Fit KMeans on training embeddings and score it on held-out embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_clust.cluster.embedding_kmeans import EmbeddingKMeans
from keras_clust.cluster.metrics import ClusteringScores, matched_confusion_matrix, score_clustering


@dataclass(frozen=True)
class KMeansEvaluation:
    """Scores of KMeans fitted on training codes, on the training and test codes."""

    train: ClusteringScores
    test: ClusteringScores
    test_clusters: np.ndarray
    test_confusion: np.ndarray

    def to_dict(self) -> dict:
        return {"train": self.train.to_dict(), "test": self.test.to_dict()}


def evaluate_kmeans(
    train_codes, y_train, test_codes, y_test, n_clusters: int = 10,
    scaling: str = "standard", n_init: int = 10, random_state: int = 0,
) -> KMeansEvaluation:  # fmt: skip
    """Fit :class:`EmbeddingKMeans` on ``train_codes``, predict ``test_codes``, score both.

    Accuracy uses the Hungarian matching of clusters to classes; the test confusion
    matrix has true classes as rows and matched clusters as columns.
    """
    est = EmbeddingKMeans(n_clusters=n_clusters, scaling=scaling, n_init=n_init,
                          random_state=random_state).fit(train_codes)  # fmt: skip
    test_pred = est.predict(test_codes)
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    return KMeansEvaluation(
        train=score_clustering(y_train, est.labels_, est.transform_space(train_codes),
                               random_state=random_state),  # fmt: skip
        test=score_clustering(y_test, test_pred, est.transform_space(test_codes),
                              random_state=random_state),  # fmt: skip
        test_clusters=test_pred,
        test_confusion=matched_confusion_matrix(y_test, test_pred, labels=labels),
    )
