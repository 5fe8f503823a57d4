"""Deep Embedded Clustering (DEC, Xie et al. 2016) and Improved DEC (IDEC, Guo et al. 2017).

Both start from an embedding (a given encoder, or the ``d-500-500-2000-10`` autoencoder
pretrained on the data), put KMeans centres (``n_init`` 20) into a Student-t clustering
layer, and then train encoder and centres by self-training: every ``update_interval``
batches the soft assignments ``q`` of all samples give the target

    p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'),   f_j = sum_i q_ij,

and the loss is ``KL(P || Q)``. Training stops when fewer than ``tol`` of the labels
changed between two target updates, or after ``max_iter`` batches. IDEC adds the
autoencoder's reconstruction MSE so the embedding keeps its local structure:
``L = L_reconstruction + gamma * KL(P || Q)`` (IDEC eq. 7, gamma 0.1).

Training runs through ``compile``/``fit``: the targets live in a non-trainable variable that
the :class:`TargetUpdate` callback refreshes; each batch carries the indices of its samples
and :class:`SelfTrainingKL` looks their targets up, so shuffling never mixes targets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted

from keras_clust.cluster.deep_base import DeepClusteringMixin, copy_model
from keras_clust.errors import DataError, UsageError
from keras_clust.models.dec import build_dec_model
from keras_clust.models.dense_ae import STACKED_AE_UNITS
from keras_clust.models.encoder_io import as_input_rows, encode_in_batches, load_encoder
from keras_clust.progress import stage
from keras_clust.validation import check_rows

_EPS = 1e-12
#: Sample indices travel as float32 targets (Keras casts them); exact up to 2**24 rows.
MAX_ROWS = 2**24


def target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's auxiliary target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``, ``f_j = sum_i q_ij``."""
    q = np.asarray(q, dtype=np.float64)
    weight = q**2 / np.maximum(q.sum(axis=0), _EPS)
    return (weight / np.maximum(weight.sum(axis=1, keepdims=True), _EPS)).astype(np.float32)


def kl_divergence_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p_i || q_i)`` of every row (terms with ``p = 0`` count 0)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return np.sum(np.where(p > 0, p * (np.log(np.maximum(p, _EPS)) - np.log(np.maximum(q, _EPS))), 0.0), axis=1)


class SelfTrainingKL(keras.losses.Loss):
    """``KL(P_i || Q_i)`` per sample, with ``P_i`` looked up in ``targets`` by the sample's index.

    ``y_true`` holds the samples' row indices (as floats: Keras casts targets to the loss's
    dtype), ``y_pred`` the soft assignments ``q``. Not serialisable: it holds the fit's
    target variable, and models are saved without it.

    Args:
        targets: Non-trainable ``keras.Variable`` of shape ``(n_samples, n_clusters)``.
    """

    def __init__(self, targets, name: str = "self_training_kl", **kwargs):
        super().__init__(name=name, **kwargs)
        self.targets = targets

    def call(self, y_true, y_pred):
        index = ops.cast(ops.round(ops.reshape(y_true, (-1,))), "int32")
        p = ops.take(self.targets, index, axis=0)
        q = ops.clip(y_pred, _EPS, 1.0)
        return ops.sum(ops.where(p > 0, p * (ops.log(ops.clip(p, _EPS, 1.0)) - ops.log(q)), 0.0), axis=-1)


class TargetUpdate(keras.callbacks.Callback):
    """Refresh DEC's targets every ``interval`` batches and stop when the labels settle.

    The first targets are computed before the first batch; after every ``interval``-th batch the
    soft assignments of all samples are recomputed, and training ends right there (before another
    batch) when fewer than ``tol`` of the labels changed, or after ``max_iter`` batches.

    Args:
        x: All training inputs (shaped like the model's input).
        targets: The variable :class:`SelfTrainingKL` reads.
        interval: Batches between updates (``T``).
        tol: Stop when fewer than this share of labels changed since the last update.
        max_iter: Stop after this many batches.
        output: Name of the clustering layer.

    Attributes:
        changes: Share of changed labels at each update after the first.
        iterations: Batches trained.
        converged: Whether ``tol`` stopped training (not ``max_iter``).
    """

    def __init__(self, x, targets, interval: int, tol: float, max_iter: int, output: str = "assignment"):
        super().__init__()
        self.x, self.targets = x, targets
        self.interval, self.tol, self.max_iter, self.output = int(interval), float(tol), int(max_iter), output

    def on_train_begin(self, logs=None):
        self._assign = load_encoder(keras.Model(self.model.input, self.model.get_layer(self.output).output))
        self.changes: list[float] = []
        self.iterations, self.labels, self.converged = 0, None, False
        self._update()

    def _update(self) -> None:
        q = encode_in_batches(self._assign, self.x)
        labels = q.argmax(axis=1)
        if self.labels is not None:
            change = float(np.mean(labels != self.labels))
            self.changes.append(change)
            if change < self.tol:
                self.converged = True
                self.model.stop_training = True
        self.labels = labels
        self.targets.assign(target_distribution(q))

    def on_train_batch_end(self, batch, logs=None):
        self.iterations += 1
        if self.iterations >= self.max_iter:
            self.model.stop_training = True
        elif self.iterations % self.interval == 0:
            self._update()


class DEC(DeepClusteringMixin):
    """Deep Embedded Clustering as a scikit-learn estimator.

    Args:
        n_clusters: Number of clusters.
        encoder: None (pretrain the ``d-500-500-2000-10`` autoencoder on ``X``), a Keras model,
            a ``.keras`` file or an exported SavedModel folder holding ``model.keras``. A given
            model is copied, never changed.
        alpha: Degrees of freedom of the Student's t kernel (1 in DEC).
        update_interval: Batches between target updates (140 in DEC's MNIST setting).
        tol: Stop when fewer than this share of labels change between updates (0.1 %).
        max_iter: Most fine-tuning batches (2e4 in the papers).
        learning_rate, momentum: SGD of the fine-tuning (0.01, 0.9 in DEC).
        n_init: KMeans restarts of the initial centres (20 in DEC).
        embedding_dim, hidden_units: The pretrained autoencoder's shape.
        pretrain_epochs, batch_size, pretrain_learning_rate: Its training (Adam).
        random_state: Seed of every random choice of ``fit``.
        verbose: Keras ``fit`` verbosity.

    Attributes:
        labels_: Cluster of each training sample after fine-tuning.
        cluster_centers_: Centres in the embedding (the clustering layer's weights).
        model_: The fine-tuned network (``images -> {"assignment": q, ...}``), not compiled.
        assignment_model_: Its ``images -> q`` part.
        encoder_: The fine-tuned encoder.
        initial_labels_, initial_centers_: KMeans on the starting embedding (DEC's starting point).
        label_changes_: Share of labels changed at each target update.
        n_iter_: Fine-tuning batches run; converged_: whether ``tol`` ended them.
        history_: Per-epoch rows of pretraining and fine-tuning.
        stage_seconds_: Time of each stage.
    """

    _reconstructs = False

    def __init__(
        self,
        n_clusters=10,
        encoder=None,
        alpha=1.0,
        update_interval=140,
        tol=0.001,
        max_iter=20000,
        learning_rate=0.01,
        momentum=0.9,
        n_init=20,
        embedding_dim=10,
        hidden_units: Sequence[int] = STACKED_AE_UNITS,
        pretrain_epochs=50,
        batch_size=256,
        pretrain_learning_rate=1e-3,
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.n_init = n_init
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.pretrain_epochs = pretrain_epochs
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.random_state = random_state
        self.verbose = verbose

    def _losses(self, targets):
        return {"assignment": SelfTrainingKL(targets)}, {"assignment": 1.0}

    def _decoder(self, decoder):
        return None

    def _check_params(self, n_rows: int) -> None:
        for name in ("update_interval", "max_iter", "batch_size", "n_init"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= float(self.tol) < 1:
            raise UsageError(f"tol must be in [0, 1), got {self.tol}")
        if n_rows > MAX_ROWS:
            raise DataError(
                f"{type(self).__name__} fine-tunes on at most {MAX_ROWS} rows, got {n_rows}; subsample the data"
            )

    def fit(self, X, y=None):
        x, seed = self._prepare(X)
        self._check_params(len(x))
        x = np.asarray(x, dtype=np.float32)  # fine-tuning trains on every row: in memory
        self.stage_seconds_ = {}
        encoder, decoder = self._embedding_model(x, seed, trainable=True)
        decoder = self._decoder(decoder)
        if decoder is not None and tuple(decoder.inputs[0].shape[1:]) != tuple(encoder.outputs[0].shape[1:]):
            raise UsageError(
                f"the decoder takes {tuple(decoder.inputs[0].shape[1:])} but the encoder gives "
                f"{tuple(encoder.outputs[0].shape[1:])}; pass the decoder of this encoder"
            )
        if decoder is not None and int(np.prod(decoder.outputs[0].shape[1:])) != int(np.prod(x.shape[1:])):
            raise UsageError(
                f"the decoder gives {tuple(decoder.outputs[0].shape[1:])} per row but the data has "
                f"{tuple(x.shape[1:])}; IDEC needs a decoder that reconstructs its input "
                "(use DEC)"
            )
        if self.encoder is None:
            self.stage_seconds_["pretrain"] = round(self.pretrain_seconds_, 2)
        x_in = as_input_rows(x, tuple(int(d) for d in encoder.inputs[0].shape[1:]), "X")

        start = time.perf_counter()
        codes = encode_in_batches(load_encoder(encoder), x_in)
        with stage(f"KMeans initial centres (k={int(self.n_clusters)}) of {len(codes)} codes"):
            kmeans = KMeans(int(self.n_clusters), n_init=int(self.n_init), random_state=seed).fit(codes)
        self.initial_labels_ = kmeans.labels_.astype(np.int64)
        self.initial_centers_ = np.asarray(kmeans.cluster_centers_, dtype=np.float32)
        self._timed("kmeans", start)

        start = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = build_dec_model(encoder, int(self.n_clusters), float(self.alpha), kmeans.cluster_centers_, decoder)
        targets = keras.Variable(
            np.zeros((len(x), int(self.n_clusters)), np.float32), trainable=False, name="dec_targets"
        )
        losses, weights = self._losses(targets)
        model.compile(
            optimizer=keras.optimizers.SGD(self.learning_rate, momentum=self.momentum),
            loss=losses,
            loss_weights=weights,
        )
        y_fit = {"assignment": np.arange(len(x), dtype=np.float32)}
        if decoder is not None:
            y_fit["reconstruction"] = x.reshape(len(x), *(int(d) for d in decoder.outputs[0].shape[1:]))
        update = TargetUpdate(x_in, targets, self.update_interval, self.tol, self.max_iter)
        steps = math.ceil(len(x) / int(self.batch_size))
        hist = model.fit(
            x_in,
            y_fit,
            batch_size=int(self.batch_size),
            epochs=math.ceil(int(self.max_iter) / steps),
            shuffle=True,
            verbose=self.verbose,
            callbacks=[keras.callbacks.TerminateOnNaN(), update],
        )
        losses_seen = hist.history.get("loss", [])
        if losses_seen and not np.isfinite(losses_seen[-1]):
            raise DataError(f"{type(self).__name__} fine-tuning diverged (loss became NaN); lower learning_rate")
        self._timed("fine_tune", start)

        self.model_ = keras.Model(model.input, model.output, name=model.name)  # uncompiled: no target variable
        self.encoder_ = load_encoder(encoder)
        self.assignment_model_ = keras.Model(model.input, model.get_layer("assignment").output, name="assignment")
        self.label_changes_ = update.changes
        self.n_iter_ = update.iterations
        self.converged_ = update.converged
        self.cluster_centers_ = np.asarray(model.get_layer("assignment").clusters.numpy())
        self.history_ = list(self.pretrain_history_) + [
            {"stage": "fine_tune", "epoch": i + 1, **{k: float(v[i]) for k, v in hist.history.items()}}
            for i in range(len(hist.history.get("loss", [])))
        ]
        self.labels_ = self.predict_proba(x_in).argmax(axis=1).astype(np.int64)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Soft assignments ``q`` (rows sum to 1)."""
        check_is_fitted(self, "assignment_model_")
        return encode_in_batches(load_encoder(self.assignment_model_), check_rows(X, "X"))

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)


class IDEC(DEC):
    """Improved DEC: DEC's self-training plus the autoencoder's reconstruction loss,
    ``L = MSE(x, x_hat) + gamma * KL(P || Q)`` (Guo et al. 2017, eq. 7).

    Args:
        gamma: Weight of the clustering term (0.1 in IDEC).
        decoder: The decoder matching a given ``encoder`` (model or ``.keras`` file); needed
            when ``encoder`` is given, unused when the autoencoder is pretrained here.
        Other arguments: as :class:`DEC`.
    """

    _reconstructs = True

    def __init__(
        self,
        n_clusters=10,
        encoder=None,
        decoder=None,
        gamma=0.1,
        alpha=1.0,
        update_interval=140,
        tol=0.001,
        max_iter=20000,
        learning_rate=0.01,
        momentum=0.9,
        n_init=20,
        embedding_dim=10,
        hidden_units: Sequence[int] = STACKED_AE_UNITS,
        pretrain_epochs=50,
        batch_size=256,
        pretrain_learning_rate=1e-3,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_clusters=n_clusters,
            encoder=encoder,
            alpha=alpha,
            update_interval=update_interval,
            tol=tol,
            max_iter=max_iter,
            learning_rate=learning_rate,
            momentum=momentum,
            n_init=n_init,
            embedding_dim=embedding_dim,
            hidden_units=hidden_units,
            pretrain_epochs=pretrain_epochs,
            batch_size=batch_size,
            pretrain_learning_rate=pretrain_learning_rate,
            random_state=random_state,
            verbose=verbose,
        )
        self.decoder = decoder
        self.gamma = gamma

    def _check_params(self, n_rows: int) -> None:
        super()._check_params(n_rows)
        if not float(self.gamma) >= 0:
            raise UsageError(f"gamma must be >= 0, got {self.gamma}")

    def _losses(self, targets):
        return (
            {"assignment": SelfTrainingKL(targets), "reconstruction": "mse"},
            {"assignment": float(self.gamma), "reconstruction": 1.0},
        )

    def _decoder(self, decoder):
        if self.encoder is None:
            return decoder
        if self.decoder is None:
            raise UsageError("IDEC with a given encoder needs its decoder too (decoder=..., --decoder FILE)")
        given = load_encoder(self.decoder)
        if not given.trainable:
            raise UsageError(
                f"IDEC fine-tunes the decoder, but {given.source} is a bare SavedModel; pass its .keras file"
            )
        return copy_model(given.model)
