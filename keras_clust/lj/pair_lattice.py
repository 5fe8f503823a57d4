"""The lattice and pair sums the pair decoder reads (:mod:`keras_clust.lj.pair_decoder`).

The pair decoder draws a configuration's particles one at a time, lowest first (sorted
coordinates, :func:`~keras_clust.lj.representations.sorted_coordinates` by height). Each
particle's position in the plane (every axis but the last, the height) is a cell of a ``grid``
lattice of the box's cross-section, then a sub-cell of a ``sub`` lattice within that cell, then
uniform within the sub-cell. Its logits hold a pair potential summed over the ``window``
particles drawn just before it, at each cell's centre (and each sub-cell's):
``phi(r) = sum_m c_m relu(h_m - r)`` with hinges ``h_m`` in sigma. The distances depend on the
data only, so the sums ``sum_k relu(h_m - r_k)`` per hinge are computed here once per
configuration (numba, no TensorFlow), and the model only weighs them (:class:`PairLattice`'s
:meth:`~PairLattice.features`); the sampler computes the same sums for one particle at a time
(:meth:`~PairLattice.window_sums`).

Positions here are in box units (the box's side is 1), as the sorted coordinates are; distances
are in sigma (``box`` sigma per box unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

HINGES = (0.7, 0.85, 1.0, 1.15, 1.3, 1.6)
"""The potential's hinges (sigma): learned repulsive steps between near contact and 1.6 sigma."""
#: The steep wall's sum (:attr:`PairLattice.wall`): ``(max(r, WALL_FLOOR) / WALL_FLOOR)**-12 -
#: (WALL_CUT / WALL_FLOOR)**-12`` for ``r < WALL_CUT`` (sigma): the Lennard-Jones repulsion's shape,
#: capped near the core at 1 per pair (of the order of the hinges' sums, so that one learning rate
#: suits both) and zero beyond the last hinge.
WALL_FLOOR, WALL_CUT = 0.7, 1.6


@njit(parallel=True, cache=True)
def _hinge_sums(base, shift, prev, dz, count, box, radii, wall_at):  # pragma: no cover - numba
    """``out[b, p, m] = sum_{k < count[b]} relu(radii[m] - r)``, ``r`` the distance (sigma) from
    the point ``base[p] + shift[b]`` at height difference ``dz[b, k]`` to ``prev[b, k]``; with
    ``wall_at >= 0``, the wall's sum is column ``wall_at`` and the radii from there on move one up."""
    n_rows, n_points, n_radii, n_axes = shift.shape[0], base.shape[0], radii.shape[0], base.shape[1]
    n_out = n_radii + (1 if wall_at >= 0 else 0)
    cut12 = (WALL_CUT / WALL_FLOOR) ** -12
    column = np.arange(n_radii)  # each radius's column: one further on from the wall's
    if wall_at >= 0:
        column[wall_at:] += 1
    out = np.zeros((n_rows, n_points, n_out), np.float32)
    for b in prange(n_rows):
        acc = np.zeros(n_out)
        for p in range(n_points):
            acc[:] = 0.0
            for k in range(count[b]):
                r2 = dz[b, k] * dz[b, k]
                for a in range(n_axes):
                    d = base[p, a] + shift[b, a] - prev[b, k, a]
                    r2 += d * d
                r = box * np.sqrt(r2 + 1e-8)
                for m in range(n_radii):
                    if r < radii[m]:
                        acc[column[m]] += radii[m] - r
                if wall_at >= 0 and r < WALL_CUT:
                    acc[wall_at] += (max(r, WALL_FLOOR) / WALL_FLOOR) ** -12 - cut12
            for m in range(n_out):
                out[b, p, m] = acc[m]
    return out


def lattice_cell(xy: np.ndarray, grid: int) -> np.ndarray:
    """The cell of each position (box units) on a ``grid`` lattice, per axis (integers as the
    positions' float type, as the model's :func:`keras.ops.floor` gives them)."""
    xy = np.asarray(xy)
    return np.clip(np.floor(xy * xy.dtype.type(grid)), 0, grid - 1)


def lattice_sub_cell(xy: np.ndarray, cell: np.ndarray, grid: int, sub: int) -> np.ndarray:
    """The sub-cell of each position within its ``cell`` (:func:`lattice_cell`) on a ``sub``
    lattice, per axis."""
    xy = np.asarray(xy)
    return np.clip(np.floor((xy * xy.dtype.type(grid) - cell) * xy.dtype.type(sub)), 0, sub - 1)


def flat_index(cell: np.ndarray, size: int) -> np.ndarray:
    """Per-axis lattice indices ``(..., axes)`` as one index, the first axis slowest."""
    cell = np.asarray(cell).astype(np.int64)
    flat = cell[..., 0]
    for a in range(1, cell.shape[-1]):
        flat = flat * size + cell[..., a]
    return flat


def _centres(size: int, axes: int) -> np.ndarray:
    """Centres of a ``size`` lattice of the unit cube in ``axes`` dimensions, ``(size**axes,
    axes)``, in :func:`flat_index` order."""
    c = (np.arange(size) + 0.5) / size
    mesh = np.meshgrid(*([c] * axes), indexing="ij")
    return np.stack([m.ravel() for m in mesh], -1)


@dataclass(frozen=True)
class PairLattice:
    """Where the pair decoder's particles may go, and what its potential sees.

    Attributes:
        n_particles: Particles per configuration.
        dim: Axes per particle; the last is the height, the others the plane the lattice covers.
        box: The box's side in sigma.
        grid: Cells per axis of the plane.
        sub: Sub-cells per axis within a cell (1: none).
        window: How many particles drawn just before a particle its potential sees.
        hinges: The learned potential's hinges (sigma).
        core: None, or the hard core's radii ``(cells, sub-cells)`` in sigma: a fixed hinge at
            each, whose weight the model does not learn (:data:`CORE_SLOPE` in
            :mod:`~keras_clust.lj.pair_decoder`). :func:`closest_centres` says how large they may
            be without touching a training particle.
        wall: One more learned sum after the hinges: the Lennard-Jones wall's shape
            (:data:`WALL_FLOOR`, :data:`WALL_CUT`), which rises steeply where the hinges are linear.
    """

    n_particles: int
    dim: int
    box: float
    grid: int = 16
    sub: int = 4
    window: int = 29
    hinges: tuple[float, ...] = HINGES
    core: tuple[float, float] | None = None
    wall: bool = False

    @property
    def plane(self) -> int:
        return self.dim - 1

    @property
    def cells(self) -> int:
        return self.grid**self.plane

    @property
    def sub_cells(self) -> int:
        return self.sub**self.plane

    @property
    def learned(self) -> int:
        """The sums whose strengths the model learns: one per hinge, and the wall's."""
        return len(self.hinges) + bool(self.wall)

    @property
    def sums(self) -> int:
        """Pair sums per point: the learned ones (:attr:`learned`), then the core's."""
        return self.learned + (self.core is not None)

    def radii(self, level: int) -> np.ndarray:
        """The hinges, then the core's radius at ``level`` (0: cells, 1: sub-cells) if any."""
        core = () if self.core is None else (self.core[level],)
        return np.asarray(tuple(self.hinges) + core, np.float64)

    def cell_centres(self) -> np.ndarray:
        """``(cells, plane)``, box units."""
        return _centres(self.grid, self.plane)

    def sub_offsets(self) -> np.ndarray:
        """``(sub_cells, plane)``: each sub-cell's centre less its cell's, box units."""
        return (_centres(self.sub, self.plane) - 0.5) / self.grid

    def window_sums(self, level: int, points_shift, prev_xy, dz, count) -> np.ndarray:
        """Pair sums ``(rows, points, sums)`` at the cells' centres (``level`` 0) or at the
        sub-cells' centres of the cell whose centre is each row's ``points_shift`` (level 1;
        ``points_shift`` is ignored at level 0), from each row's ``count`` first particles of
        ``prev_xy`` ``(rows, K, plane)`` at height differences ``dz`` ``(rows, K)``."""
        rows = len(prev_xy)
        if level == 0:
            base, shift = self.cell_centres(), np.zeros((rows, self.plane))
        else:
            base, shift = self.sub_offsets(), np.asarray(points_shift, np.float64)
        return _hinge_sums(
            base,
            shift,
            np.asarray(prev_xy, np.float64),
            np.asarray(dz, np.float64),
            np.asarray(count, np.int64),
            float(self.box),
            self.radii(level),
            len(self.hinges) if self.wall else -1,
        )

    def _windows(self, x: np.ndarray):
        """Each particle's window: the positions in the plane ``(n * N, W, plane)`` and height
        differences ``(n * N, W)`` of the particles before it, nearest first, and how many there
        are ``(n * N,)``."""
        n, big_n = len(x), self.n_particles
        back = np.arange(big_n)[:, None] - np.arange(1, self.window + 1)[None, :]
        index = np.maximum(back, 0)
        xy, h = x[..., : self.plane], x[..., self.plane]
        prev = xy[:, index].reshape(n * big_n, self.window, self.plane)
        dz = (h[:, :, None] - h[:, index]).reshape(n * big_n, self.window)
        count = np.tile(np.minimum(np.arange(big_n), self.window), n)
        return prev, dz, count

    def features(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pair sums of sorted coordinates ``(n, N * dim)`` (box units), what the model
        reads beside them: at every cell's centre ``(n, N, cells, sums)``, and at the sub-cells'
        centres of each particle's own cell ``(n, N, sub_cells, sums)``, float32."""
        coords = np.asarray(coords, np.float32)
        n = len(coords)
        x = coords.reshape(n, self.n_particles, self.dim)
        prev, dz, count = self._windows(x.astype(np.float64))
        cell = self.window_sums(0, None, prev, dz, count)
        centre = (lattice_cell(x[..., : self.plane], self.grid).astype(np.float64) + 0.5) / self.grid
        sub = self.window_sums(1, centre.reshape(-1, self.plane), prev, dz, count)
        return (
            cell.reshape(n, self.n_particles, self.cells, self.sums),
            sub.reshape(n, self.n_particles, self.sub_cells, self.sums),
        )


def closest_centres(lattice: PairLattice, coords: np.ndarray) -> tuple[float, float]:
    """The closest (sigma) any particle's own cell centre, and its own sub-cell centre, comes to a
    particle in its window, over sorted coordinates ``(n, N * dim)`` (box units): how large the
    core's radii may be without touching one of these configurations."""
    x = np.asarray(coords, np.float32).reshape(len(coords), lattice.n_particles, lattice.dim)
    xy32 = x[..., : lattice.plane]
    cell = lattice_cell(xy32, lattice.grid)
    sub = lattice_sub_cell(xy32, cell, lattice.grid, lattice.sub)
    cell, sub = cell.astype(np.float64), sub.astype(np.float64)
    centres = ((cell + 0.5) / lattice.grid, (cell + (sub + 0.5) / lattice.sub) / lattice.grid)
    x = x.astype(np.float64)
    xy, h = x[..., : lattice.plane], x[..., lattice.plane]
    closest = [np.inf, np.inf]
    for k in range(1, lattice.n_particles):
        below = slice(max(k - lattice.window, 0), k)
        dz2 = (h[:, k, None] - h[:, below]) ** 2
        for level, centre in enumerate(centres):
            r = lattice.box * np.sqrt(((centre[:, k, None, :] - xy[:, below]) ** 2).sum(-1) + dz2)
            closest[level] = min(closest[level], float(r.min()))
    return closest[0], closest[1]
