"""Dense (fully connected) autoencoders on flattened inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

from keras_clust.errors import UsageError


def halving_hidden_units(latent_dim: int, start: int = 256) -> tuple[int, ...]:
    """Encoder hidden widths ``start, start/2, ...`` while they stay above ``latent_dim``.

    >>> halving_hidden_units(16)
    (256, 128, 64, 32)
    >>> halving_hidden_units(256)
    ()
    """
    if latent_dim < 1 or start < 1:
        raise UsageError(f"latent dimension and start width must be >= 1, got {latent_dim}, {start}")
    units, width = [], start
    while width > latent_dim:
        units.append(width)
        width //= 2
    return tuple(units)


@dataclass
class Autoencoder:
    """The three models of an autoencoder; they share their layers."""

    autoencoder: keras.Model
    encoder: keras.Model
    decoder: keras.Model


def build_dense_autoencoder(
    input_dim: int,
    latent_dim: int,
    hidden_units: Sequence[int] | None = None,
    activation: str = "relu",
    output_activation: str = "sigmoid",
    kernel_initializer: str = "he_normal",
    name: str = "dense_ae",
) -> Autoencoder:
    """Build a dense autoencoder with a mirrored decoder (not compiled).

    Args:
        input_dim: Length of the flattened input.
        latent_dim: Size of the code (linear ``latent`` layer).
        hidden_units: Encoder hidden widths; default :func:`halving_hidden_units`.
        activation: Activation of the hidden layers.
        output_activation: Activation of the reconstruction (``sigmoid`` for [0, 1] data).
        kernel_initializer: Initializer of the hidden and latent layers. ``he_normal``
            suits ReLU stacks: with Keras' default (Glorot) the 8-layer L1 model of the
            report sits for tens of epochs at the "mean image" plateau (L1 0.13 on MNIST).
        name: Prefix of the model names.

    Returns:
        An :class:`Autoencoder` whose ``encoder`` maps ``images -> latent`` and whose
        ``decoder`` maps ``latent -> reconstruction``.
    """
    if input_dim < 1 or latent_dim < 1:
        raise UsageError(f"input_dim and latent_dim must be >= 1, got {input_dim}, {latent_dim}")
    hidden = tuple(halving_hidden_units(latent_dim) if hidden_units is None else hidden_units)

    inputs = keras.Input((input_dim,), name="images")
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(
            units, activation=activation, kernel_initializer=kernel_initializer, name=f"enc_dense_{i}"
        )(h)
    code = keras.layers.Dense(latent_dim, kernel_initializer=kernel_initializer, name="latent")(h)
    encoder = keras.Model(inputs, code, name=f"{name}_encoder")

    latent_in = keras.Input((latent_dim,), name="latent")
    h = latent_in
    for i, units in enumerate(reversed(hidden)):
        h = keras.layers.Dense(
            units, activation=activation, kernel_initializer=kernel_initializer, name=f"dec_dense_{i}"
        )(h)
    out = keras.layers.Dense(input_dim, activation=output_activation, name="reconstruction")(h)
    decoder = keras.Model(latent_in, out, name=f"{name}_decoder")

    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name=name)
    return Autoencoder(autoencoder, encoder, decoder)


#: Encoder widths of the autoencoder DEC, IDEC and N2D pretrain: d-500-500-2000-10.
STACKED_AE_UNITS = (500, 500, 2000)


def build_stacked_autoencoder(
    input_dim: int, embedding_dim: int = 10, hidden_units: Sequence[int] = STACKED_AE_UNITS
) -> Autoencoder:
    """The deep-clustering papers' autoencoder: ``d-500-500-2000-10``, ReLU hidden layers, a
    linear code and a linear reconstruction (trained with MSE), Glorot-uniform weights."""
    return build_dense_autoencoder(
        input_dim,
        embedding_dim,
        hidden_units,
        activation="relu",
        output_activation="linear",
        kernel_initializer="glorot_uniform",
        name="stacked_ae",
    )
