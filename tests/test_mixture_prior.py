"""The learned mixture prior: its KL estimate, its EM refit, its samples, the ELBO it enters."""

import keras
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from keras_clust.elbo import negative_elbo_per_sample
from keras_clust.layers import MixturePriorKL
from keras_clust.mixture_prior import (
    KLWarmup,
    PriorRefit,
    mixture_log_prior,
    prior_layers,
    refit_prior,
    sample_mixture_prior,
)
from keras_clust.models import build_dense_vae


def _layer(means, log_vars, logits):
    layer = MixturePriorKL(len(logits), seed=0)
    dim = np.asarray(means).shape[1]
    layer.build([(None, dim)] * 3)
    layer.prior_means.assign(np.asarray(means, np.float32))
    layer.prior_log_vars.assign(np.asarray(log_vars, np.float32))
    layer.prior_logits.assign(np.asarray(logits, np.float32))
    return layer


def test_log_prior_is_the_mixture_density():
    means, log_vars, logits = [[0.0, 0.0], [3.0, -1.0]], [[0.0, 0.0], [np.log(0.25), np.log(4.0)]], [0.0, np.log(3.0)]
    layer = _layer(means, log_vars, logits)
    z = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32) * 2
    want = np.log(
        0.25 * multivariate_normal([0, 0], np.eye(2)).pdf(z)
        + 0.75 * multivariate_normal([3, -1], np.diag([0.25, 4])).pdf(z)
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.log_prior(z)), want, rtol=1e-5)
    np.testing.assert_allclose(mixture_log_prior(layer)(z.astype(np.float64)), want, rtol=1e-6)  # float32 weights
    _, _, weights = layer.prior()
    np.testing.assert_allclose(weights, [0.25, 0.75])


def test_one_standard_component_gives_the_closed_form_kl_on_average():
    """With p(z) = N(0, I) the one-draw estimate -H[q] - log p(z) averages to the closed-form KL."""
    layer = _layer([[0.0, 0.0]], [[0.0, 0.0]], [0.0])
    mean = np.tile(np.array([[1.0, -0.5]], np.float32), (20000, 1))
    log_var = np.tile(np.array([[np.log(0.3), 0.2]], np.float32), (20000, 1))
    z = mean + np.exp(0.5 * log_var) * np.random.default_rng(1).standard_normal(mean.shape).astype(np.float32)
    layer([mean, log_var, z])
    estimate = float(keras.ops.convert_to_numpy(layer.losses[-1]))
    closed = -0.5 * np.sum(1 + log_var[0] - mean[0] ** 2 - np.exp(log_var[0]))
    assert estimate == pytest.approx(closed, abs=0.02)  # MC sd of the mean: ~0.007


def test_negative_elbo_with_a_log_prior_estimates_the_same_kl():
    """The ELBO's KL through ``log_prior`` (N(0, I) written as a log density) agrees with the
    closed form within Monte-Carlo error, and the reconstruction term is unchanged."""
    m = build_dense_vae(3, 2, (8,), seed=0)
    x = np.random.default_rng(2).normal(size=(400, 3)).astype(np.float32)
    nll = lambda out: np.sum((out - x) ** 2, axis=1)  # noqa: E731
    recon, kl = negative_elbo_per_sample(m.encoder, m.decoder, x, nll, draws=50, seed=3)
    std_normal = lambda z: -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=1)  # noqa: E731
    recon2, kl2 = negative_elbo_per_sample(m.encoder, m.decoder, x, nll, draws=50, seed=3, log_prior=std_normal)
    np.testing.assert_allclose(recon2, recon)
    assert kl2.mean() == pytest.approx(kl.mean(), abs=0.01)
    assert not np.allclose(kl2, kl)  # a different estimator, not the same closed form


def test_refit_puts_the_prior_on_the_codes():
    """Codes in three tight groups of 50, 100 and 150: EM puts one component on each group,
    weights 1/6, 1/3 and 1/2, variances the groups' own; samples land in the groups."""
    rng = np.random.default_rng(4)
    centres = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    codes = np.concatenate(
        [c + 0.1 * rng.standard_normal((n, 2)) for c, n in zip(centres, (50, 100, 150), strict=True)]
    )
    layer = _layer(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3))
    refit_prior(layer, codes, seed=0)
    means, variances, weights = layer.prior()
    order = np.argsort(means[:, 0] + 0.1 * means[:, 1])
    np.testing.assert_allclose(means[order], centres, atol=0.05)
    np.testing.assert_allclose(weights[order], [1 / 6, 1 / 3, 1 / 2], atol=1e-6)
    np.testing.assert_allclose(variances, 0.01, rtol=0.35)
    z = sample_mixture_prior(means, variances, weights, 3000, seed=5)
    nearest = np.argmin(((z[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.max(np.min(np.linalg.norm(z[:, None] - centres[None], axis=-1), axis=1)) < 0.6
    np.testing.assert_allclose(np.bincount(nearest) / 3000, [1 / 6, 1 / 3, 1 / 2], atol=0.03)


def test_warmup_and_refits_during_fit():
    """KL warm-up: the weight is 0 in the first epoch and beta from epoch ``epochs`` on; the
    prior is refitted every ``every`` epochs after ``start`` and once at the end."""
    m = build_dense_vae(2, 2, (8,), beta=2.0, seed=0, likelihood="gaussian", prior_components=3)
    (layer,) = prior_layers(m.vae)
    x = np.random.default_rng(6).normal(size=(64, 2)).astype(np.float32)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(layer.kl_weight)))

    refit = PriorRefit(m.encoder, x, every=2, start=2, seed=0)
    m.vae.compile(optimizer="adam")
    m.vae.fit(x, epochs=6, batch_size=32, verbose=0, callbacks=[KLWarmup(4), refit, Watch()])
    assert seen == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    assert refit.refits == 3 + 1  # after epochs 2, 4, 6, and at the end
    with pytest.raises(Exception, match="warm-up"):
        KLWarmup(0)
