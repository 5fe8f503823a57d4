"""The head every VAE encoder ends in: ``z_mean`` and ``z_log_var``, the KL term and the sample ``z``."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras

from keras_clust.layers import KLDivergence, MixturePriorKL, Sampling


class VAEHead(NamedTuple):
    """The tensors of :func:`vae_head`.

    Attributes:
        z_mean: Output of the ``z_mean`` layer: the deterministic code.
        z_log_var: Output of the ``z_log_var`` layer.
        z: The sample drawn by the ``z`` layer (:class:`~keras_clust.layers.Sampling`).
        z_mean_kl: ``z_mean`` as the ``kl`` layer passes it on (same values; a model that ends
            here contains the ``kl`` layer).
        z_log_var_kl: ``z_log_var`` as the ``kl`` layer passes it on.
    """

    z_mean: Any
    z_log_var: Any
    z: Any
    z_mean_kl: Any
    z_log_var_kl: Any


def vae_head(
    features,
    latent_dim: int,
    beta: float = 1.0,
    seed: int | None = None,
    prior_components: int | None = None,
    free_bits: float = 0.0,
) -> VAEHead:
    """Add a VAE's head on ``features`` (a Functional-API tensor).

    Creates, in this order: ``Dense(latent_dim)`` layers named ``z_mean`` and ``z_log_var``,
    :class:`~keras_clust.layers.KLDivergence` named ``kl`` (weight ``beta``) and
    :class:`~keras_clust.layers.Sampling` named ``z`` (seeded with ``seed``), which draws
    ``z`` from the tensors the ``kl`` layer passes on.

    Args:
        features: The encoder's last features, ``(batch, units)``.
        latent_dim: Size of the code.
        beta: Weight of the KL term (1.0 is the plain ELBO).
        seed: Seed of the sampling layer's generator (and of a mixture prior's means).
        prior_components: None for the N(0, I) prior; a number for a learned Gaussian-mixture
            prior of that many components: then ``z`` is drawn first and the ``kl`` layer is a
            :class:`~keras_clust.layers.MixturePriorKL` that passes ``z`` on (``z_mean_kl`` and
            ``z_log_var_kl`` are ``z_mean`` and ``z_log_var``).
        free_bits: Nats of KL per latent dimension the loss does not charge (the N(0, I) prior's
            :class:`~keras_clust.layers.KLDivergence`; 0: the plain ELBO).

    Returns:
        The head's tensors (:class:`VAEHead`).
    """
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(features)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(features)
    if prior_components is not None:
        if free_bits:
            raise ValueError("free bits apply to the N(0, I) prior only, not to a mixture prior")
        z = Sampling(seed=seed, name="z_draw")([z_mean, z_log_var])
        z = MixturePriorKL(prior_components, beta=beta, seed=seed, name="kl")([z_mean, z_log_var, z])
        return VAEHead(z_mean, z_log_var, z, z_mean, z_log_var)
    z_mean_kl, z_log_var_kl = KLDivergence(beta=beta, free_bits=free_bits, name="kl")([z_mean, z_log_var])
    z = Sampling(seed=seed, name="z")([z_mean_kl, z_log_var_kl])
    return VAEHead(z_mean, z_log_var, z, z_mean_kl, z_log_var_kl)
