"""Configurations back from distances: classical MDS, Kabsch/Procrustes alignment, RMSD."""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes

from keras_clust.errors import DataError


def classical_mds(distances: np.ndarray, dim: int) -> np.ndarray:
    """Coordinates whose pair distances best match ``distances`` (Torgerson's classical MDS).

    The squared distances are double-centred into the Gram matrix ``B = -J D^2 J / 2`` of
    the centred configuration; its ``dim`` largest eigenpairs give the coordinates
    ``V sqrt(lambda)`` (negative eigenvalues of a non-Euclidean matrix clipped at 0). An exact
    Euclidean distance matrix gives the configuration back up to a rigid motion and reflection.

    Args:
        distances: ``(N, N)`` or ``(S, N, N)`` symmetric distances.
        dim: Dimension of the coordinates.

    Returns:
        ``(N, dim)`` or ``(S, N, dim)`` centred coordinates.
    """
    d = np.asarray(distances, np.float64)
    single = d.ndim == 2
    if single:
        d = d[None]
    if d.ndim != 3 or d.shape[1] != d.shape[2]:
        raise DataError(f"distance matrices must be (N, N) or (S, N, N), got shape {np.shape(distances)}")
    n = d.shape[1]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    b = 0.5 * (b + np.swapaxes(b, 1, 2))
    values, vectors = np.linalg.eigh(b)  # ascending
    values, vectors = values[:, ::-1][:, :dim], vectors[:, :, ::-1][:, :, :dim]
    x = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
    return x[0] if single else x


def kabsch_align(x: np.ndarray, reference: np.ndarray, reflection: bool = True) -> np.ndarray:
    """``x`` moved onto ``reference`` by the translation and orthogonal map that minimise the RMSD.

    The optimal rotation comes from the SVD of the centred cross-covariance (Kabsch); with
    ``reflection`` an improper orthogonal map is allowed too (orthogonal Procrustes,
    :func:`scipy.linalg.orthogonal_procrustes`), which
    MDS needs since it cannot tell a configuration from its mirror image.

    Args:
        x, reference: ``(N, dim)`` or ``(S, N, dim)`` with the same particle order.

    Returns:
        The aligned copy of ``x``.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(reference, np.float64)
    if x.shape != y.shape:
        raise DataError(f"cannot align configurations of shapes {x.shape} and {y.shape}")
    single = x.ndim == 2
    if single:
        x, y = x[None], y[None]
    xc, yc = x.mean(axis=1, keepdims=True), y.mean(axis=1, keepdims=True)
    a, b = x - xc, y - yc
    if reflection:
        maps = np.empty((len(a), a.shape[2], a.shape[2]))
        for i in range(len(a)):
            maps[i] = orthogonal_procrustes(a[i], b[i])[0]
    else:  # Kabsch: flip the last singular direction when the map would be a reflection
        u, _, vt = np.linalg.svd(np.swapaxes(a, 1, 2) @ b)
        sign = np.sign(np.linalg.det(u @ vt))
        sign[sign == 0] = 1.0
        u[:, :, -1] *= sign[:, None]
        maps = u @ vt
    aligned = a @ maps + yc
    return aligned[0] if single else aligned


def rmsd(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Root-mean-square deviation per configuration (same particle order, no alignment)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(reference, np.float64)
    return np.sqrt(np.mean(np.sum((x - y) ** 2, axis=-1), axis=-1))


def min_pair_distance(positions: np.ndarray) -> np.ndarray:
    """Closest pair distance of each configuration ``(S, N, dim)`` -> ``(S,)``."""
    x = np.asarray(positions, np.float64)
    diff = x[..., :, None, :] - x[..., None, :, :]
    d = np.sqrt(np.sum(diff**2, axis=-1))
    n = d.shape[-1]
    d[..., np.arange(n), np.arange(n)] = np.inf
    return d.reshape(*d.shape[:-2], -1).min(axis=-1)
