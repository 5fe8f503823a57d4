"""A seeded Monte-Carlo estimate of a VAE's ELBO, term by term, in nats per sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.validation import check_array

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class ELBOTerms:
    """Mean per-sample terms of the negative ELBO, in nats.

    Attributes:
        recon: ``E_q[-log p(x | z)]`` (Gaussian, constants included).
        kl: ``KL(q(z | x) || N(0, I))``.
        neg_elbo: ``recon + kl`` (the ELBO at ``beta = 1``, whatever ``beta`` trained the model).
        draws: Latent draws per sample of the Monte-Carlo estimate.
    """

    recon: float
    kl: float
    neg_elbo: float
    draws: int

    def shifted(self, log_jacobian: float) -> ELBOTerms:
        """The terms for data that were standardised by ``x_s = (x - mean) / std`` before the
        VAE saw them: ``log_jacobian = sum_j log std_j`` is added to the reconstruction term
        (and so to ``-ELBO``), giving nats of the data in its own units."""
        return ELBOTerms(self.recon + log_jacobian, self.kl, self.neg_elbo + log_jacobian, self.draws)

    def to_dict(self) -> dict:
        return {"recon": self.recon, "kl": self.kl, "neg_elbo": self.neg_elbo, "draws": self.draws}


def gaussian_nll_np(x: np.ndarray, mean: np.ndarray, log_var) -> np.ndarray:
    """NumPy twin of :func:`keras_clust.layers.gaussian_nll`: per-sample NLL, summed over features."""
    return 0.5 * np.sum((x - mean) ** 2 * np.exp(-log_var) + log_var + LOG_2PI, axis=-1)


def negative_elbo_per_sample(
    encoder,
    decoder,
    x,
    nll: Callable[[np.ndarray], np.ndarray],
    draws: int = 10,
    seed: int | np.random.Generator = 0,
    batch_size: int | None = 4096,
    log_prior: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample terms of ``-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z))``, for any likelihood
    (``p(z)`` N(0, I), or a learned prior through ``log_prior``).

    The KL is in closed form for the N(0, I) prior; the reconstruction term is averaged over
    ``draws`` seeded draws ``z = z_mean + exp(z_log_var / 2) * eps`` (NumPy noise, not the
    layer's generator). With ``log_prior`` (a learned prior) the KL is estimated from the same
    draws as ``log q(z | x) - log p(z)``.

    Args:
        encoder: ``x -> [z_mean, z_log_var, ...]`` (the VAE's training encoder).
        decoder: ``z -> `` what ``nll`` reads (the mean of ``p(x | z)``, logits, ...).
        x: The encoder's inputs, ``n`` samples of any shape.
        nll: ``decoder output (float64) -> (n,)``: ``-log p(x | z)`` of each sample of ``x``.
        draws: Latent draws per sample.
        seed: Seed of the draws, or a :class:`numpy.random.Generator` that goes on drawing
            (one stream over the batches of a large set).
        batch_size: Batch size of ``predict`` (None: Keras's default).
        log_prior: ``z (n, d) -> log p(z) (n,)`` of a learned prior (e.g.
            :func:`keras_clust.mixture_prior.mixture_log_prior`); None for N(0, I).

    Returns:
        ``(recon, kl)``, float64 arrays of shape ``(n,)``, in nats.
    """
    if draws < 1:
        raise UsageError(f"draws must be >= 1, got {draws}")
    z_mean, z_log_var = (np.asarray(a, np.float64) for a in encoder.predict(x, batch_size=batch_size, verbose=0)[:2])
    if log_prior is None:
        kl = -0.5 * np.sum(1.0 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=-1)
    else:
        kl = np.zeros(len(x))
    rng = np.random.default_rng(seed)
    recon = np.zeros(len(x))
    for _ in range(draws):
        eps = rng.standard_normal(z_mean.shape)
        z = z_mean + np.exp(0.5 * z_log_var) * eps
        out = np.asarray(decoder.predict(z.astype(np.float32), batch_size=batch_size, verbose=0), np.float64)
        recon += nll(out)
        if log_prior is not None:
            log_q = -0.5 * np.sum(eps**2 + z_log_var + LOG_2PI, axis=-1)
            kl += log_q - log_prior(z)
    recon /= draws
    if log_prior is not None:
        kl /= draws
    return recon, kl


def negative_elbo(
    encoder, decoder, x, log_var, draws: int = 10, seed: int = 0, batch_size: int = 4096, log_prior=None
) -> ELBOTerms:
    """Estimate ``-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z))`` for a Gaussian decoder
    (``p(z)`` N(0, I) unless ``log_prior`` gives a learned one).

    Args:
        encoder: ``x -> [z_mean, z_log_var, ...]`` (the VAE's training encoder).
        decoder: ``z -> mean of p(x | z)``.
        x: ``(n, d)`` samples, in the units the VAE was trained on.
        log_var: ``log sigma^2`` of ``p(x | z)``: a scalar or one value per feature.
        draws: Latent draws per sample (seeded NumPy noise, not the layer's generator).
        seed: Seed of those draws.
        log_prior: ``z -> log p(z)`` of a learned prior, or None for N(0, I).

    Returns:
        :class:`ELBOTerms`, means over the samples (of :func:`negative_elbo_per_sample`).
    """
    x = check_array(x, "samples", ndim=2).astype(np.float32)
    x64, log_var = x.astype(np.float64), np.asarray(log_var, np.float64)
    recon, kl = negative_elbo_per_sample(
        encoder, decoder, x, lambda mean: gaussian_nll_np(x64, mean, log_var), draws, seed, batch_size, log_prior
    )
    return ELBOTerms(float(recon.mean()), float(kl.mean()), float((recon + kl).mean()), draws)
