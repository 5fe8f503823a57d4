"""Model builders, one module per family."""

from keras_clust.models.dense_ae import Autoencoder, build_dense_autoencoder, report_hidden_units

__all__ = ["Autoencoder", "build_dense_autoencoder", "report_hidden_units"]
