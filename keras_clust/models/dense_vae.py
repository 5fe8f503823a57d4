"""Dense VAE for tabular data (no convolutions): the GMM report's model."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_clust.errors import UsageError
from keras_clust.layers import GaussianNLL
from keras_clust.models.conv_vae import VAE
from keras_clust.models.vae_head import vae_head

LIKELIHOODS = (None, "gaussian")


def dense_decoder(latent_dim: int, hidden_units: Sequence[int], output_dim: int, name: str) -> keras.Model:
    """The dense VAEs' decoder: ``Dense(h, ReLU)`` for each entry of ``hidden_units`` in reverse
    (``dec_dense_<i>``), then a linear ``Dense(output_dim)`` named ``reconstruction``."""
    latent = keras.Input((latent_dim,), name="latent")
    x = latent
    for i, units in enumerate(reversed(tuple(hidden_units))):
        x = keras.layers.Dense(units, activation="relu", name=f"dec_dense_{i}")(x)
    out = keras.layers.Dense(output_dim, name="reconstruction")(x)
    return keras.Model(latent, out, name=name)


def build_dense_vae(
    input_dim: int,
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (64, 32),
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "dense_vae",
    likelihood: str | None = None,
    sigma: float | None = None,
    prior_components: int | None = None,
    free_bits: float = 0.0,
) -> VAE:
    """Build a dense VAE with a linear output (not compiled).

    Encoder ``Dense(h, ReLU)`` per entry of ``hidden_units``, heads ``z_mean`` and
    ``z_log_var``, :class:`KLDivergence` (weight ``beta``) and :class:`Sampling`; the decoder
    mirrors the widths and ends in ``Dense(input_dim)`` (standardised data is unbounded).

    Args:
        likelihood: None: ``vae`` has only the KL among its losses; compile it with a
            reconstruction loss (e.g. ``"mse"``). ``"gaussian"``: ``vae`` ends in a
            :class:`GaussianNLL` layer named ``likelihood`` (``p(x|z) = N(decoder(z), sigma^2)``),
            so its losses are the whole negative ELBO at ``beta = 1``; compile it with an
            optimizer only and fit on ``x`` alone.
        sigma: With ``likelihood="gaussian"``: a fixed observation standard deviation, or
            None for a learned one per feature.
        prior_components: None for the N(0, I) prior, or the components of a learned
            Gaussian-mixture prior (:class:`~keras_clust.layers.MixturePriorKL`, the layer ``kl``).
        free_bits: Nats of KL per latent dimension the loss does not charge
            (:class:`~keras_clust.layers.KLDivergence`; N(0, I) prior only).
    """
    if likelihood not in LIKELIHOODS:
        raise UsageError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    hidden_units = tuple(int(h) for h in hidden_units)
    if input_dim < 1 or latent_dim < 1 or not hidden_units or min(hidden_units) < 1:
        raise UsageError("input_dim, latent_dim and every hidden width must be >= 1 (at least one hidden layer)")
    inputs = keras.Input((input_dim,), name="samples")
    x = inputs
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"enc_dense_{i}")(x)
    z_mean, z_log_var, z, _, _ = vae_head(x, latent_dim, beta, seed, prior_components, free_bits)
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(inputs, z_mean, name=f"{name}_mean_encoder")

    decoder = dense_decoder(latent_dim, hidden_units, input_dim, name=f"{name}_decoder")
    reconstruction = decoder(encoder(inputs)[2])
    if likelihood == "gaussian":
        reconstruction = GaussianNLL(sigma=sigma, name="likelihood")([inputs, reconstruction])
    vae = keras.Model(inputs, reconstruction, name=name)
    return VAE(vae, encoder, mean_encoder, decoder)
