"""The convolutional autoencoder of the Fashion-MNIST report, shape for shape.

The report's PyTorch layers use numeric padding (2, 1, 0) and ``output_padding``; Keras
has neither, so the same shapes are built from ``ZeroPadding2D`` before a ``valid``
convolution and a crop after a ``valid`` transposed convolution (:class:`~keras_clust.layers.Crop2D`,
``Cropping2D`` computed as one slice: models saved before it was used load with ``Cropping2D``):

    encoder 28x28x1 -> 15x15xn -> 8x8x2n -> 3x3x4n -> 36n -> 64 -> encoded_space_dim
    decoder encoded_space_dim -> 64 -> 36n -> 3x3x4n -> 7x7x2n -> 14x14xn -> 28x28x1
"""

from __future__ import annotations

import keras

from keras_clust.errors import UsageError
from keras_clust.layers import Crop2D
from keras_clust.models.dense_ae import Autoencoder

IMAGE_SHAPE = (28, 28, 1)


def _conv(x, filters: int, pad: int, name: str):
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, 3, strides=2, padding="valid", activation="relu", name=name)(x)


def _deconv(x, filters: int, crop_start: int, name: str, activation: str = "relu"):
    """Transposed conv, stride 2, kernel 3; PyTorch ``padding=p, output_padding=1`` is a
    crop of ``p`` rows/columns at the start and ``p - 1`` at the end of the valid output."""
    x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="valid", activation=activation, name=name)(x)
    if crop_start:
        x = Crop2D(((crop_start, 0), (crop_start, 0)), name=f"{name}_crop")(x)
    return x


def build_conv_encoder(n_channels: int, encoded_space_dim: int, name: str = "cae_encoder") -> keras.Model:
    """``images (28, 28, 1) -> embedding (encoded_space_dim,)``."""
    _check(n_channels, encoded_space_dim)
    inputs = keras.Input(IMAGE_SHAPE, name="images")
    x = _conv(inputs, n_channels, 2, "enc_conv_0")  # 28 -> 15
    x = _conv(x, 2 * n_channels, 1, "enc_conv_1")  # 15 -> 8
    x = _conv(x, 4 * n_channels, 0, "enc_conv_2")  # 8 -> 3
    x = keras.layers.Flatten(name="enc_flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="enc_dense")(x)
    code = keras.layers.Dense(encoded_space_dim, name="latent")(x)
    return keras.Model(inputs, code, name=name)


def build_conv_decoder(n_channels: int, encoded_space_dim: int, name: str = "cae_decoder") -> keras.Model:
    """``embedding (encoded_space_dim,) -> images (28, 28, 1)`` in [0, 1]."""
    _check(n_channels, encoded_space_dim)
    latent = keras.Input((encoded_space_dim,), name="latent")
    x = keras.layers.Dense(64, activation="relu", name="dec_dense_0")(latent)
    x = keras.layers.Dense(36 * n_channels, activation="relu", name="dec_dense_1")(x)
    x = keras.layers.Reshape((3, 3, 4 * n_channels), name="dec_reshape")(x)
    x = _deconv(x, 2 * n_channels, 0, "dec_deconv_0")  # 3 -> 7
    x = _deconv(x, n_channels, 1, "dec_deconv_1")  # 7 -> 15 -> 14
    x = _deconv(x, 1, 1, "dec_deconv_2", activation="sigmoid")  # 14 -> 29 -> 28
    return keras.Model(latent, x, name=name)


def build_conv_autoencoder(n_channels: int = 8, encoded_space_dim: int = 14, name: str = "cae") -> Autoencoder:
    """The report's CAE (not compiled); the report's best was 8 channels, latent 14."""
    encoder = build_conv_encoder(n_channels, encoded_space_dim, f"{name}_encoder")
    decoder = build_conv_decoder(n_channels, encoded_space_dim, f"{name}_decoder")
    inputs = keras.Input(IMAGE_SHAPE, name="images")
    return Autoencoder(keras.Model(inputs, decoder(encoder(inputs)), name=name), encoder, decoder)


def _check(n_channels: int, encoded_space_dim: int) -> None:
    if n_channels < 1 or encoded_space_dim < 1:
        raise UsageError(f"n_channels and encoded_space_dim must be >= 1, got {n_channels}, {encoded_space_dim}")
