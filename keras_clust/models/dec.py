"""The DEC / IDEC network: an encoder followed by the Student-t clustering layer, and for
IDEC the decoder beside it."""

from __future__ import annotations

import keras

from keras_clust.layers import ClusteringLayer


def build_dec_model(
    encoder: keras.Model,
    n_clusters: int,
    alpha: float = 1.0,
    initial_centres=None,
    decoder: keras.Model | None = None,
    name: str = "dec",
) -> keras.Model:
    """Functional model ``images -> {"assignment": q[, "reconstruction": x_hat]}`` (not compiled).

    Args:
        encoder: Maps inputs to embeddings; its layers are shared, not copied.
        n_clusters: Number of clusters.
        alpha: Degrees of freedom of the Student's t kernel.
        initial_centres: ``(n_clusters, embedding_dim)`` starting centres (e.g. from KMeans).
        decoder: Maps embeddings back to inputs (IDEC); None for DEC.
        name: Model name.
    """
    inputs = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="images")
    z = encoder(inputs)
    q = ClusteringLayer(n_clusters, alpha, initial_centres, name="assignment")(z)
    outputs = {"assignment": q}
    if decoder is not None:
        outputs["reconstruction"] = keras.layers.Identity(name="reconstruction")(decoder(z))
    return keras.Model(inputs, outputs, name=name)


def build_dec_serving_model(
    encoder: keras.Model, clustering_layer: ClusteringLayer, name: str = "dec_serving"
) -> keras.Model:
    """``images -> [assignment q, embedding]`` from a (fine-tuned) encoder and its clustering layer
    (shared, not copied): what a DEC/IDEC result serves."""
    inputs = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="images")
    z = encoder(inputs)
    return keras.Model(inputs, [clustering_layer(z), z], name=name)
