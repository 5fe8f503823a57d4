"""How many mixture components a generator captures (VEEGAN / PacGAN style metric)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class ModeCoverage:
    """Mode coverage of generated samples.

    Attributes:
        nearest: Nearest component (Mahalanobis) of each sample.
        distance: Mahalanobis distance to that component.
        high_quality: Whether the sample lies within ``threshold`` standard deviations.
        counts: High-quality samples per component.
        modes_captured: Components that are the nearest of at least one high-quality sample.
        modes_captured_min_share: Components with at least ``min_share`` of all samples as
            high-quality nearest samples.
        high_quality_fraction: Share of high-quality samples.
        reverse_kl: KL(q || p) between the histogram q of nearest components (all samples)
            and the true weights p.
        threshold, min_share: The settings used.
    """

    nearest: np.ndarray
    distance: np.ndarray
    high_quality: np.ndarray
    counts: np.ndarray
    modes_captured: int
    modes_captured_min_share: int
    high_quality_fraction: float
    reverse_kl: float
    threshold: float
    min_share: float

    def to_dict(self) -> dict:
        return {"modes_captured": self.modes_captured, "modes_captured_min_share": self.modes_captured_min_share,
                "high_quality_fraction": self.high_quality_fraction, "reverse_kl": self.reverse_kl,
                "hq_counts": self.counts.tolist(), "threshold": self.threshold, "min_share": self.min_share,
                "n_components": len(self.counts)}  # fmt: skip


def mode_coverage(samples, mixture: GaussianMixture, threshold: float = 3.0, min_share: float = 0.01) -> ModeCoverage:
    """Score generated ``samples`` against the true ``mixture``.

    A sample is high quality when its Mahalanobis distance to its nearest component is at
    most ``threshold`` (3 standard deviations by default).
    """
    if threshold <= 0 or not 0 <= min_share < 1:
        raise UsageError(f"need threshold > 0 and 0 <= min_share < 1, got {threshold}, {min_share}")
    dist = mahalanobis_distances(samples, mixture)
    nearest = dist.argmin(axis=1)
    d = dist[np.arange(len(dist)), nearest]
    hq = d <= threshold
    k = mixture.n_components
    counts = np.bincount(nearest[hq], minlength=k)
    q = np.bincount(nearest, minlength=k) / len(nearest)
    p = mixture.weights
    support = q > 0
    with np.errstate(divide="ignore"):
        rkl = float(np.sum(q[support] * np.log(q[support] / p[support])))
    return ModeCoverage(
        nearest=nearest, distance=d, high_quality=hq, counts=counts,
        modes_captured=int(np.sum(counts > 0)),
        modes_captured_min_share=int(np.sum(counts >= max(1, min_share * len(nearest)))),
        high_quality_fraction=float(hq.mean()), reverse_kl=rkl, threshold=threshold, min_share=min_share,
    )  # fmt: skip
