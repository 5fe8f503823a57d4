"""Latent points to decode: prior samples, a Gaussian or a Gaussian mixture fitted to codes, a 2-D
traversal grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from sklearn.mixture import GaussianMixture as SklearnMixture

from keras_clust.data.gmm import GaussianMixture, check_mixture
from keras_clust.errors import UsageError
from keras_clust.validation import check_array


def prior_samples(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """``n`` draws from the VAE prior N(0, I), float32."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


@dataclass(frozen=True)
class GaussianFit:
    """A full-covariance Gaussian fitted to latent codes (how to sample from a plain AE)."""

    mean: np.ndarray
    cov: np.ndarray

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(self.mean, self.cov, size=n, method="eigh").astype(np.float32)


def fit_gaussian(codes) -> GaussianFit:
    """Maximum-likelihood mean and covariance of ``codes`` (n, d), with a tiny ridge."""
    codes = check_array(codes, "codes", ndim=2).astype(np.float64)
    if len(codes) < 2:
        raise UsageError("fitting a Gaussian needs at least 2 codes")
    cov = np.cov(codes, rowvar=False, bias=True).reshape(codes.shape[1], codes.shape[1])
    return GaussianFit(codes.mean(axis=0), cov + 1e-6 * np.eye(codes.shape[1]))


#: Most components :func:`fit_mixture` tries by default.
MAX_MIXTURE_COMPONENTS = 8


@dataclass(frozen=True)
class MixtureFit:
    """A Gaussian mixture fitted to latent codes, its size chosen by BIC (:func:`fit_mixture`).

    Attributes:
        mixture: the fitted mixture (sample it with :func:`keras_clust.data.gmm.sample_mixture`).
        bic: the BIC of each size tried, from 1 component up.
    """

    mixture: GaussianMixture
    bic: tuple[float, ...]

    @property
    def components(self) -> int:
        return self.mixture.n_components


def fit_mixture(codes, max_components: int = MAX_MIXTURE_COMPONENTS, seed: int = 0) -> MixtureFit:
    """A full-covariance Gaussian mixture fitted to ``codes`` (n, d) without labels, with as many
    components, from 1 to ``max_components``, as give the lowest BIC (each fit EM from k-means++
    starts, ``n_init`` 3, seeded). A density of the codes themselves: decoded, its draws fall where
    the data's codes are, where a VAE's N(0, I) prior also puts draws between them (the aggregate
    posterior need not be the prior)."""
    codes = check_array(codes, "codes", ndim=2).astype(np.float64)
    if max_components < 1:
        raise UsageError(f"max_components must be >= 1, got {max_components}")
    if len(codes) < 2 * max_components:
        raise UsageError(f"fitting up to {max_components} components needs at least {2 * max_components} codes")
    fits, bic = [], []
    for k in range(1, max_components + 1):
        gm = SklearnMixture(k, covariance_type="full", n_init=3, init_params="k-means++", random_state=seed)
        fits.append(gm.fit(codes))
        bic.append(float(gm.bic(codes)))
    best = fits[int(np.argmin(bic))]
    return MixtureFit(check_mixture(best.means_, best.covariances_, best.weights_, "fitted mixture"), tuple(bic))


def latent_grid(n: int, quantile: float = 0.05) -> np.ndarray:
    """An ``n x n`` grid over the 2-D prior, evenly spaced in probability from ``quantile``
    to ``1 - quantile`` per axis; rows run from high z2 (top) to low, columns from low z1.

    Returns:
        ``(n * n, 2)`` float32 points, row-major.
    """
    if n < 1 or not 0.0 < quantile < 0.5:
        raise UsageError(f"latent grid needs n >= 1 and 0 < quantile < 0.5, got {n}, {quantile}")
    axis = norm.ppf(np.linspace(quantile, 1.0 - quantile, n))
    z1, z2 = np.meshgrid(axis, axis[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)
