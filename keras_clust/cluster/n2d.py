"""N2D (McConville et al. 2020): "not too deep" clustering.

An autoencoder's embedding is mapped by UMAP to a low-dimensional manifold that keeps the
local neighbourhoods (``n_neighbors`` 20, ``min_dist`` 0, as many components as clusters,
Euclidean metric), and a full-covariance Gaussian mixture clusters the manifold.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from keras_clust.cluster.deep_base import DeepClusteringMixin
from keras_clust.errors import UsageError
from keras_clust.models.dense_ae import STACKED_AE_UNITS
from keras_clust.models.encoder_io import encode_in_batches
from keras_clust.progress import stage
from keras_clust.validation import check_rows


def _umap_class():
    try:
        from umap import UMAP
    except ImportError:
        raise UsageError(
            "N2D needs umap-learn: pip install umap-learn (keras-clust depends on it; reinstall keras-clust)"
        ) from None
    return UMAP


def fit_umap(codes, n_neighbors: int, n_components: int, random_state: int, min_dist: float = 0.0, metric="euclidean"):
    """The fitted ``umap.UMAP`` of ``codes`` as N2D maps them (``n_neighbors`` capped below the rows).
    Seeded, so it runs on one thread; UMAP's warning that says so is silenced."""
    manifold = _umap_class()(
        n_neighbors=min(int(n_neighbors), len(codes) - 1),
        min_dist=float(min_dist),
        metric=metric,
        n_components=int(n_components),
        random_state=random_state,
    )
    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": seeded on purpose
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        return manifold.fit(codes)


class N2D(DeepClusteringMixin):
    """N2D as a scikit-learn estimator: encoder -> UMAP -> Gaussian mixture.

    Args:
        n_clusters: Number of clusters (mixture components).
        encoder: None (pretrain the ``d-500-500-2000-10`` autoencoder on ``X``), a Keras model,
            a ``.keras`` file or a SavedModel folder (used as is, never changed).
        n_neighbors, min_dist, metric: UMAP's settings (20, 0.0, ``"euclidean"`` in N2D).
        n_components: UMAP dimensions; None means ``n_clusters`` as in N2D.
        covariance_type: The mixture's covariance (``"full"`` in N2D).
        n_init: Restarts of the mixture's EM.
        embedding_dim, hidden_units, pretrain_epochs, batch_size, pretrain_learning_rate:
            The autoencoder pretrained when no encoder is given.
        input_scale: Every batch of rows is multiplied by it before encoding (1/255 for bytes), so
            a memory-mapped byte file is encoded without a float copy of it (given encoder only).
        random_state: Seed of every random choice (a seeded UMAP runs on one thread).
        verbose: Keras ``fit`` verbosity of the pretraining.

    Attributes:
        labels_: Cluster of each training sample.
        cluster_centers_: The mixture's means, in the UMAP manifold (not the input space).
        manifold_: The fitted ``umap.UMAP``; embedding_ its coordinates of the training rows.
        mixture_: The fitted ``GaussianMixture``.
        encoder_: The encoder of the embedding.
        stage_seconds_: Time of each stage.
    """

    def __init__(
        self,
        n_clusters=10,
        encoder=None,
        n_neighbors=20,
        min_dist=0.0,
        metric="euclidean",
        n_components=None,
        covariance_type="full",
        n_init=1,
        embedding_dim=10,
        hidden_units: Sequence[int] = STACKED_AE_UNITS,
        pretrain_epochs=50,
        batch_size=256,
        pretrain_learning_rate=1e-3,
        input_scale=1.0,
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_init = n_init
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.pretrain_epochs = pretrain_epochs
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.input_scale = input_scale
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        x, seed = self._prepare(X)
        if int(self.n_neighbors) < 2:
            raise UsageError(f"n_neighbors must be >= 2, got {self.n_neighbors}")
        if self.covariance_type not in ("full", "tied", "diag", "spherical") or int(self.n_init) < 1:
            raise UsageError(
                f"covariance_type must be full, tied, diag or spherical and n_init >= 1, got "
                f"{self.covariance_type!r}, {self.n_init}"
            )
        if self.input_scale != 1.0 and self.encoder is None:
            x = np.asarray(x, dtype=np.float32) * np.float32(self.input_scale)
        _umap_class()  # the one-line error before any training
        self.stage_seconds_ = {}
        self.encoder_, _ = self._embedding_model(x, seed)
        if self.encoder is None:
            self.stage_seconds_["pretrain"] = round(self.pretrain_seconds_, 2)
        start = time.perf_counter()
        codes = encode_in_batches(self.encoder_, x, scale=self._scale())
        self._timed("encode", start)
        start = time.perf_counter()
        with stage(f"UMAP of {len(codes)} codes"):
            n_components = int(self.n_components or self.n_clusters)
            self.manifold_ = fit_umap(codes, self.n_neighbors, n_components, seed, self.min_dist, self.metric)
        self.embedding_ = np.asarray(self.manifold_.embedding_, dtype=np.float32)
        self._timed("umap", start)
        start = time.perf_counter()
        self.mixture_ = GaussianMixture(
            int(self.n_clusters), covariance_type=self.covariance_type, n_init=int(self.n_init), random_state=seed
        ).fit(self.embedding_)
        self.labels_ = self.mixture_.predict(self.embedding_).astype(np.int64)
        self.cluster_centers_ = self.mixture_.means_
        self._timed("mixture", start)
        return self

    def _scale(self) -> float:
        return 1.0 if self.encoder is None else float(self.input_scale)

    def transform(self, X) -> np.ndarray:
        """The encoder's embedding of ``X`` (before UMAP)."""
        check_is_fitted(self, "encoder_")
        return encode_in_batches(self.encoder_, check_rows(X, "X"), scale=float(self.input_scale))

    def manifold_transform(self, X) -> np.ndarray:
        """UMAP coordinates of new rows (UMAP's out-of-sample transform)."""
        check_is_fitted(self, "mixture_")
        return np.asarray(self.manifold_.transform(self.transform(X)), dtype=np.float32)

    def predict(self, X) -> np.ndarray:
        return self.mixture_.predict(self.manifold_transform(X)).astype(np.int64)
