"""Training and sampling a VAE's learned Gaussian-mixture prior (:class:`~keras_clust.layers.MixturePriorKL`).

A VAE with an N(0, I) prior decodes the space between a multimodal data set's modes into
samples between them. A mixture prior can put its mass where the codes are, but trained by
gradient steps alone its components stay broad (they start at unit variance) and their samples
still fall between the modes. Here the prior is refitted every few epochs by EM to draws from
the encoder's posteriors: for a fixed encoder EM maximises a Monte Carlo estimate of
``E_q[log p(z)]``, the prior's part of the ELBO (restarted from k-means, so a refit is not
guaranteed to beat the prior it replaces), and it gets there far faster than gradient steps. KL
warm-up (the KL's weight raised from 0) lets the decoder use the code before the KL can switch
it off.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.mixture import GaussianMixture

from keras_clust.data.gmm import GaussianMixture as Mixture
from keras_clust.data.gmm import mixture_log_density, sample_mixture
from keras_clust.errors import UsageError
from keras_clust.layers import MixturePriorKL


def prior_layers(model: keras.Model) -> list[MixturePriorKL]:
    """Every :class:`MixturePriorKL` of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, MixturePriorKL):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += prior_layers(layer)
    return found


class KLWarmup(keras.callbacks.Callback):
    """Raise the KL weight of every mixture prior of the model linearly from 0 to its ``beta``
    over the first ``epochs`` epochs, then hold it (KL annealing, Bowman et al. 2016).

    Args:
        epochs: Length of the ramp: epoch ``e`` (from 0) trains with ``beta * e / epochs``.
    """

    def __init__(self, epochs: int):
        super().__init__()
        if epochs < 1:
            raise UsageError(f"KL warm-up epochs must be >= 1, got {epochs}")
        self.epochs = int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        for layer in prior_layers(self.model):
            layer.kl_weight.assign(layer.beta * min(1.0, epoch / self.epochs))


def posterior_draws(encoder: keras.Model, x: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` samples of ``q(z | x)`` per row of ``x`` (``encoder``: ``x -> [z_mean, z_log_var, ...]``)."""
    z_mean, z_log_var = (np.asarray(a, np.float64) for a in encoder.predict(x, batch_size=4096, verbose=0)[:2])
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((draws, *z_mean.shape))
    return (z_mean + np.exp(0.5 * z_log_var) * noise).reshape(-1, z_mean.shape[1])


def refit_prior(layer: MixturePriorKL, codes: np.ndarray, seed: int) -> GaussianMixture:
    """Set ``layer``'s prior to the diagonal Gaussian mixture fitted by EM to ``codes``
    (``layer.n_components`` components, started from k-means, seeded)."""
    gm = GaussianMixture(layer.n_components, covariance_type="diag", random_state=seed).fit(codes)
    layer.prior_means.assign(gm.means_.astype(np.float32))
    layer.prior_log_vars.assign(np.log(gm.covariances_).astype(np.float32))
    layer.prior_logits.assign(np.log(np.maximum(gm.weights_, 1e-12)).astype(np.float32))
    return gm


class PriorRefit(keras.callbacks.Callback):
    """Refit the model's mixture prior by EM to posterior draws of the training rows every
    ``every`` epochs from epoch ``start`` on, and once more when training ends (with fresh
    draws, also when the last epoch has just refitted).

    Args:
        encoder: ``x -> [z_mean, z_log_var, ...]`` (the VAE's training encoder, holding the prior).
        x: The training rows (as the model sees them).
        every: Epochs between refits.
        start: First epoch (counted from 1) that may refit, e.g. the end of the KL warm-up.
        draws: Posterior draws per row.
        seed: Seed of the draws and of EM (each refit derives its own).
    """

    def __init__(self, encoder: keras.Model, x: np.ndarray, every: int, start: int = 0, draws: int = 5, seed: int = 0):
        super().__init__()
        if every < 1 or draws < 1:
            raise UsageError(f"prior refits need every >= 1 and draws >= 1, got {every}, {draws}")
        self.encoder, self.x = encoder, x
        self.every, self.start, self.draws, self.seed = int(every), int(start), int(draws), int(seed)
        self.refits = 0

    def _refit(self, epoch: int) -> None:
        codes = posterior_draws(self.encoder, self.x, self.draws, self.seed + epoch)
        if not np.all(np.isfinite(codes)):  # a diverged fit: leave the error to fit_model
            return
        for layer in prior_layers(self.encoder):
            refit_prior(layer, codes, self.seed + epoch)
        self.refits += 1

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done >= self.start and (done - self.start) % self.every == 0:
            self._refit(done)

    def on_train_end(self, logs=None):
        self._refit(10**6)


def sample_prior(layer: MixturePriorKL, n: int, seed: int) -> np.ndarray:
    """``n`` draws from ``layer``'s learned prior, float32."""
    return sample_mixture_prior(*layer.prior(), n, seed)


def diagonal_mixture(means, variances, weights) -> Mixture:
    """The diagonal mixture ``(means (K, d), variances (K, d), weights (K,))`` as a
    :class:`~keras_clust.data.gmm.GaussianMixture` (weights normalised), for its sampler and density."""
    means, variances, weights = (np.asarray(a, np.float64) for a in (means, variances, weights))
    return Mixture(means, variances[:, :, None] * np.eye(means.shape[1]), weights / weights.sum())


def sample_mixture_prior(means, variances, weights, n: int, seed: int) -> np.ndarray:
    """``n`` seeded draws from the diagonal mixture ``(means (K, d), variances (K, d), weights (K,))``, float32."""
    return sample_mixture(diagonal_mixture(means, variances, weights), n, seed)[0]


def mixture_log_prior(layer: MixturePriorKL):
    """``z (n, d) -> log p(z) (n,)`` of ``layer``'s learned prior, in float64 NumPy."""
    mixture = diagonal_mixture(*layer.prior())
    return lambda z: mixture_log_density(mixture, z)
