"""KMeans on learned embeddings, as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from keras_clust.errors import UsageError
from keras_clust.progress import stage
from keras_clust.validation import check_array

_SCALINGS = ("none", "standard", "l2")


class EmbeddingKMeans(ClusterMixin, BaseEstimator):
    """KMeans preceded by an optional per-feature scaling of the embedding.

    Autoencoder codes often have a few dimensions with a much larger spread than the
    rest, which then dominate Euclidean KMeans; ``scaling="standard"`` gives every
    dimension unit variance, ``"l2"`` puts every code on the unit sphere.

    Args:
        n_clusters: Number of clusters.
        scaling: ``"none"``, ``"standard"`` or ``"l2"``.
        n_init: KMeans restarts.
        random_state: Seed or ``RandomState``.

    Attributes:
        labels_: Cluster id of each training sample.
        cluster_centers_: Centres in the scaled space.
        mean_, scale_: The standardisation learnt in ``fit`` (``"standard"`` only).
    """

    def __init__(self, n_clusters=10, scaling="standard", n_init=10, random_state=None):
        self.n_clusters = n_clusters
        self.scaling = scaling
        self.n_init = n_init
        self.random_state = random_state

    def _transform(self, x):
        if self.scaling == "standard":
            return (x - self.mean_) / self.scale_
        if self.scaling == "l2":
            return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def fit(self, X, y=None):
        if self.scaling not in _SCALINGS:
            raise UsageError(f"scaling must be one of {_SCALINGS}, got {self.scaling!r}")
        if int(self.n_clusters) < 1:
            raise UsageError(f"n_clusters must be >= 1, got {self.n_clusters}")
        x = check_array(X, "X", ndim=2, min_samples=int(self.n_clusters))
        rng = check_random_state(self.random_state)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0).astype(np.float32)
        with stage(f"KMeans (k={int(self.n_clusters)}, n_init={self.n_init}) of {len(x)} rows"):
            self.kmeans_ = KMeans(
                n_clusters=int(self.n_clusters),
                n_init=self.n_init,
                random_state=rng.randint(np.iinfo(np.int32).max),
            ).fit(self._transform(x))
        self.labels_ = self.kmeans_.labels_.astype(np.int64)
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.inertia_ = float(self.kmeans_.inertia_)
        return self

    def transform_space(self, X) -> np.ndarray:
        """Return ``X`` in the space the clusters were found in."""
        check_is_fitted(self, "kmeans_")
        return self._transform(check_array(X, "X", ndim=2))

    def predict(self, X):
        check_is_fitted(self, "kmeans_")
        return self.kmeans_.predict(self.transform_space(X)).astype(np.int64)
