"""Fit KMeans on training embeddings and score it on held-out embeddings."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from keras_clust.cluster.embedding_kmeans import EmbeddingKMeans
from keras_clust.cluster.k_selection import KChoice, choose_k, manifold_for_k
from keras_clust.cluster.metrics import ClusteringScores, matched_confusion_matrix, score_clustering


@dataclass(frozen=True)
class KMeansEvaluation:
    """Scores of KMeans fitted on training codes, on the training and test codes."""

    train: ClusteringScores
    test: ClusteringScores
    test_clusters: np.ndarray
    test_confusion: np.ndarray
    k_choice: KChoice | None = None

    def to_dict(self) -> dict:
        """The scores; with k chosen (``n_clusters=None``), also ``k`` and the criterion's curve."""
        out = {"train": self.train.to_dict(), "test": self.test.to_dict()}
        if self.k_choice is not None:
            out.update(k=self.k_choice.k, k_choice=self.k_choice.to_dict())
        return out


def k_options(settings) -> dict:
    """The k arguments of :func:`evaluate_kmeans` and :func:`evaluate_method` from a config
    declaring ``n_clusters`` (None: ``--k auto``), ``k_range`` and ``k_criterion``."""
    return {"n_clusters": settings.n_clusters, "k_range": settings.k_range, "k_criterion": settings.k_criterion}


def _evaluation(y_train, train_pred, y_test, test_pred, train_x=None, test_x=None, k_choice=None, seed=0):
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    return KMeansEvaluation(
        train=score_clustering(y_train, train_pred, train_x, random_state=seed),
        test=score_clustering(y_test, test_pred, test_x, random_state=seed),
        test_clusters=test_pred,
        test_confusion=matched_confusion_matrix(y_test, test_pred, labels=labels),
        k_choice=k_choice,
    )


def evaluate_kmeans(
    train_codes,
    y_train,
    test_codes,
    y_test,
    n_clusters: int | None = 10,
    scaling: str = "standard",
    n_init: int = 10,
    random_state: int = 0,
    k_range: tuple[int, int] = (2, 20),
    k_criterion: str = "silhouette",
) -> KMeansEvaluation:
    """Fit :class:`EmbeddingKMeans` on ``train_codes``, predict ``test_codes``, score both.

    Accuracy uses the Hungarian matching of clusters to classes; the test confusion
    matrix has true classes as rows and matched clusters as columns. ``n_clusters`` None:
    k is chosen without labels on the training codes (:func:`~keras_clust.cluster.k_selection.choose_k`
    in ``k_range`` by ``k_criterion`` on their :func:`~keras_clust.cluster.k_selection.manifold_for_k`).
    """
    k_choice = None
    if n_clusters is None:
        k_choice = choose_k(manifold_for_k(train_codes, random_state=random_state), k_range, k_criterion, random_state)
        n_clusters = k_choice.k
    est = EmbeddingKMeans(n_clusters=n_clusters, scaling=scaling, n_init=n_init, random_state=random_state)
    est.fit(train_codes)
    train_space, test_space = est.transform_space(train_codes), est.transform_space(test_codes)
    return _evaluation(
        y_train, est.labels_, y_test, est.predict(test_codes), train_space, test_space, k_choice, random_state
    )


def evaluate_method(
    method: str,
    encoder,
    x_train,
    y_train,
    x_test,
    y_test,
    n_clusters: int | None = 10,
    decoder=None,
    quick: bool = False,
    random_state: int = 0,
    verbose: int = 0,
    k_range: tuple[int, int] = (2, 20),
    k_criterion: str = "silhouette",
) -> KMeansEvaluation:
    """Fit ``dec``, ``idec`` or ``n2d`` on the training images through ``encoder`` (copied, never
    changed), predict the test images, score both as :func:`evaluate_kmeans` does.

    Args:
        method: ``dec``, ``idec`` or ``n2d`` (``kmeans`` is :func:`evaluate_kmeans` on the codes).
        encoder: The experiment's trained encoder (Keras model).
        x_train, y_train, x_test, y_test: Images shaped like the encoder's input, and labels.
        n_clusters: Number of clusters (the papers' other settings, :class:`~keras_clust.cluster.deep.DeepSettings`),
            or None to choose it in ``k_range`` by ``k_criterion`` on N2D's manifold of the
            encoder's codes of ``x_train`` (:func:`~keras_clust.cluster.deep.choose_k_on_encoder`).
        decoder: The encoder's decoder (IDEC).
        quick: The smoke budgets of ``--quick``.
        random_state: Seed.
        verbose: Keras ``fit`` verbosity of DEC/IDEC's fine-tuning.
    """
    from keras_clust.cluster.deep import DeepSettings, choose_k_on_encoder, estimator

    settings = DeepSettings.for_run(n_clusters, quick, k_range=tuple(k_range), k_criterion=k_criterion)
    k_choice = None
    if n_clusters is None:
        k_choice = choose_k_on_encoder(x_train, settings, encoder, random_state)[0]
        if k_choice.k == 1:  # no structure: one cluster, nothing to fit
            zeros = np.zeros(len(x_train), np.int64), np.zeros(len(x_test), np.int64)
            return _evaluation(y_train, zeros[0], y_test, zeros[1], k_choice=k_choice)
        settings = replace(settings, n_clusters=k_choice.k)
    est = estimator(method, settings, encoder, decoder, random_state, verbose).fit(x_train)
    return _evaluation(y_train, est.labels_, y_test, est.predict(x_test), k_choice=k_choice)
