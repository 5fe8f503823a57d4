import numpy as np
import pytest

from keras_clust.errors import DataError, UsageError
from keras_clust.generation import fit_gaussian, latent_grid, prior_samples


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
