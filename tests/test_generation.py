import numpy as np
import pytest

from keras_clust.data.gmm import sample_mixture
from keras_clust.errors import DataError, UsageError
from keras_clust.generation import fit_gaussian, fit_mixture, latent_grid, prior_samples


def test_prior_samples_seeded_and_standard():
    a, b = prior_samples(20000, 3, seed=4), prior_samples(20000, 3, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (20000, 3)
    np.testing.assert_allclose(a.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(np.cov(a, rowvar=False), np.eye(3), atol=0.04)


def test_gaussian_fit_recovers_mean_and_covariance():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.8], [0.8, 1.0]])
    codes = rng.multivariate_normal([5.0, -1.0], cov, size=50000)
    fit = fit_gaussian(codes)
    np.testing.assert_allclose(fit.mean, [5.0, -1.0], atol=0.03)
    np.testing.assert_allclose(fit.cov, cov, atol=0.05)
    s = fit.sample(50000, seed=1)
    np.testing.assert_allclose(np.cov(s, rowvar=False), cov, atol=0.06)
    np.testing.assert_array_equal(s, fit.sample(50000, seed=1))


def test_gaussian_fit_rejects_bad_codes():
    with pytest.raises(UsageError):
        fit_gaussian(np.zeros((1, 3)))
    with pytest.raises(DataError):
        fit_gaussian(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_latent_grid_layout():
    g = latent_grid(5)
    assert g.shape == (25, 2)
    rows = g.reshape(5, 5, 2)
    assert np.all(np.diff(rows[0, :, 0]) > 0)  # z1 increases along a row
    assert np.all(np.diff(rows[:, 0, 1]) < 0)  # z2 decreases down the rows
    np.testing.assert_allclose(rows[2, 2], [0.0, 0.0], atol=1e-6)  # the centre is the prior's mode
    np.testing.assert_allclose(rows[0, 0, 0], -1.6448536, atol=1e-5)  # 5 % quantile
    with pytest.raises(UsageError):
        latent_grid(3, quantile=0.5)


def test_mixture_fit_finds_the_clusters_of_codes_and_draws_where_they_are():
    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [4.0, 0.0, 1.0]])
    codes = np.concatenate([rng.normal(c, 0.3, (n, 3)) for c, n in zip(centres, (600, 300, 300), strict=True)])
    fit = fit_mixture(codes, max_components=5, seed=0)
    assert fit.components == 3 and len(fit.bic) == 5 and int(np.argmin(fit.bic)) == 2  # found, not given
    order = np.argsort(fit.mixture.means[:, 0])
    np.testing.assert_allclose(fit.mixture.means[order], centres, atol=0.05)
    np.testing.assert_allclose(fit.mixture.weights[order], [0.5, 0.25, 0.25], atol=0.01)
    x, _ = sample_mixture(fit.mixture, 3000, seed=1)
    nearest = np.min(np.linalg.norm(x[:, None] - centres[None], axis=-1), axis=1)
    assert np.mean(nearest < 1.5) > 0.99  # draws fall where the codes are ...
    prior = prior_samples(3000, 3, seed=1)
    assert (
        np.mean(np.min(np.linalg.norm(prior[:, None] - centres[None], axis=-1), axis=1) < 1.5) < 0.1
    )  # ... N(0, I)'s not
    again = fit_mixture(codes, max_components=5, seed=0)
    np.testing.assert_array_equal(again.mixture.means, fit.mixture.means)  # seeded
    one = fit_mixture(rng.normal(size=(500, 2)), max_components=4, seed=0)
    assert one.components == 1  # one Gaussian is one component


def test_mixture_fit_rejects_bad_input():
    with pytest.raises(UsageError):
        fit_mixture(np.zeros((5, 2)), max_components=3)  # fewer than two codes per component
    with pytest.raises(UsageError):
        fit_mixture(np.zeros((50, 2)), max_components=0)
    with pytest.raises(DataError):
        fit_mixture(np.full((50, 2), np.nan), max_components=2)
