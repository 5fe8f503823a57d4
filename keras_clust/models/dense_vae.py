"""Dense VAE for tabular data (no convolutions): the GMM report's model."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_clust.errors import UsageError
from keras_clust.layers import KLDivergence, Sampling
from keras_clust.models.conv_vae import VAE


def build_dense_vae(input_dim: int, latent_dim: int = 2, hidden_units: Sequence[int] = (64, 32), beta: float = 1.0,
                    seed: int | None = None, name: str = "dense_vae") -> VAE:  # fmt: skip
    """Build a dense VAE with a linear output (not compiled).

    Encoder ``Dense(h, ReLU)`` per entry of ``hidden_units``, heads ``z_mean`` and
    ``z_log_var``, :class:`KLDivergence` (weight ``beta``) and :class:`Sampling`; the decoder
    mirrors the widths and ends in ``Dense(input_dim)`` (standardised data is unbounded).
    Compile ``vae`` with a reconstruction loss; the KL is already among its losses.
    """
    hidden_units = tuple(int(h) for h in hidden_units)
    if input_dim < 1 or latent_dim < 1 or not hidden_units or min(hidden_units) < 1:
        raise UsageError("input_dim, latent_dim and every hidden width must be >= 1 (at least one hidden layer)")
    inputs = keras.Input((input_dim,), name="samples")
    x = inputs
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"enc_dense_{i}")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    z_mean_kl, z_log_var_kl = KLDivergence(beta=beta, name="kl")([z_mean, z_log_var])
    z = Sampling(seed=seed, name="z")([z_mean_kl, z_log_var_kl])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(inputs, z_mean, name=f"{name}_mean_encoder")

    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i, units in enumerate(reversed(hidden_units)):
        x = keras.layers.Dense(units, activation="relu", name=f"dec_dense_{i}")(x)
    out = keras.layers.Dense(input_dim, name="reconstruction")(x)
    decoder = keras.Model(latent, out, name=f"{name}_decoder")
    vae = keras.Model(inputs, decoder(encoder(inputs)[2]), name=name)
    return VAE(vae, encoder, mean_encoder, decoder)
