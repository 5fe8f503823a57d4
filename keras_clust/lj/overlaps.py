"""Separating overlapping particles: the smallest local repair that leaves no pair too close.

A decoded configuration often has particles on top of each other, where the Lennard-Jones
energy is astronomically high and Metropolis moves, which each shift one particle by at most a
kick, need many sweeps to pull them apart. :func:`separate_overlaps` pushes every pair closer
than ``distance`` apart along the line joining it, each particle by half the shortfall, pair
after pair (Gauss-Seidel), the particles kept inside the box, until no pair is closer than
``distance`` or ``max_iterations`` passes are spent. Particles that sit on the same point are
pushed apart along a direction hashed from their indices and the pass, and after
:data:`TILT_AFTER` passes every push is tilted a little by such a vector, so that particles in a
row against a wall (where every push is along the wall) can leave it; the repair stays
deterministic.

A configuration inside the box without a close pair comes back unchanged, bit for bit; the others move as
little as this local rule needs, so what the repair leaves of a decoded configuration (its
height profile, its spread) is still the model's.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from keras_clust.errors import UsageError
from keras_clust.lj.structure import CLOSE_PAIR

#: Passes over the pairs before :func:`separate_overlaps` gives up on a configuration.
MAX_ITERATIONS = 2000
# Each pair is pushed a little past ``distance`` so that the halving gaps against a wall end.
_OVERSHOOT = 1e-6
#: Passes that push each pair along its own line; after them each push is tilted (:data:`TILT`).
TILT_AFTER = 20
#: Relative size of the hashed vector that tilts a push after :data:`TILT_AFTER` passes, so that
#: particles in a row against a wall, where every push is along the wall, can leave it.
TILT = 0.2


@njit(inline="always")
def _clip(v, box):
    return min(max(v, 0.0), box)


@njit(cache=True)
def _separate(p, box, distance, max_iterations):
    n, dim = p.shape
    goal = distance * (1.0 + _OVERSHOOT)
    limit = distance * distance
    u = np.empty(dim)
    for it in range(max_iterations):
        moved = False
        for i in range(n):
            for j in range(i + 1, n):
                r2 = 0.0
                for k in range(dim):
                    d = p[i, k] - p[j, k]
                    r2 += d * d
                if r2 >= limit:
                    continue
                moved = True
                r = np.sqrt(r2)
                # a hashed vector: the direction of a pair on one point, the tilt of a stuck one
                h = (i * 73856093) ^ (j * 19349663) ^ (it * 83492791)
                norm = 0.0
                for k in range(dim):
                    u[k] = ((h >> (7 * k)) % 255) / 254.0 - 0.5
                    norm += u[k] * u[k]
                if norm < 1e-6:
                    u[:] = 0.0
                    u[0] = 1.0
                    norm = 1.0
                if r > 1e-12:
                    tilt = TILT / np.sqrt(norm) if it >= TILT_AFTER else 0.0
                    norm = 0.0
                    for k in range(dim):
                        u[k] = (p[i, k] - p[j, k]) / r + tilt * u[k]
                        norm += u[k] * u[k]
                for k in range(dim):
                    u[k] /= np.sqrt(norm)
                shift = 0.5 * (goal - r)
                for k in range(dim):
                    p[i, k] = _clip(p[i, k] + shift * u[k], box)
                    p[j, k] = _clip(p[j, k] - shift * u[k], box)
        if not moved:
            return it
    for i in range(n):  # every pass moved a particle: did the last one finish?
        for j in range(i + 1, n):
            r2 = 0.0
            for k in range(dim):
                d = p[i, k] - p[j, k]
                r2 += d * d
            if r2 < limit:
                return max_iterations + 1
    return max_iterations


@njit(parallel=True, cache=True)
def _separate_all(x, box, distance, max_iterations, passes):
    for s in prange(x.shape[0]):
        passes[s] = _separate(x[s], box, distance, max_iterations)


def separate_overlaps(
    positions: np.ndarray, box: float, distance: float = CLOSE_PAIR, max_iterations: int = MAX_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Configurations with every pair closer than ``distance`` pushed apart, inside ``[0, box]``.

    Args:
        positions: ``(S, N, dim)`` configurations in sigma (the box's corner at the origin);
            particles outside the box are first clipped into it.
        box: The box side.
        distance: No pair of the result is closer than this (unless ``max_iterations`` ran out).
        max_iterations: Passes over the pairs per configuration.

    Returns:
        The separated configurations (float64, a copy) and, per configuration, the passes that
        moved a particle: 0 for one that had no close pair, ``max_iterations + 1`` for one that
        still has one after ``max_iterations`` passes (too many particles for the box at that
        distance).
    """
    x = np.asarray(positions, np.float64)
    if x.ndim != 3 or x.shape[1] < 2 or x.shape[2] not in (2, 3):
        raise UsageError(f"configurations must be (S, N >= 2, dim 2 or 3), got shape {x.shape}")
    if not box > 0 or not distance > 0:
        raise UsageError(f"box and distance must be positive, got box {box}, distance {distance}")
    if max_iterations < 1:
        raise UsageError(f"max_iterations must be at least 1, got {max_iterations}")
    x = np.clip(x, 0.0, float(box))  # a copy
    passes = np.zeros(len(x), np.int64)
    _separate_all(x, float(box), float(distance), int(max_iterations), passes)
    return x, passes
