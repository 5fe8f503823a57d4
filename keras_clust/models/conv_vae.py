"""Convolutional VAE: three conv + two dense layers with batch normalisation per side."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from keras_clust.errors import UsageError
from keras_clust.models.vae_head import vae_head

IMAGE_SHAPE = (28, 28, 1)


@dataclass
class VAE:
    """The models of a VAE, sharing layers.

    Attributes:
        vae: ``images -> reconstruction`` (samples ``z``; the KL is in its losses).
        encoder: ``images -> [z_mean, z_log_var, z]``.
        mean_encoder: ``images -> z_mean``, deterministic: the model to export and cluster.
        decoder: ``latent -> images``.
    """

    vae: keras.Model
    encoder: keras.Model
    mean_encoder: keras.Model
    decoder: keras.Model


def _block(x, layer, name):
    x = layer(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build_conv_vae(
    latent_dim: int = 2,
    n_channels: int = 32,
    hidden_units: int = 128,
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "conv_vae",
) -> VAE:
    """Build a conv VAE for 28x28x1 images in [0, 1] (not compiled).

    Encoder: Conv(n, s2) 28->14, Conv(2n, s2) 14->7, Conv(4n, s2) 7->4, each with BN and
    ReLU; Dense(hidden) with BN; heads ``z_mean`` and ``z_log_var``; :class:`KLDivergence`
    (weight ``beta``) and :class:`Sampling`. The decoder mirrors it with transposed convs.
    """
    if min(latent_dim, n_channels, hidden_units) < 1:
        raise UsageError("latent_dim, n_channels and hidden_units must be >= 1")
    n = n_channels
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = images
    for i, filters in enumerate((n, 2 * n, 4 * n)):
        x = _block(x, keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"enc_conv_{i}"), f"enc_conv_{i}")
    x = keras.layers.Flatten(name="enc_flatten")(x)
    x = _block(x, keras.layers.Dense(hidden_units, name="enc_dense"), "enc_dense")
    z_mean, z_log_var, z, _, _ = vae_head(x, latent_dim, beta, seed)
    encoder = keras.Model(images, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(images, z_mean, name=f"{name}_mean_encoder")

    latent = keras.Input((latent_dim,), name="latent")
    x = _block(latent, keras.layers.Dense(hidden_units, name="dec_dense_0"), "dec_dense_0")
    x = _block(x, keras.layers.Dense(4 * 4 * 4 * n, name="dec_dense_1"), "dec_dense_1")
    x = keras.layers.Reshape((4, 4, 4 * n), name="dec_reshape")(x)
    x = _block(
        x, keras.layers.Conv2DTranspose(2 * n, 3, strides=2, padding="same", name="dec_deconv_0"), "dec_deconv_0"
    )  # 4 -> 8
    x = keras.layers.Cropping2D(((0, 1), (0, 1)), name="dec_crop")(x)  # 8 -> 7
    x = _block(
        x, keras.layers.Conv2DTranspose(n, 3, strides=2, padding="same", name="dec_deconv_1"), "dec_deconv_1"
    )  # 7 -> 14
    out = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid", name="dec_deconv_2")(
        x
    )  # 14 -> 28
    decoder = keras.Model(latent, out, name=f"{name}_decoder")

    vae = keras.Model(images, decoder(encoder(images)[2]), name=name)
    return VAE(vae, encoder, mean_encoder, decoder)
