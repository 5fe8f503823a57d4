"""Metropolis Monte Carlo of a Lennard-Jones fluid under gravity, many replicas at once.

Reduced units (sigma = epsilon = 1): ``U = sum_pairs 4 (r^-12 - r^-6) + 4 gamma sum_i h_i``,
with ``h`` the last coordinate (z in 3-D, y in 2-D), no cutoff and no periodic images. The
particles live in ``[0, L]^dim``; a proposed coordinate leaving the box is reflected back in
(the proposal stays symmetric, so the chain samples ``exp(-U / T)`` restricted to the box).

One Metropolis move picks a particle at random, adds ``uniform(-kick, kick)`` to each of its
coordinates and accepts if ``dU <= 0``, else with probability ``exp(-dU / T)``; ``dU`` comes
from the moved particle's pairs only, old and new pair energies fused in one loop. A sweep is
``N`` attempted moves.

The compiled kernels (numba) keep positions as rows x, y, z per replica, padded with columns
at infinity to a multiple of the vector width so the pair loop vectorises without remainder
(about twice as fast at N = 30); in 2-D the third row is zero, so one kernel serves both
dimensions. Every replica draws from its own
xoshiro256** generator, seeded from ``np.random.SeedSequence``, so a chain does not depend on
which thread runs it: the same seed gives bit-identical chains with any number of threads.

The sampling driver (preliminary run, equilibration, lag, sampling run) is
:mod:`keras_clust.lj.sampling`; dataset files are :mod:`keras_clust.lj.dataset`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from keras_clust.errors import DataError, UsageError

#: Smallest lattice spacing of the initial configurations: no pair starts closer than this.
MIN_SPACING = 0.9

# Reassociation lets LLVM vectorise the pair loop; no "nnan"/"ninf", so an overlap (r -> 0)
# still gives dU = inf and a rejected move.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

# Particle arrays are padded to a multiple of this many columns (8 doubles: one AVX-512 vector).
_PAD = 8


@dataclass(frozen=True)
class LJSystem:
    """The physical system: ``n_particles`` in a box of side ``box`` in ``dim`` dimensions at ``temperature``."""

    n_particles: int
    box: float
    dim: int = 3
    temperature: float = 1.0

    @property
    def lattice_side(self) -> int:
        """Sites per side of the smallest cubic (square) lattice holding ``n_particles``."""
        return lattice_side(self.n_particles, self.dim)

    @property
    def min_box(self) -> float:
        """Smallest box whose initial lattice spacing is :data:`MIN_SPACING`."""
        return MIN_SPACING * self.lattice_side

    def validate(self) -> LJSystem:
        """Check the system can be simulated; returns ``self``.

        Raises:
            UsageError: naming the bad value and what to do.
        """
        if int(self.n_particles) != self.n_particles or self.n_particles < 2:
            raise UsageError(f"need at least 2 particles (an integer), got {self.n_particles}; raise --particles")
        if self.dim not in (2, 3):
            raise UsageError(f"dim must be 2 or 3, got {self.dim}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UsageError(f"temperature must be a finite number > 0, got {self.temperature}")
        if not (math.isfinite(self.box) and self.box > 0):
            raise UsageError(f"box side must be a finite number > 0, got {self.box}")
        if self.box / self.lattice_side < MIN_SPACING:
            raise UsageError(
                f"a box of side {self.box:g} is too small for {self.n_particles} non-overlapping particles in "
                f"{self.dim}-D; use a box of at least {self.min_box:g} or fewer particles"
            )
        return self


def lattice_side(n: int, dim: int) -> int:
    """Smallest ``m`` with ``m ** dim >= n`` (exact integer arithmetic)."""
    m = max(1, int(round(n ** (1.0 / dim))))
    while m**dim < n:
        m += 1
    while m > 1 and (m - 1) ** dim >= n:
        m -= 1
    return m


def check_kick(kick: float, box: float) -> float:
    """Check ``0 < kick < box / 2`` (one reflection then always brings a coordinate back); returns it.

    Raises:
        UsageError: when the kick is out of range.
    """
    if not (math.isfinite(kick) and 0 < kick < box / 2):
        raise UsageError(f"kick must be in (0, {box / 2:g}) (half the box side), got {kick}")
    return float(kick)


# ---------------------------------------------------------------- compiled kernels

_U5, _U7, _U9, _U11 = np.uint64(5), np.uint64(7), np.uint64(9), np.uint64(11)
_U17, _U45, _U64 = np.uint64(17), np.uint64(45), np.uint64(64)
_TWO_M53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_U64 - k))


@njit(inline="always")
def _xoshiro(s0, s1, s2, s3):
    """One xoshiro256** step: returns the new state and a uniform double in [0, 1)."""
    out = _rotl(s1 * _U5, _U7) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _U45)
    return s0, s1, s2, s3, (out >> _U11) * _TWO_M53


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _move_delta(pos, i, px, py, pz, gamma, axis):
    """``dU`` of moving particle ``i`` of ``pos`` (``(3, n_pad)``) to ``(px, py, pz)``; height is row ``axis``.

    One loop over every column, old and new pair energies fused; the self pair is masked
    out and the padding columns (infinite coordinates) add exactly zero. A padded length
    that is a multiple of the vector width lets LLVM vectorise the loop without remainder.
    """
    xs, ys, zs = pos[0], pos[1], pos[2]
    ox, oy, oz = xs[i], ys[i], zs[i]
    lj = 0.0
    for j in range(pos.shape[1]):
        dx = px - xs[j]
        dy = py - ys[j]
        dz = pz - zs[j]
        r2 = dx * dx + dy * dy + dz * dz
        dx = ox - xs[j]
        dy = oy - ys[j]
        dz = oz - zs[j]
        q2 = dx * dx + dy * dy + dz * dz
        a6 = 1.0 / (r2 * r2 * r2)
        b6 = 1.0 / (q2 * q2 * q2)
        term = a6 * (a6 - 1.0) - b6 * (b6 - 1.0)
        lj += 0.0 if j == i else term
    dh = (pz - oz) if axis == 2 else (py - oy)
    return 4.0 * lj + 4.0 * gamma * dh


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _total_energy(pos, n, gamma, axis):
    """Total energy of the first ``n`` columns of one ``(3, n_pad)`` configuration."""
    lj = 0.0
    height = 0.0
    for i in range(n):
        height += pos[axis, i]
        for j in range(i + 1, n):
            dx = pos[0, i] - pos[0, j]
            dy = pos[1, i] - pos[1, j]
            dz = pos[2, i] - pos[2, j]
            r2 = dx * dx + dy * dy + dz * dz
            a6 = 1.0 / (r2 * r2 * r2)
            lj += a6 * (a6 - 1.0)
    return 4.0 * lj + 4.0 * gamma * height


@njit(parallel=True, cache=True, error_model="numpy")
def _total_energies(pos, n, gammas, axis, out):
    for s in prange(pos.shape[0]):
        out[s] = _total_energy(pos[s], n, gammas[s], axis)


@njit(inline="always")
def _reflect(v, box):
    if v < 0.0:
        v = -v
    if v > box:
        v = 2.0 * box - v
    return v


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _chain(pos, n, state, gamma, box, temperature, kick, dim, n_sweeps, record_every, energy, e_out, p_out):
    """Advance one replica (``n`` particles in the ``(3, n_pad)`` ``pos``) by ``n_sweeps`` sweeps.

    Records the running energy in ``e_out`` (and positions in ``p_out`` unless it has no
    rows) after every ``record_every`` sweeps. ``state`` (4 uint64) is updated in place.

    Returns:
        ``(energy, accepted moves)``.
    """
    axis = dim - 1
    record_positions = p_out.shape[0] > 0
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    width = 2.0 * kick
    accepted = 0
    rec = 0
    for sweep in range(n_sweeps):
        for _ in range(n):
            s0, s1, s2, s3, u = _xoshiro(s0, s1, s2, s3)
            i = int(u * n)
            s0, s1, s2, s3, u = _xoshiro(s0, s1, s2, s3)
            px = _reflect(pos[0, i] + width * u - kick, box)
            s0, s1, s2, s3, u = _xoshiro(s0, s1, s2, s3)
            py = _reflect(pos[1, i] + width * u - kick, box)
            pz = pos[2, i]
            if dim == 3:
                s0, s1, s2, s3, u = _xoshiro(s0, s1, s2, s3)
                pz = _reflect(pz + width * u - kick, box)
            du = _move_delta(pos, i, px, py, pz, gamma, axis)
            accept = du <= 0.0
            if not accept:
                s0, s1, s2, s3, u = _xoshiro(s0, s1, s2, s3)
                accept = u < math.exp(-du / temperature)
            if accept:
                pos[0, i] = px
                pos[1, i] = py
                pos[2, i] = pz
                energy += du
                accepted += 1
        if (sweep + 1) % record_every == 0:
            e_out[rec] = energy
            if record_positions:
                for k in range(dim):
                    for j in range(n):
                        p_out[rec, j, k] = pos[k, j]
            rec += 1
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return energy, accepted


@njit(parallel=True, cache=True, error_model="numpy")
def _run_replicas(
    pos, n, state, gammas, energy, accepted, box, temperature, kick, dim, n_sweeps, record_every, e_out, p_out
):
    """Advance every replica (``prange`` over the first axis of ``pos``, ``(R, 3, n_pad)``)."""
    for r in prange(pos.shape[0]):
        e, a = _chain(
            pos[r],
            n,
            state[r],
            gammas[r],
            box,
            temperature,
            kick,
            dim,
            n_sweeps,
            record_every,
            energy[r],
            e_out[r],
            p_out[r],
        )
        energy[r] = e
        accepted[r] += a


# ---------------------------------------------------------------- NumPy-facing functions


def _to_rows(positions: np.ndarray) -> np.ndarray:
    """``(S, N, dim)`` -> contiguous float64 ``(S, 3, n_pad)`` rows for the kernels.

    Rows x, y, z (a zero third row in 2-D); ``n_pad`` is ``N`` rounded up to a multiple of
    :data:`_PAD`, the extra columns at infinity (their pair terms are exactly zero).
    """
    s, n, dim = positions.shape
    rows = np.full((s, 3, -(-n // _PAD) * _PAD), np.inf)
    rows[:, :, :n] = 0.0
    rows[:, :dim, :n] = np.transpose(positions, (0, 2, 1))
    return rows


def _check_positions(positions) -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim not in (2, 3) or positions.shape[-1] not in (2, 3) or positions.shape[-2] < 2:
        raise UsageError(f"positions must be (N, dim) or (S, N, dim) with N >= 2, dim 2 or 3, got {positions.shape}")
    return positions


def lj_energy(positions, gamma) -> float | np.ndarray:
    """Total energy ``sum_pairs 4 (r^-12 - r^-6) + 4 gamma sum_i h_i`` of configurations.

    Args:
        positions: ``(N, dim)`` configuration or ``(S, N, dim)`` batch.
        gamma: Gravity strength, a number or one per configuration (``(S,)``).

    Returns:
        A float for one configuration, a ``(S,)`` float64 array for a batch.
    """
    positions = _check_positions(positions)
    single = positions.ndim == 2
    batch = positions[None] if single else positions
    gammas = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (len(batch),)).copy()
    out = np.empty(len(batch))
    _total_energies(_to_rows(batch), batch.shape[1], gammas, batch.shape[-1] - 1, out)
    return float(out[0]) if single else out


def move_delta(positions, i: int, new_position, gamma: float) -> float:
    """``dU`` of moving particle ``i`` of ``positions`` (``(N, dim)``) to ``new_position``.

    The same compiled function the chains call for every move.
    """
    positions = _check_positions(positions)
    if positions.ndim != 2:
        raise UsageError(f"move_delta takes one (N, dim) configuration, got shape {positions.shape}")
    n, dim = positions.shape
    if not 0 <= i < n:
        raise UsageError(f"particle index {i} out of range for {n} particles")
    new = np.zeros(3)
    new[:dim] = np.asarray(new_position, dtype=np.float64)
    return float(_move_delta(_to_rows(positions[None])[0], int(i), new[0], new[1], new[2], float(gamma), dim - 1))


def initial_configurations(system: LJSystem, replicas: int, seed: int | np.random.SeedSequence) -> np.ndarray:
    """Non-overlapping starting configurations, one per replica.

    Each replica takes a random subset of ``N`` sites of the lattice of spacing
    ``a = L / m`` (``m`` = :attr:`LJSystem.lattice_side`, sites at ``(k + 1/2) a``) and jitters
    every coordinate by ``uniform(-j, j)`` with ``j = min(a / 10, (a - 0.9) / (2 sqrt(dim)))``,
    so no pair is closer than :data:`MIN_SPACING`.

    Returns:
        ``(replicas, N, dim)`` float64 array.
    """
    system.validate()
    if replicas < 1:
        raise UsageError(f"need at least 1 replica, got {replicas}")
    rng = np.random.default_rng(seed)
    m, dim, box = system.lattice_side, system.dim, system.box
    a = box / m
    grid = np.stack(np.meshgrid(*[np.arange(m)] * dim, indexing="ij"), axis=-1).reshape(-1, dim)
    sites = (grid + 0.5) * a
    jitter = max(0.0, min(a / 10, (a - MIN_SPACING) / (2 * math.sqrt(dim))))
    out = np.empty((replicas, system.n_particles, dim))
    for r in range(replicas):
        chosen = rng.choice(len(sites), size=system.n_particles, replace=False)
        out[r] = sites[np.sort(chosen)] + rng.uniform(-jitter, jitter, size=(system.n_particles, dim))
    return np.clip(out, 0.0, box)


def replica_states(seed: int, key: tuple[int, ...], replicas: int) -> np.ndarray:
    """``(replicas, 4)`` uint64 xoshiro256** states, replica ``r`` from ``SeedSequence(seed, spawn_key=(*key, r))``."""
    states = np.empty((replicas, 4), dtype=np.uint64)
    for r in range(replicas):
        states[r] = np.random.SeedSequence(int(seed), spawn_key=(*key, r)).generate_state(4, np.uint64)
        if not states[r].any():  # the one state xoshiro cannot leave
            states[r, 0] = 1
    return states


@dataclass(frozen=True)
class ChainRecord:
    """What :meth:`Chains.run` recorded: ``energy`` ``(R, n)`` and optionally ``positions`` ``(R, n, N, dim)``."""

    energy: np.ndarray
    positions: np.ndarray | None


class Chains:
    """Replicas of the Metropolis chain of one system, advanced together by the compiled kernel.

    Args:
        system: The system (validated here).
        positions: ``(R, N, dim)`` starting configurations.
        gammas: Gravity strength, one number for all replicas or one per replica.
        kick: Largest displacement of a coordinate in one move, in ``(0, L/2)``.
        seed: Root seed of the replicas' generators.
        key: Extra spawn-key entries (e.g. the gamma index), so different runs get independent streams.
    """

    def __init__(self, system: LJSystem, positions, gammas, kick: float, seed: int, key: tuple[int, ...] = ()):
        self.system = system.validate()
        self.kick = check_kick(kick, system.box)
        positions = _check_positions(positions)
        if positions.ndim != 3 or positions.shape[1:] != (system.n_particles, system.dim):
            raise UsageError(f"positions must be (R, {system.n_particles}, {system.dim}), got {positions.shape}")
        if np.any(positions < 0) or np.any(positions > system.box):
            raise UsageError(f"starting positions must lie in [0, {system.box:g}]")
        replicas = len(positions)
        self.gammas = np.broadcast_to(np.asarray(gammas, dtype=np.float64), (replicas,)).copy()
        if not np.all(np.isfinite(self.gammas)):
            raise UsageError("gamma must be finite")
        self._rows = _to_rows(positions)
        self._state = replica_states(seed, tuple(key), replicas)
        self.energy = lj_energy(positions, self.gammas)
        self.accepted = np.zeros(replicas, dtype=np.int64)
        self.sweeps = 0
        self.kernel_seconds = 0.0

    @property
    def replicas(self) -> int:
        return len(self._rows)

    @property
    def positions(self) -> np.ndarray:
        """Current ``(R, N, dim)`` configurations (a copy)."""
        s = self.system
        return np.ascontiguousarray(np.transpose(self._rows[:, : s.dim, : s.n_particles], (0, 2, 1)))

    @property
    def moves_per_replica(self) -> int:
        """Moves attempted so far by each replica."""
        return self.sweeps * self.system.n_particles

    @property
    def acceptance(self) -> np.ndarray:
        """Fraction of accepted moves of each replica so far."""
        return self.accepted / max(self.moves_per_replica, 1)

    #: The arrays of :meth:`state`.
    STATE = ("positions", "rng", "energy", "accepted", "sweeps", "kernel_seconds")

    def state(self) -> dict[str, np.ndarray]:
        """Everything the chains' future depends on, as arrays (copies), for :meth:`restore`.

        ``positions`` ``(R, N, dim)``, ``rng`` the ``(R, 4)`` xoshiro256** states, ``energy`` the
        running energies, ``accepted`` the accepted moves, ``sweeps`` and ``kernel_seconds``.
        """
        return {
            "positions": self.positions,
            "rng": self._state.copy(),
            "energy": self.energy.copy(),
            "accepted": self.accepted.copy(),
            "sweeps": np.int64(self.sweeps),
            "kernel_seconds": np.float64(self.kernel_seconds),
        }

    def restore(self, state: Mapping[str, np.ndarray]) -> Chains:
        """Continue from :meth:`state` of chains of the same system, gammas and kick: every later
        move draws the numbers these chains would have drawn, so the run is bit-identical to one
        never interrupted. Returns ``self``.

        Raises:
            DataError: when an array is missing or its shape, type or values do not fit these chains.
        """
        r, s = self.replicas, self.system
        shapes = {
            "positions": (r, s.n_particles, s.dim),
            "rng": (r, 4),
            "energy": (r,),
            "accepted": (r,),
            "sweeps": (),
            "kernel_seconds": (),
        }
        kinds = {"rng": np.uint64, "accepted": np.integer, "sweeps": np.integer}
        for name, shape in shapes.items():
            value = np.asarray(state.get(name))
            if value.shape != shape or not np.issubdtype(value.dtype, kinds.get(name, np.floating)):
                raise DataError(
                    f"chain state {name}: expected {shape} values of {r} replicas of "
                    f"{s.n_particles} particles in {s.dim}-D"
                )
        positions = np.asarray(state["positions"], dtype=np.float64)
        if not np.all((positions >= 0) & (positions <= s.box)) or not np.all(np.isfinite(state["energy"])):
            raise DataError(f"chain state: positions outside the box [0, {s.box:g}] or non-finite energies")
        self._rows = _to_rows(positions)
        self._state = np.array(state["rng"], dtype=np.uint64)
        self.energy = np.array(state["energy"], dtype=np.float64)
        self.accepted = np.array(state["accepted"], dtype=np.int64)
        self.sweeps = int(state["sweeps"])
        self.kernel_seconds = float(state["kernel_seconds"])
        return self

    def run(self, sweeps: int, record_every: int = 1, record_positions: bool = False) -> ChainRecord:
        """Advance every replica by ``sweeps`` sweeps, recording every ``record_every`` sweeps.

        Returns:
            The running energies ``(R, sweeps // record_every)`` (from the ``dU`` of the
            accepted moves) and, when ``record_positions``, the positions ``(R, n, N, dim)``.
        """
        if sweeps < 1 or record_every < 1 or sweeps % record_every:
            raise UsageError(f"sweeps ({sweeps}) must be a positive multiple of record_every ({record_every})")
        n_rec = sweeps // record_every
        s = self.system
        e_out = np.empty((self.replicas, n_rec))
        p_out = np.empty((self.replicas, n_rec if record_positions else 0, s.n_particles, s.dim))
        start = time.perf_counter()
        _run_replicas(
            self._rows,
            s.n_particles,
            self._state,
            self.gammas,
            self.energy,
            self.accepted,
            float(s.box),
            float(s.temperature),
            self.kick,
            int(s.dim),
            int(sweeps),
            int(record_every),
            e_out,
            p_out,
        )
        self.kernel_seconds += time.perf_counter() - start
        self.sweeps += sweeps
        return ChainRecord(e_out, p_out if record_positions else None)
