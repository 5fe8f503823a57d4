"""Serving wrappers: a VAE's encoder and decoder in data units, the standardisation built in."""

from __future__ import annotations

import keras
import numpy as np

from keras_clust.errors import UsageError
from keras_clust.models.conv_vae import VAE


def standardised_vae_models(vae: VAE, mean, std, name: str = "vae") -> tuple[keras.Model, keras.Model]:
    """Wrap a VAE trained on standardised data ``(x - mean) / std`` for serving raw data.

    Returns:
        ``(encoder, decoder)``: ``samples -> z_mean`` (deterministic: no sampling) and
        ``latent -> samples`` (the decoder's mean mapped back to data units), named
        ``<name>_encoder`` and ``<name>_decoder``.
    """
    mean = np.asarray(mean, np.float32).ravel()
    std = np.asarray(std, np.float32).ravel()
    if mean.shape != std.shape or not np.all(std > 0):
        raise UsageError("mean and std need one value per feature, std > 0")
    samples = keras.Input((len(mean),), name="samples")
    norm = keras.layers.Normalization(mean=mean, variance=std**2, name="standardise")
    encoder = keras.Model(samples, vae.mean_encoder(norm(samples)), name=f"{name}_encoder")
    latent = keras.Input(vae.decoder.input_shape[1:], name="latent")
    unnorm = keras.layers.Normalization(mean=mean, variance=std**2, invert=True, name="unstandardise")
    decoder = keras.Model(latent, unnorm(vae.decoder(latent)), name=f"{name}_decoder")
    return encoder, decoder
