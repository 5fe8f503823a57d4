import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, confusion_matrix, normalized_mutual_info_score

from keras_clust.cluster import (
    EmbeddingKMeans,
    cluster_accuracy,
    evaluate_kmeans,
    match_clusters,
    matched_confusion_matrix,
    score_clustering,
)
from keras_clust.errors import DataError


def test_permuted_labels_score_one():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    perm = np.array([3, 0, 2, 1])  # cluster id = perm[class]
    pred = perm[y]
    assert cluster_accuracy(y, pred) == 1.0
    s = score_clustering(y, pred)
    assert s.acc == 1.0 and s.nmi == pytest.approx(1.0) and s.ari == pytest.approx(1.0)
    assert match_clusters(y, pred) == {3: 0, 0: 1, 2: 2, 1: 3}


def test_hand_computed_accuracy():
    # classes 0,0,0,1,1,1; clusters 5,5,7,7,7,5: best matching 5->0 (2), 7->1 (2) => 4/6
    y = [0, 0, 0, 1, 1, 1]
    pred = [5, 5, 7, 7, 7, 5]
    assert cluster_accuracy(y, pred) == pytest.approx(4 / 6)
    np.testing.assert_array_equal(matched_confusion_matrix(y, pred), [[2, 1], [1, 2]])


def test_more_clusters_than_classes():
    # three clusters for two classes: the unmatched cluster's samples count as errors
    y = [0, 0, 1, 1, 1, 1]
    pred = [0, 0, 1, 1, 2, 2]
    assert cluster_accuracy(y, pred) == pytest.approx(4 / 6)
    assert match_clusters(y, pred)[0] == 0 and -1 in match_clusters(y, pred).values()
    assert matched_confusion_matrix(y, pred).sum() == 4


def test_one_cluster():
    y = [0, 1, 2, 0, 1, 2]
    assert cluster_accuracy(y, [4] * 6) == pytest.approx(2 / 6)


def test_agrees_with_sklearn_and_is_at_least_diagonal():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = rng.integers(0, 5, 300)
    s = score_clustering(y, pred)
    assert s.nmi == pytest.approx(normalized_mutual_info_score(y, pred))
    assert s.ari == pytest.approx(adjusted_rand_score(y, pred))
    # the matched accuracy is at least the identity matching's accuracy
    assert s.acc >= np.trace(confusion_matrix(y, pred)) / 300
    # and matched confusion diagonal equals the matched accuracy
    cm = matched_confusion_matrix(y, pred)
    assert np.trace(cm) / 300 == pytest.approx(s.acc)


def test_report_seed_mistake_is_fixed():
    # a perfect clustering whose ids are shifted by one scores 0 without matching
    y = np.repeat(np.arange(10), 10)
    pred = (y + 1) % 10
    assert np.mean(pred == y) == 0.0
    assert cluster_accuracy(y, pred) == 1.0


def test_silhouette_on_blobs(blobs):
    x, y = blobs
    s = score_clustering(y, y, x)
    assert s.silhouette > 0.9 and s.n_clusters == 3


def test_bad_inputs():
    with pytest.raises(DataError, match="entries"):
        cluster_accuracy([0, 1], [0])
    with pytest.raises(DataError, match="NaN"):
        score_clustering([0, 1, 1], [0, 1, 1], np.array([[0.0], [np.nan], [1.0]]))


def test_embedding_kmeans_is_an_estimator(blobs):
    x, y = blobs
    est = EmbeddingKMeans(n_clusters=3, random_state=0)
    assert est.get_params()["n_clusters"] == 3
    est.fit(x)
    assert cluster_accuracy(y, est.labels_) == 1.0
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    again = EmbeddingKMeans(n_clusters=3, random_state=0).fit(x)
    np.testing.assert_array_equal(again.labels_, est.labels_)


def test_embedding_kmeans_scaling_is_invariant_to_feature_scale(blobs):
    x, y = blobs
    stretched = x * np.array([1000.0, 0.001], np.float32)
    est = EmbeddingKMeans(n_clusters=3, scaling="standard", random_state=0).fit(stretched)
    assert cluster_accuracy(y, est.labels_) == 1.0


def test_embedding_kmeans_rejects_nan_and_checks_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(DataError, match="NaN"):
        EmbeddingKMeans(n_clusters=2).fit(np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(NotFittedError):
        EmbeddingKMeans().predict(np.zeros((2, 2)))


def test_evaluate_kmeans(blobs):
    x, y = blobs
    ev = evaluate_kmeans(x[::2], y[::2], x[1::2], y[1::2], n_clusters=3, random_state=0)
    assert ev.train.acc == 1.0 and ev.test.acc == 1.0
    assert ev.test_confusion.trace() == len(y[1::2])
