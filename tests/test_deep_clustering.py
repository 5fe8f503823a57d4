"""DEC, IDEC and N2D: the target distribution and losses by hand, the clustering layer, the
estimators' contracts and results on separable data, and encoders read from disk."""

import sys
import types

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs

from keras_clust.cluster import DEC, IDEC, N2D, SelfTrainingKL, cluster_accuracy, target_distribution
from keras_clust.cluster.dec import kl_divergence_rows
from keras_clust.errors import DataError, UsageError
from keras_clust.layers import ClusteringLayer

Q = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
# By hand: f = (1.7, 1.3); p_i1 = (q_i1^2 / 1.7) / (q_i1^2 / 1.7 + q_i2^2 / 1.3)
#   = 0.81*1.3 / (0.81*1.3 + 0.01*1.7) = 1.053 / 1.07 for row 0, and so on
P = np.array([[1.053 / 1.07, 0.017 / 1.07], [0.468 / 0.74, 0.272 / 0.74], [0.052 / 1.14, 1.088 / 1.14]])
TINY = {"hidden_units": (32, 32), "embedding_dim": 3, "batch_size": 64}


def _blobs(n=400, k=4, seed=0):
    x, y = make_blobs(n, n_features=12, centers=k, cluster_std=1.0, random_state=seed)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32), y


def test_target_distribution_by_hand():
    p = target_distribution(Q)
    np.testing.assert_allclose(p, P, atol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert (p[:, 0] > Q[:, 0])[[0, 1]].all() and p[2, 0] < Q[2, 0]  # sharpened towards each row's favourite


def test_self_training_kl_looks_targets_up_by_index():
    import keras

    targets = keras.Variable(P.astype("float32"), trainable=False)
    loss = SelfTrainingKL(targets)
    by_hand = [sum(P[i, j] * np.log(P[i, j] / Q[i, j]) for j in range(2)) for i in range(3)]
    np.testing.assert_allclose(kl_divergence_rows(P, Q), by_hand, rtol=1e-6)
    # a shuffled batch: rows 2, 0 in that order; Keras passes the indices as floats
    got = float(loss(np.array([2.0, 0.0]), Q[[2, 0]].astype("float32")))
    np.testing.assert_allclose(got, (by_hand[2] + by_hand[0]) / 2, rtol=1e-5)
    assert float(loss(np.array([1.0]), P[[1]].astype("float32"))) == pytest.approx(0.0, abs=1e-6)


def test_student_t_layer_by_hand_and_rows_sum_to_one():
    layer = ClusteringLayer(2, alpha=1.0, initial_centres=[[0.0, 0.0], [1.0, 0.0]])
    q = np.asarray(layer(np.array([[0.0, 0.0], [0.5, 0.0]], "float32")))
    # (1 + d^2)^-1: (1, 1/2) -> (2/3, 1/3); the midpoint is shared equally
    np.testing.assert_allclose(q, [[2 / 3, 1 / 3], [0.5, 0.5]], atol=1e-6)
    z = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    q = np.asarray(ClusteringLayer(5, alpha=3.0)(z))
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        ClusteringLayer(3, initial_centres=np.zeros((2, 3)))(z)


def test_model_with_clustering_layer_round_trips_through_keras_file(tmp_path):
    import keras

    from keras_clust.models.dec import build_dec_model
    from keras_clust.models.dense_ae import build_stacked_autoencoder

    ae = build_stacked_autoencoder(6, 2, (8,))
    model = build_dec_model(ae.encoder, 3, alpha=1.0, initial_centres=np.eye(3, 2), decoder=ae.decoder)
    x = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    model.save(tmp_path / "dec.keras")
    again = keras.models.load_model(tmp_path / "dec.keras")
    for key in ("assignment", "reconstruction"):
        np.testing.assert_allclose(again.predict(x, verbose=0)[key], model.predict(x, verbose=0)[key], atol=1e-6)
    np.testing.assert_allclose(again.get_layer("assignment").clusters.numpy(), np.eye(3, 2))


def test_dec_separates_blobs_and_stops_when_labels_settle():
    x, y = _blobs()
    est = DEC(4, pretrain_epochs=20, max_iter=400, update_interval=10, random_state=0, **TINY).fit(x)
    assert cluster_accuracy(y, est.labels_) == 1.0
    assert est.converged_ and est.n_iter_ < 400 and est.label_changes_[-1] < 0.001
    # an update after every 10 batches, the first before training: training ends right at one
    assert est.n_iter_ % 10 == 0 and len(est.label_changes_) == est.n_iter_ // 10
    # self-training moved the centres away from KMeans's (a no-op fine-tune would leave them)
    assert np.abs(est.cluster_centers_ - est.initial_centers_).max() > 1e-3
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    np.testing.assert_allclose(est.predict_proba(x).sum(axis=1), 1.0, atol=1e-5)
    assert est.cluster_centers_.shape == (4, 3) and est.transform(x).shape == (400, 3)
    stopped = DEC(4, pretrain_epochs=2, max_iter=5, update_interval=2, tol=0.0, random_state=0, **TINY).fit(x)
    assert stopped.n_iter_ == 5 and not stopped.converged_


def test_dec_is_deterministic_and_leaves_a_given_encoder_alone():
    from keras_clust.models.dense_ae import build_stacked_autoencoder

    x, _ = _blobs(200, 3)
    ae = build_stacked_autoencoder(12, 3, (16,))
    before = [w.copy() for w in ae.encoder.get_weights()]
    args = {"encoder": ae.encoder, "max_iter": 30, "update_interval": 5, "random_state": 3, "batch_size": 32}
    a, b = DEC(3, **args).fit(x), DEC(3, **args).fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-6)
    for w0, w1 in zip(before, ae.encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    assert a.pretrain_history_ == [] and "pretrain" not in a.stage_seconds_


def test_idec_loss_is_gamma_kl_plus_reconstruction():
    import keras

    from keras_clust.models.dec import build_dec_model
    from keras_clust.models.dense_ae import build_stacked_autoencoder

    rng = np.random.default_rng(0)
    x = rng.random((8, 5), dtype=np.float32)
    ae = build_stacked_autoencoder(5, 2, (4,))
    model = build_dec_model(ae.encoder, 2, initial_centres=[[0.0, 0.0], [1.0, 1.0]], decoder=ae.decoder)
    q = model.predict(x, verbose=0)["assignment"]
    targets = keras.Variable(target_distribution(q), trainable=False)
    losses, weights = IDEC(gamma=0.25)._losses(targets)
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights)
    y = {"assignment": np.arange(8, dtype="float32"), "reconstruction": x}
    total = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["loss"]
    kl = kl_divergence_rows(target_distribution(q), q).mean()
    mse = np.mean((model.predict(x, verbose=0)["reconstruction"] - x) ** 2)
    assert total == pytest.approx(0.25 * kl + mse, rel=1e-4)
    assert kl > 0 and mse > 0


def test_idec_separates_blobs_and_needs_a_decoder_for_a_given_encoder():
    x, y = _blobs()
    est = IDEC(4, pretrain_epochs=20, max_iter=400, update_interval=10, random_state=0, **TINY).fit(x)
    assert cluster_accuracy(y, est.labels_) == 1.0
    assert {"reconstruction_loss", "assignment_loss"} <= {k for r in est.history_ for k in r}
    from keras_clust.models.dense_ae import build_stacked_autoencoder

    ae = build_stacked_autoencoder(12, 3, (8,))
    with pytest.raises(UsageError, match="decoder"):
        IDEC(4, encoder=ae.encoder).fit(x)
    before = [w.copy() for w in ae.decoder.get_weights()]
    IDEC(4, encoder=ae.encoder, decoder=ae.decoder, max_iter=6, update_interval=3, batch_size=64).fit(x)
    assert all(np.array_equal(a, b) for a, b in zip(before, ae.decoder.get_weights(), strict=True))
    other = build_stacked_autoencoder(12, 2, (8,)).decoder  # takes 2 numbers, the encoder gives 3
    with pytest.raises(UsageError, match=r"decoder takes \(2,\) but the encoder gives \(3,\)"):
        IDEC(4, encoder=ae.encoder, decoder=other).fit(x)


def test_target_update_refreshes_every_interval_and_stops_on_settled_labels():
    import keras

    from keras_clust.cluster.dec import TargetUpdate
    from keras_clust.models.dec import build_dec_model

    x = np.random.default_rng(0).random((40, 3), dtype=np.float32)
    enc_in = keras.Input((3,))
    encoder = keras.Model(enc_in, keras.layers.Dense(2, name="z")(enc_in))
    model = build_dec_model(encoder, 2, initial_centres=[[0.0, 0.0], [1.0, 1.0]])
    targets = keras.Variable(np.zeros((40, 2), "float32"), trainable=False)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss={"assignment": SelfTrainingKL(targets)})  # frozen
    cb = TargetUpdate(x, targets, interval=3, tol=0.0, max_iter=7)
    model.fit(x, {"assignment": np.arange(40, dtype="float32")}, batch_size=4, epochs=5, verbose=0, callbacks=[cb])
    assert cb.iterations == 7 and not cb.converged and cb.changes == [0.0, 0.0]  # updates after batches 3 and 6
    q = model.predict(x, verbose=0)["assignment"]
    np.testing.assert_allclose(targets.numpy(), target_distribution(q), atol=1e-6)
    cb = TargetUpdate(x, targets, interval=3, tol=0.01, max_iter=100)  # nothing moves: stops at the first check
    model.fit(x, {"assignment": np.arange(40, dtype="float32")}, batch_size=4, epochs=5, verbose=0, callbacks=[cb])
    assert cb.converged and cb.iterations == 3


# slow: 63 s: UMAP on all 1,797 digits; N2D runs end to end in cluster-bench's quick run
@pytest.mark.slow
def test_n2d_on_digits_beats_kmeans_on_pixels():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    kmeans = cluster_accuracy(d.target, KMeans(10, n_init=20, random_state=0).fit_predict(x))
    est = N2D(10, hidden_units=(128, 128, 512), pretrain_epochs=30, random_state=0).fit(x)  # a smaller AE: faster
    n2d = cluster_accuracy(d.target, est.labels_)
    assert n2d > kmeans + 0.03, (n2d, kmeans)  # measured 0.874 (seed 1: 0.835) against 0.792
    assert est.embedding_.shape == (len(x), 10) and est.cluster_centers_.shape == (10, 10)
    # UMAP's out-of-sample transform puts the training rows back in their own clusters (mostly)
    assert np.mean(est.predict(x[:300]) == est.labels_[:300]) > 0.9
    again = N2D(10, encoder=est.encoder_.model, random_state=0).fit(x)  # same seed, same encoder: same labels
    np.testing.assert_array_equal(again.labels_, est.labels_)


class _ProjectionManifold:
    """Stands in for ``umap.UMAP`` where only N2D's own conventions are checked: UMAP's
    constructor arguments and ``fit``/``embedding_``/``transform``, as a seeded random linear
    projection. A real UMAP compiles its numba kernels in each process (10 s; 25 s on a fresh
    install); it runs in tests/test_cluster_apps.py (N2D in process, cluster-bench's quick run)."""

    fits = 0

    def __init__(self, n_neighbors=15, min_dist=0.1, metric="euclidean", n_components=2, random_state=None):
        self.n_neighbors, self.min_dist, self.metric = n_neighbors, min_dist, metric
        self.n_components, self.random_state = n_components, random_state

    def fit(self, X):
        type(self).fits += 1
        rng = np.random.default_rng(self.random_state)
        self.projection_ = rng.normal(size=(X.shape[1], self.n_components))
        self.embedding_ = self.transform(X)
        return self

    def transform(self, X):
        return np.asarray(X) @ self.projection_


def test_estimators_follow_scikit_learn_conventions(monkeypatch):
    from sklearn.base import clone
    from sklearn.utils.estimator_checks import (
        check_dont_overwrite_parameters,
        check_fit2d_1sample,
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=_ProjectionManifold))
    monkeypatch.setattr(_ProjectionManifold, "fits", 0)
    for cls in (DEC, IDEC, N2D):
        est = cls(3, pretrain_epochs=1, random_state=0, hidden_units=(8,), embedding_dim=2)
        if cls is not N2D:
            est.set_params(max_iter=4, update_interval=2)
        name = cls.__name__
        for check in (
            check_no_attributes_set_in_init,
            check_parameters_default_constructible,
            check_get_params_invariance,
            check_set_params,
            check_fit2d_1sample,
        ):
            check(name, est)
        check_dont_overwrite_parameters(name, est)
        assert clone(est).get_params() == est.get_params()
    assert _ProjectionManifold.fits == 1  # N2D's fit ran, on the stand-in
    with pytest.raises(DataError, match="NaN"):
        DEC(2).fit(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]))
    with pytest.raises(UsageError, match="tol"):
        DEC(2, tol=1.5).fit(np.zeros((4, 2)))
