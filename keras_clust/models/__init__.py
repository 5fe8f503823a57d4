"""Model builders, one module per family."""

from keras_clust.models.classifier import build_transfer_classifier, probability_model
from keras_clust.models.conv_ae import build_conv_autoencoder, build_conv_decoder, build_conv_encoder
from keras_clust.models.conv_vae import VAE, build_conv_vae
from keras_clust.models.dense_ae import (
    STACKED_AE_UNITS,
    Autoencoder,
    build_dense_autoencoder,
    build_stacked_autoencoder,
    halving_hidden_units,
)
from keras_clust.models.dense_vae import build_dense_vae
from keras_clust.models.dis_net import build_dis_net
from keras_clust.models.standardised import standardised_vae_models
from keras_clust.models.vae_head import VAEHead, vae_head

__all__ = [
    "VAE",
    "VAEHead",
    "Autoencoder",
    "build_conv_autoencoder",
    "build_conv_vae",
    "build_conv_decoder",
    "build_conv_encoder",
    "build_dense_autoencoder",
    "build_dense_vae",
    "build_dis_net",
    "build_transfer_classifier",
    "probability_model",
    "halving_hidden_units",
    "standardised_vae_models",
    "STACKED_AE_UNITS",
    "build_stacked_autoencoder",
    "vae_head",
]
