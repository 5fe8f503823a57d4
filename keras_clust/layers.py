"""Custom layers written in ``keras.ops``: VAE sampling and the KL-divergence term."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clust")
class Sampling(keras.layers.Layer):
    """Draw ``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` (reparameterisation).

    Args:
        seed: Seed of the layer's ``keras.random.SeedGenerator``.

    Call args:
        inputs: ``[z_mean, z_log_var]``, both of shape ``(batch, latent_dim)``.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator, dtype=z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_clust")
class KLDivergence(keras.layers.Layer):
    """Add ``beta * KL(N(mean, exp(log_var)) || N(0, I))`` to the model's losses.

    The KL is summed over latent dimensions and averaged over the batch. The layer
    passes its inputs through unchanged, so it sits between the encoder heads and
    :class:`Sampling`. The unweighted KL is also tracked as the metric ``kl``, so
    ``fit`` logs it per epoch beside the total loss.

    Args:
        beta: Weight of the KL term (1.0 is the plain ELBO).
    """

    def __init__(self, beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = ops.mean(kl_divergence(z_mean, z_log_var))
        self.add_loss(self.beta * kl)
        self.kl_tracker.update_state(kl)
        return z_mean, z_log_var

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


def kl_divergence(z_mean, z_log_var):
    """Per-sample KL divergence to N(0, I), summed over latent dimensions."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


@keras.saving.register_keras_serializable(package="keras_clust")
def summed_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy summed over all pixels of a sample (the ELBO's reconstruction
    term, on the same per-sample scale as the summed KL)."""
    y_true = ops.reshape(y_true, (ops.shape(y_true)[0], -1))
    y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    eps = keras.config.epsilon()
    y_pred = ops.clip(y_pred, eps, 1.0 - eps)
    return -ops.sum(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred), axis=-1)
