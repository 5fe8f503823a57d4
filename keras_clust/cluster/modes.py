"""How many mixture components a generator captures (VEEGAN / PacGAN style metric).

Two radii define a *high-quality* sample. The headline is VEEGAN/PacGAN's: within 3
standard deviations (Mahalanobis) of the nearest component. In d dimensions that radius
holds only ``P(chi2_d <= 9)`` of a component's own samples (0.97 in 3-D, 0.47 in 10-D),
so the metric also reports the radius ``sqrt(chi2_d.ppf(q))`` that holds a share ``q``
(0.99 by default) of a component's own samples in any dimension.

Which modes count as captured is weighed against the mixture's own weights: a fixed share of
all samples (1 %) is more than a light component's own samples reach (flat-Dirichlet weights
give some components 0.1 %), so the mixture itself scores below 10 of 10 on it. The headline
count asks a mode for ``weight_share`` (a quarter) of the high-quality samples the mixture's
own samples put there, ``n * w_k * P(chi2_d <= threshold^2)``, and at least one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from keras_clust.data.gmm import GaussianMixture
from keras_clust.errors import UsageError
from keras_clust.validation import check_array


def mahalanobis_distances(x, mixture: GaussianMixture) -> np.ndarray:
    """``(n, K)`` Mahalanobis distance of every sample to every component, each with that
    component's own covariance."""
    x = check_array(x, "samples", ndim=2).astype(np.float64)
    if x.shape[1] != mixture.dim:
        raise UsageError(f"samples have {x.shape[1]} dimensions, the mixture {mixture.dim}")
    chol = np.linalg.cholesky(mixture.covariances)  # (K, d, d)
    diff = x[:, None, :] - mixture.means[None]  # (n, K, d)
    # solve L y = diff for every component: |y| is the Mahalanobis distance
    y = np.linalg.solve(chol[None], diff[..., None])[..., 0]
    return np.sqrt(np.sum(y * y, axis=-1))


def chi2_radius(dim: int, quantile: float = 0.99) -> float:
    """Mahalanobis radius holding ``quantile`` of a d-dimensional Gaussian's own samples."""
    if dim < 1 or not 0.0 < quantile < 1.0:
        raise UsageError(f"need dim >= 1 and 0 < quantile < 1, got {dim}, {quantile}")
    return float(np.sqrt(chi2.ppf(quantile, dim)))


def radius_share(radius: float, dim: int) -> float:
    """Share of a d-dimensional Gaussian's own samples within Mahalanobis ``radius``:
    ``P(chi2_d <= radius^2)`` (0.9707 for 3 standard deviations in 3-D, 0.4679 in 10-D)."""
    return float(chi2.cdf(radius**2, dim))


@dataclass(frozen=True)
class ModeCoverage:
    """Mode coverage of generated samples.

    Attributes:
        nearest: Nearest component (Mahalanobis) of each sample.
        distance: Mahalanobis distance to that component.
        high_quality: Whether the sample lies within ``threshold`` standard deviations.
        counts: High-quality samples per component.
        modes_captured: Lenient count: components that are the nearest of at least one
            high-quality sample.
        modes_captured_weighted: Headline count: components with at least ``weight_share``
            of their ``expected`` high-quality samples (and at least one).
        expected: High-quality samples per component that the mixture's own ``n`` samples
            give on average: ``n * weights * threshold_share``.
        modes_captured_min_share: Components that are the nearest of at least ``min_share`` of
            all samples, high-quality ones (and of at least one).
        high_quality_fraction: Share of high-quality samples (radius ``threshold``).
        reverse_kl: KL(q || p) between the histogram q of nearest components (all samples)
            and the true weights p.
        threshold, min_share, weight_share: The settings used.
        chi2_quantile: ``q`` of the dimension-free radius.
        chi2_radius: ``sqrt(chi2_d.ppf(q))``.
        high_quality_fraction_chi2: Share of samples within ``chi2_radius`` of their nearest
            component (for samples of the mixture itself, about ``q`` in any dimension).
        counts_chi2: Samples within ``chi2_radius`` per component.
        modes_captured_min_share_chi2: Components with at least ``min_share`` of all samples
            within ``chi2_radius``.
        threshold_share: ``P(chi2_d <= threshold^2)``: what the ``threshold`` radius holds of a
            component's own samples.
    """

    nearest: np.ndarray
    distance: np.ndarray
    high_quality: np.ndarray
    counts: np.ndarray
    modes_captured: int
    modes_captured_weighted: int
    expected: np.ndarray
    modes_captured_min_share: int
    high_quality_fraction: float
    reverse_kl: float
    threshold: float
    min_share: float
    weight_share: float
    chi2_quantile: float
    chi2_radius: float
    high_quality_fraction_chi2: float
    counts_chi2: np.ndarray
    modes_captured_min_share_chi2: int
    threshold_share: float

    def to_dict(self) -> dict:
        return {
            "modes_captured": self.modes_captured,
            "modes_captured_weighted": self.modes_captured_weighted,
            "expected_hq_counts": self.expected.tolist(),
            "weight_share": self.weight_share,
            "modes_captured_min_share": self.modes_captured_min_share,
            "high_quality_fraction": self.high_quality_fraction,
            "reverse_kl": self.reverse_kl,
            "hq_counts": self.counts.tolist(),
            "threshold": self.threshold,
            "min_share": self.min_share,
            "n_components": len(self.counts),
            "threshold_share": self.threshold_share,
            "chi2_quantile": self.chi2_quantile,
            "chi2_radius": self.chi2_radius,
            "high_quality_fraction_chi2": self.high_quality_fraction_chi2,
            "hq_counts_chi2": self.counts_chi2.tolist(),
            "modes_captured_min_share_chi2": self.modes_captured_min_share_chi2,
        }


def min_share_count(n_samples: int, min_share: float) -> int:
    """Samples a mode needs for the headline count: ``max(1, ceil(min_share * n))`` (10 of 1,000 at 1 %)."""
    return max(1, int(np.ceil(min_share * n_samples - 1e-9)))


def weighted_need(expected: np.ndarray, weight_share: float) -> np.ndarray:
    """Samples each mode needs in the headline count: ``max(1, ceil(weight_share * expected))``."""
    return np.maximum(1, np.ceil(weight_share * np.asarray(expected) - 1e-9)).astype(np.int64)


def mode_coverage(
    samples,
    mixture: GaussianMixture,
    threshold: float = 3.0,
    min_share: float = 0.01,
    chi2_quantile: float = 0.99,
    weight_share: float = 0.25,
) -> ModeCoverage:
    """Score generated ``samples`` against the true ``mixture``.

    A sample is high quality when its Mahalanobis distance to its nearest component is at
    most ``threshold`` (3 standard deviations by default, the headline); the same is
    counted for the radius holding ``chi2_quantile`` of a component's own samples. A mode
    is captured (headline) when its high-quality samples reach ``weight_share`` of what the
    mixture's own samples give it on average (and at least one); the second count asks for
    ``min_share`` of all samples, the lenient count for one.
    """
    if threshold <= 0 or not 0 <= min_share < 1 or not 0 < weight_share <= 1:
        raise UsageError(
            f"need threshold > 0, 0 <= min_share < 1 and 0 < weight_share <= 1, got {threshold}, {min_share}, "
            f"{weight_share}"
        )
    radius = chi2_radius(mixture.dim, chi2_quantile)
    dist = mahalanobis_distances(samples, mixture)
    nearest = dist.argmin(axis=1)
    d = dist[np.arange(len(dist)), nearest]
    hq = d <= threshold
    hq_chi2 = d <= radius
    k = mixture.n_components
    counts = np.bincount(nearest[hq], minlength=k)
    counts_chi2 = np.bincount(nearest[hq_chi2], minlength=k)
    need = min_share_count(len(nearest), min_share)
    share = radius_share(threshold, mixture.dim)
    expected = len(nearest) * mixture.weights * share
    q = np.bincount(nearest, minlength=k) / len(nearest)
    p = mixture.weights
    support = q > 0
    with np.errstate(divide="ignore"):
        rkl = float(np.sum(q[support] * np.log(q[support] / p[support])))
    return ModeCoverage(
        nearest=nearest,
        distance=d,
        high_quality=hq,
        counts=counts,
        modes_captured=int(np.sum(counts > 0)),
        modes_captured_weighted=int(np.sum(counts >= weighted_need(expected, weight_share))),
        expected=expected,
        modes_captured_min_share=int(np.sum(counts >= need)),
        high_quality_fraction=float(hq.mean()),
        reverse_kl=rkl,
        threshold=threshold,
        min_share=min_share,
        weight_share=weight_share,
        chi2_quantile=chi2_quantile,
        chi2_radius=radius,
        high_quality_fraction_chi2=float(hq_chi2.mean()),
        counts_chi2=counts_chi2,
        modes_captured_min_share_chi2=int(np.sum(counts_chi2 >= need)),
        threshold_share=share,
    )
