"""Gaussian-mixture data: random or user-given mixtures, seeded sampling, JSON/NPZ files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.data.rows import READ_ERRORS, read_npz
from keras_clust.errors import DataError, UsageError

#: Most memory the identity covariances of a file without ``covariances`` may take (K x d x d float64):
#: a few kilobytes of means must not ask for gigabytes.
MAX_IDENTITY_BYTES = 2**28


@dataclass(frozen=True)
class GaussianMixture:
    """A mixture of K Gaussians in d dimensions.

    Attributes:
        means: ``(K, d)`` component means.
        covariances: ``(K, d, d)`` symmetric positive-definite covariances.
        weights: ``(K,)`` mixture weights, non-negative, summing to 1.
    """

    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def to_dict(self) -> dict:
        return {
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
            "weights": self.weights.tolist(),
        }


def check_mixture(means, covariances, weights, source: str = "mixture") -> GaussianMixture:
    """Validate and build a :class:`GaussianMixture`; raises :class:`DataError` naming the problem."""
    try:
        arrays = [np.asarray(a) for a in (means, covariances, weights)]
        real = all(a.dtype.kind != "c" for a in arrays)  # a cast to float would drop an imaginary part
        means, covariances, weights = (a.astype(np.float64) for a in arrays) if real else arrays
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer such as 10**400
        real = False
    if not real:
        raise DataError(f"{source}: means, covariances and weights must be arrays of real numbers")
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        raise DataError(f"{source}: means must be a K x d array, got shape {means.shape}")
    k, d = means.shape
    if covariances.shape != (k, d, d):
        raise DataError(f"{source}: covariances must be {k} x {d} x {d} to match the means, got {covariances.shape}")
    if weights.shape != (k,):
        raise DataError(f"{source}: weights must have {k} entries (one per mean), got shape {weights.shape}")
    for name, arr in (("means", means), ("covariances", covariances), ("weights", weights)):
        if not np.all(np.abs(arr) <= np.finfo(np.float32).max):  # NaN fails too; samples are float32
            raise DataError(f"{source}: {name} contain NaN, infinite or values beyond float32's range (3.4e38)")
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-6:
        raise DataError(f"{source}: weights must be >= 0 and sum to 1 (they sum to {weights.sum():.6g})")
    for i, cov in enumerate(covariances):
        if not np.allclose(cov, cov.T, atol=1e-9):
            raise DataError(f"{source}: covariance {i} is not symmetric")
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise DataError(f"{source}: covariance {i} is not positive definite") from None
    return GaussianMixture(means, covariances, weights)


def random_mixture(
    dim: int = 3, n_components: int = 10, box: float = 10.0, covariance_scale: float = 1.0, seed: int = 0
) -> GaussianMixture:
    """Means uniform in ``[-box, box]^dim``, covariances ``covariance_scale * I`` (identity by
    default, as in the report), weights drawn from a flat Dirichlet (random, summing to 1)."""
    if dim < 1 or n_components < 1 or box <= 0 or covariance_scale <= 0:
        raise UsageError("need dim >= 1, n_components >= 1, box > 0 and covariance_scale > 0")
    rng = np.random.default_rng(seed)
    means = rng.uniform(-box, box, size=(n_components, dim))
    covs = np.repeat(np.eye(dim)[None] * covariance_scale, n_components, axis=0)
    weights = rng.dirichlet(np.ones(n_components))
    return GaussianMixture(means, covs, weights)


def sample_mixture(mixture: GaussianMixture, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` samples; returns ``(x (n, d) float32, component labels (n,))``."""
    if n < 1:
        raise UsageError(f"number of samples must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    labels = rng.choice(mixture.n_components, size=n, p=mixture.weights)
    chol = np.linalg.cholesky(mixture.covariances)  # (K, d, d)
    noise = rng.standard_normal((n, mixture.dim))
    x = mixture.means[labels] + np.einsum("nij,nj->ni", chol[labels], noise)
    return x.astype(np.float32), labels


def load_mixture(path: str | Path) -> GaussianMixture:
    """Read a mixture from JSON (``{"means": ..., "covariances": ..., "weights": ...}``) or NPZ
    (arrays of those names). Covariances may be omitted (identity for every component)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mixture file {path} not found")
    try:
        raw = read_npz(path) if path.suffix == ".npz" else json.loads(path.read_text())
    except READ_ERRORS as exc:  # RecursionError (a RuntimeError): JSON arrays nested thousands deep
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read mixture file {path}: {reason}; use JSON or NPZ") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object with means, covariances and weights")
    missing = [k for k in ("means", "weights") if k not in raw]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (needs means, weights and optionally covariances)")
    covs = raw.get("covariances")
    if covs is None:  # identity covariances, as in the report
        try:
            k, d = np.shape(raw["means"])
        except (TypeError, ValueError):
            raise DataError(f"{path}: means must be a K x d array of numbers") from None
        if k * d * d * 8 > MAX_IDENTITY_BYTES:
            raise DataError(
                f"{path}: identity covariances for {k} means of {d} dimensions would take "
                f"{k * d * d * 8 / 2**30:.1f} GiB; give the covariances or fewer dimensions"
            )
        covs = np.repeat(np.eye(d)[None], k, axis=0)
    return check_mixture(raw["means"], covs, raw["weights"], source=str(path))


def save_mixture(mixture: GaussianMixture, path: str | Path) -> Path:
    """Write ``mixture`` as JSON (atomically)."""
    from keras_clust.files import atomic_write_text

    return atomic_write_text(path, json.dumps(mixture.to_dict(), indent=1))


def mixture_log_density(mixture: GaussianMixture, x) -> np.ndarray:
    """``log p(x)`` of every sample under the mixture, in nats (``(n,)`` float64)."""
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != mixture.dim:
        raise UsageError(f"samples must be n x {mixture.dim}, got shape {x.shape}")
    chol = np.linalg.cholesky(mixture.covariances)  # (K, d, d)
    diff = x[:, None, :] - mixture.means[None]  # (n, K, d)
    y = np.linalg.solve(chol[None], diff[..., None])[..., 0]
    log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)  # (K,)
    with np.errstate(divide="ignore"):
        log_w = np.log(mixture.weights)
    log_comp = -0.5 * (np.sum(y * y, axis=-1) + log_det + mixture.dim * np.log(2.0 * np.pi))
    return logsumexp(log_comp + log_w, axis=1)
