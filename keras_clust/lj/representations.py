"""Three views of a particle configuration for a neural network, and the input pipeline
that builds the density grids on the fly.

* **Sorted coordinates** (:func:`sorted_coordinates`): the ``(N, dim)`` positions sorted
  along one axis (x in the write-up's first model; the height under gravity by default in
  ``lj-fluid``), flattened and divided by the box side into [0, 1]. Sorted by x, the order of
  the particles carries no meaning a dense network can rely on; sorted by height, the k-th
  entry is the k-th lowest particle, whose height gravity sets.
* **Density grid** (:func:`density_grid`, :func:`grid_dataset`): cell counts on an
  ``n^dim`` grid of cell side ``h = L / n``, divided by the largest count of the
  configuration (so a grid fine enough to hold at most one particle per cell is binary).
  Invariant to the order of the particles. 8,000 configurations at ``n = 48`` would be
  3.5 GB as float32, so :func:`grid_dataset` builds each batch's grids from the positions
  inside a ``tf.data`` pipeline instead of storing them. With a ``smoothing`` width ``s`` the
  grid is instead a smooth density (:func:`smoothed_density_grid`): every particle adds a
  Gaussian blob ``exp(-|c - p|^2 / 2 s^2)`` at each cell centre ``c``, so an isolated particle
  peaks near 1 and a pair closer than the particle diameter makes a peak well above it.
* **Distance matrix** (:func:`distance_matrices`): particles ordered by their distance from
  the origin, the ``N x N`` matrix of pair distances divided by the box diagonal
  ``L sqrt(dim)`` into [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from keras_clust.errors import UsageError

#: Halvings of the density grid by the Conv VAE's three 2x pooling blocks.
POOLINGS = 3
#: How the grid VAE's blocks halve and double the grid (``build_grid_vae``'s ``blocks``).
GRID_BLOCKS = ("pool", "strided", "pool-deconv", "pool-shuffle")
#: The grid VAE's likelihoods (``build_grid_vae``'s ``likelihood``): Bernoulli for occupancy grids,
#: Gaussian for smooth ones.
GRID_LIKELIHOODS = ("bernoulli", "gaussian")


def sorted_coordinates(positions: np.ndarray, box: float, axis: int = 0) -> np.ndarray:
    """``(S, N, dim)`` positions -> ``(S, N * dim)`` float32, particles sorted by their coordinate
    ``axis`` (0: x; ``dim - 1``: the height), in [0, 1]."""
    positions = np.asarray(positions)
    order = np.argsort(positions[..., axis], axis=-1, kind="stable")
    ordered = np.take_along_axis(positions, order[..., None], axis=-2)
    return (ordered.reshape(len(positions), -1) / box).astype(np.float32)


def unsort_coordinates(features: np.ndarray, box: float, dim: int) -> np.ndarray:
    """Inverse of the scaling of :func:`sorted_coordinates`: ``(S, N * dim)`` -> ``(S, N, dim)`` positions."""
    features = np.asarray(features, np.float64)
    return features.reshape(len(features), -1, dim) * box


def order_by_origin(positions: np.ndarray) -> np.ndarray:
    """Positions with the particles of each configuration ordered by distance from the origin."""
    positions = np.asarray(positions)
    order = np.argsort(np.linalg.norm(positions, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(positions, order[..., None], axis=-2)


def pair_distances(positions: np.ndarray) -> np.ndarray:
    """``(..., N, dim)`` -> ``(..., N, N)`` Euclidean distances (float64)."""
    x = np.asarray(positions, np.float64)
    diff = x[..., :, None, :] - x[..., None, :, :]
    return np.sqrt(np.sum(diff**2, axis=-1))


def box_diagonal(box: float, dim: int) -> float:
    return float(box) * math.sqrt(dim)


def distance_matrices(positions: np.ndarray, box: float) -> np.ndarray:
    """``(S, N, dim)`` -> ``(S, N, N, 1)`` float32: distances between the particles ordered by
    distance from the origin, divided by the box diagonal into [0, 1]."""
    positions = np.asarray(positions)
    d = pair_distances(order_by_origin(positions)) / box_diagonal(box, positions.shape[-1])
    return d[..., None].astype(np.float32)


#: Contacts are computed with ``r`` at least this (sigma), so that a pair on one point stays finite.
CONTACT_MIN_DISTANCE = 0.25


def contacts(distances) -> np.ndarray:
    """Contacts ``(sigma / r)^6`` of distances ``r`` in sigma (float64), ``r`` floored at
    :data:`CONTACT_MIN_DISTANCE`: the attractive term of the Lennard-Jones pair energy up to its
    factor -4, large only for a close pair (64 at 0.5 sigma, at most 3.8 beyond 0.8 sigma, under
    0.016 beyond 2 sigma)."""
    return np.maximum(np.asarray(distances, np.float64), CONTACT_MIN_DISTANCE) ** -6.0


def matrices_to_distances(matrices: np.ndarray, box: float, dim: int) -> np.ndarray:
    """Network outputs ``(S, N, N[, 1])`` in [0, 1] -> symmetric distances in sigma, zero diagonal."""
    m = np.asarray(matrices, np.float64)
    if m.ndim == 4:
        m = m[..., 0]
    m = 0.5 * (m + np.swapaxes(m, -1, -2))
    idx = np.arange(m.shape[-1])
    m[..., idx, idx] = 0.0
    return np.clip(m, 0.0, None) * box_diagonal(box, dim)


# --- density grids --------------------------------------------------------------------


def grid_cells(box: float, h: float, poolings: int = POOLINGS) -> int:
    """Cells per side ``n = L / h`` of a density grid, checked (``h`` may be rounded to 4-5
    significant digits; the grid's cells then have side ``L / n`` exactly).

    Raises:
        UsageError: when ``h`` does not divide ``L`` into a whole number of cells, or when
            ``n`` cannot be halved ``poolings`` times; the message names the nearest ``h`` that would.
    """
    if not (h > 0 and math.isfinite(h)):
        raise UsageError(f"grid cell size h must be a number > 0, got {h}")
    ratio = box / h
    n = round(ratio)
    factor = 2**poolings
    whole = abs(ratio - n) <= 1e-4 * ratio  # h as printed with 6 digits still names its grid
    if n >= 1 and whole and n % factor == 0:
        return int(n)
    lower = max(factor, int(ratio // factor) * factor)
    options = sorted({lower, lower + factor}, key=lambda c: abs(box / c - h))
    suggest = " or ".join(f"h = {box / c:.6g} ({c} cells)" for c in options)
    what = f"{n} cells" if whole else f"{ratio:.4g} cells"
    raise UsageError(
        f"h = {h:g} divides the box L = {box:g} into {what}; the Conv VAE's {poolings} 2x poolings "
        f"need a whole number of cells divisible by {factor}: use {suggest}"
    )


def cell_indices(positions: np.ndarray, box: float, n: int) -> np.ndarray:
    """Flat cell index (row-major over the ``dim`` axes) of every particle: ``(S, N)`` int64."""
    positions = np.asarray(positions, np.float64)
    idx = np.clip(np.floor(positions / box * n).astype(np.int64), 0, n - 1)
    flat = np.zeros(idx.shape[:-1], np.int64)
    for axis in range(idx.shape[-1]):
        flat = flat * n + idx[..., axis]
    return flat


def density_grid(positions: np.ndarray, box: float, n: int) -> np.ndarray:
    """NumPy reference of the pipeline's grids: ``(S, N, dim)`` -> ``(S, n, ..., n, 1)`` float32,
    cell counts divided by the configuration's largest count."""
    positions = np.asarray(positions)
    dim = positions.shape[-1]
    flat = cell_indices(positions, box, n)
    counts = np.zeros((len(positions), n**dim), np.float32)
    for s in range(len(positions)):
        np.add.at(counts[s], flat[s], 1.0)
    counts /= counts.max(axis=1, keepdims=True)
    return counts.reshape(len(positions), *([n] * dim), 1)


def _einsum_spec(dim: int) -> str:
    axes = "xyz"[:dim]
    return ",".join(f"bi{a}" for a in axes) + f"->b{axes}"


def smoothed_density_grid(positions: np.ndarray, box: float, n: int, width: float) -> np.ndarray:
    """NumPy reference of the pipeline's smooth grids: ``(S, N, dim)`` -> ``(S, n, ..., n, 1)``
    float32, at each cell centre ``c`` the sum over particles of ``exp(-|c - p|^2 / 2 width^2)``
    (no division: the grid's scale is the same in every configuration)."""
    positions = np.asarray(positions, np.float64)
    dim = positions.shape[-1]
    if not width > 0:
        raise UsageError(f"the smoothing width must be > 0 sigma, got {width}")
    centres = (np.arange(n) + 0.5) * (box / n)
    # the Gaussian factorises over the axes: one profile (S, N, n) per axis, multiplied out per particle
    profiles = np.exp(-((centres - positions[..., None]) ** 2) / (2.0 * width**2))
    field = np.einsum(_einsum_spec(dim), *(profiles[:, :, a] for a in range(dim)))
    return field.astype(np.float32)[..., None]


def grids_of(positions: np.ndarray, box: float, n: int, smoothing: float = 0.0) -> np.ndarray:
    """The grids :func:`grid_dataset` makes, in NumPy: :func:`density_grid`, or with ``smoothing``
    > 0 :func:`smoothed_density_grid` of that width."""
    if smoothing > 0:
        return smoothed_density_grid(positions, box, n, smoothing)
    return density_grid(positions, box, n)


def density_grid_tf(positions, box: float, n: int, dim: int, smoothing: float = 0.0):
    """TensorFlow twin of :func:`density_grid` for a batch ``(B, N, dim)`` (used in ``tf.data``);
    with ``smoothing`` > 0, of :func:`smoothed_density_grid` of that width."""
    import tensorflow as tf

    positions = tf.cast(positions, tf.float32)
    if smoothing > 0:
        centres = (tf.range(n, dtype=tf.float32) + 0.5) * (box / n)
        profiles = tf.exp(-tf.square(centres - positions[..., None]) / (2.0 * smoothing**2))
        field = tf.einsum(_einsum_spec(dim), *(profiles[:, :, a] for a in range(dim)))
        return field[..., None]
    idx = tf.clip_by_value(tf.cast(tf.floor(positions / box * n), tf.int32), 0, n - 1)
    flat = idx[..., 0]
    for axis in range(1, dim):
        flat = flat * n + idx[..., axis]
    counts = tf.math.bincount(flat, minlength=n**dim, maxlength=n**dim, dtype=tf.float32, axis=-1)
    counts = counts / tf.reduce_max(counts, axis=1, keepdims=True)
    return tf.reshape(counts, (-1, *([n] * dim), 1))


def grid_dataset(
    positions: np.ndarray,
    box: float,
    n: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    smoothing: float = 0.0,
):
    """A ``tf.data.Dataset`` of density grids built batch by batch from ``positions``.

    Only the positions are held in memory (``S x N x dim`` floats); each batch's grids are
    made by :func:`density_grid_tf` in a parallel ``map`` and prefetched. With ``shuffle``
    the order is reshuffled every epoch from ``seed``. ``smoothing`` > 0: smooth grids of that
    width (:func:`smoothed_density_grid`) instead of normalised counts.
    """
    import tensorflow as tf

    positions = np.asarray(positions, np.float32)
    dim = positions.shape[-1]
    ds = tf.data.Dataset.from_tensor_slices(positions)
    if shuffle:
        ds = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size).map(
        lambda p: density_grid_tf(p, box, n, dim, smoothing), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)
