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
    train_codes,
    y_train,
    test_codes,
    y_test,
    n_clusters: int = 10,
    scaling: str = "standard",
    n_init: int = 10,
    random_state: int = 0,
) -> KMeansEvaluation:
    """Fit :class:`EmbeddingKMeans` on ``train_codes``, predict ``test_codes``, score both.

    Accuracy uses the Hungarian matching of clusters to classes; the test confusion
    matrix has true classes as rows and matched clusters as columns.
    """
    est = EmbeddingKMeans(n_clusters=n_clusters, scaling=scaling, n_init=n_init, random_state=random_state).fit(
        train_codes
    )
    test_pred = est.predict(test_codes)
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    return KMeansEvaluation(
        train=score_clustering(y_train, est.labels_, est.transform_space(train_codes), random_state=random_state),
        test=score_clustering(y_test, test_pred, est.transform_space(test_codes), random_state=random_state),
        test_clusters=test_pred,
        test_confusion=matched_confusion_matrix(y_test, test_pred, labels=labels),
    )


def evaluate_method(
    method: str,
    encoder,
    x_train,
    y_train,
    x_test,
    y_test,
    n_clusters: int = 10,
    decoder=None,
    quick: bool = False,
    random_state: int = 0,
    verbose: int = 0,
) -> KMeansEvaluation:
    """Fit ``dec``, ``idec`` or ``n2d`` on the training images through ``encoder`` (copied, never
    changed), predict the test images, score both as :func:`evaluate_kmeans` does.

    Args:
        method: ``dec``, ``idec`` or ``n2d`` (``kmeans`` is :func:`evaluate_kmeans` on the codes).
        encoder: The experiment's trained encoder (Keras model).
        x_train, y_train, x_test, y_test: Images shaped like the encoder's input, and labels.
        n_clusters: Number of clusters (the papers' other settings, :class:`~keras_clust.cluster.deep.DeepSettings`).
        decoder: The encoder's decoder (IDEC).
        quick: The smoke budgets of ``--quick``.
        random_state: Seed.
        verbose: Keras ``fit`` verbosity of DEC/IDEC's fine-tuning.
    """
    from keras_clust.cluster.deep import DeepSettings, estimator

    settings = DeepSettings.for_run(n_clusters, quick)
    est = estimator(method, settings, encoder, decoder, random_state, verbose).fit(x_train)
    test_pred = est.predict(x_test)
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    return KMeansEvaluation(
        train=score_clustering(y_train, est.labels_),
        test=score_clustering(y_test, test_pred),
        test_clusters=test_pred,
        test_confusion=matched_confusion_matrix(y_test, test_pred, labels=labels),
    )
