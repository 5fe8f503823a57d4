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
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit, prange

from keras_clust.errors import DataError, UsageError

log = logging.getLogger(__name__)

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
def _run_replicas(pos, n, state, gammas, energy, accepted, box, temperature, kick, dim, n_sweeps, record_every,
                  e_out, p_out):  # fmt: skip
    """Advance every replica (``prange`` over the first axis of ``pos``, ``(R, 3, n_pad)``)."""
    for r in prange(pos.shape[0]):
        e, a = _chain(pos[r], n, state[r], gammas[r], box, temperature, kick, dim, n_sweeps, record_every, energy[r],
                      e_out[r], p_out[r])  # fmt: skip
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
        _run_replicas(self._rows, s.n_particles, self._state, self.gammas, self.energy, self.accepted,
                      float(s.box), float(s.temperature), self.kick, int(s.dim), int(sweeps), int(record_every),
                      e_out, p_out)  # fmt: skip
        self.kernel_seconds += time.perf_counter() - start
        self.sweeps += sweeps
        return ChainRecord(e_out, p_out if record_positions else None)



# ---------------------------------------------------------------- the simulation driver

#: Moves (all replicas) per kernel call of the sampling run: the progress bar's granularity.
_MOVES_PER_CALL = 20_000_000

#: Times :func:`simulate` doubles a preliminary run too short to measure the decorrelation lag.
MAX_DOUBLINGS = 3

#: A threshold crossing counts only at a lag of at most this fraction of the window after ``t0``.
#: Each series' own window mean is subtracted, which biases the autocorrelation by about
#: ``-g / W`` (``g`` ~ 0.9 lag for an exponential decay crossing 0.1), so a crossing at a lag
#: near the window is an artefact: for gamma = 1 (N=30, L=5, kick 0.2) windows of 2000, 8000,
#: 32000 and 200000 sweeps put the crossing at 460, 1600, 3860 and 5520 sweeps. At 1/20 the
#: bias at the crossing is below 0.05.
RELIABLE_LAG_FRACTION = 0.05


@dataclass
class GammaDiagnostics:
    """How the chains of one gamma behaved: equilibration, decorrelation, acceptance, speed.

    Attributes:
        gamma: Gravity strength.
        energy_traces: ``(R, T + 1)`` energy of each replica after 0..T sweeps of the preliminary run.
        equilibration_sweep: ``t0``, the sweep where the mean energy trace reaches its plateau.
        energy_acf: Autocorrelation of the energy after ``t0`` (lags 0..max_lag, pooled over replicas).
        position_acf: Autocorrelation of the particle coordinates after ``t0`` (pooled).
        lag: Sweeps between saved configurations.
        crossing: First lag where both autocorrelations are below the threshold (None if none is).
        decorrelated: Whether ``crossing`` was found at a lag short enough, compared with the
            run after ``t0``, to be trusted (:data:`RELIABLE_LAG_FRACTION`); then ``lag`` is the
            crossing, otherwise the largest lag measured.
        acceptance: ``(R,)`` accepted fraction of each replica's moves (preliminary and sampling runs).
        moves: Moves attempted, all replicas, both runs.
        seconds: Wall time spent on this gamma.
        kernel_seconds: Time inside the compiled kernel.
        energy_drift: Largest ``|running - exact|`` energy over the saved configurations.
    """

    gamma: float
    energy_traces: np.ndarray
    equilibration_sweep: int
    energy_acf: np.ndarray
    position_acf: np.ndarray
    lag: int
    crossing: int | None
    decorrelated: bool
    acceptance: np.ndarray
    moves: int
    seconds: float
    kernel_seconds: float
    energy_drift: float

    ARRAYS = ("energy_traces", "energy_acf", "position_acf", "acceptance")

    @property
    def energy_trace(self) -> np.ndarray:
        """Mean over replicas of :attr:`energy_traces`, ``(T + 1,)``."""
        return self.energy_traces.mean(axis=0)

    @property
    def preliminary_sweeps(self) -> int:
        """Length of the preliminary run, doublings included."""
        return self.energy_traces.shape[1] - 1

    @property
    def moves_per_second(self) -> float:
        return self.moves / self.kernel_seconds if self.kernel_seconds > 0 else float("nan")

    def scalars(self) -> dict:
        """The non-array fields (and the derived speed), JSON-ready."""
        return {"gamma": float(self.gamma), "equilibration_sweep": int(self.equilibration_sweep),
                "lag": int(self.lag), "crossing": None if self.crossing is None else int(self.crossing),
                "decorrelated": bool(self.decorrelated), "moves": int(self.moves),
                "seconds": float(self.seconds), "kernel_seconds": float(self.kernel_seconds),
                "energy_drift": float(self.energy_drift), "preliminary_sweeps": self.preliminary_sweeps,
                "moves_per_second": float(self.moves_per_second)}  # fmt: skip


@dataclass
class Simulation:
    """Saved configurations of every gamma, with the settings and the per-gamma diagnostics.

    Attributes:
        positions: ``(S, N, dim)`` float32 configurations, gamma by gamma.
        gamma: ``(S,)`` float32 gravity strength of each configuration.
        energy: ``(S,)`` float64 exact total energy of each configuration (computed in float64
            before the positions were stored as float32).
        replica: ``(S,)`` replica (chain) each configuration comes from.
        settings: The arguments of :func:`simulate` and the package version.
        diagnostics: One :class:`GammaDiagnostics` per gamma, in the order of ``settings["gammas"]``.
    """

    positions: np.ndarray
    gamma: np.ndarray
    energy: np.ndarray
    replica: np.ndarray
    settings: dict
    diagnostics: list[GammaDiagnostics]

    @property
    def system(self) -> LJSystem:
        s = self.settings
        return LJSystem(int(s["n_particles"]), float(s["box"]), int(s["dim"]), float(s["temperature"]))

    def positions_by_gamma(self) -> dict[float, np.ndarray]:
        """``{gamma: (S_gamma, N, dim) positions}`` in the order of the settings' gammas."""
        return {float(d.gamma): self.positions[self.gamma == np.float32(d.gamma)] for d in self.diagnostics}


def _measure_lag(energy: np.ndarray, positions: np.ndarray, threshold: float, max_lag: int | None):
    """Equilibration sweep, autocorrelations after it and the decorrelation lag (None if not reached)."""
    from keras_clust.data.lj_stats import autocorrelation, decorrelation_lag, detect_equilibration

    t0 = detect_equilibration(energy.mean(axis=0))
    length = energy.shape[1] - t0
    lags = max(1, length // 2) if max_lag is None else max(1, min(int(max_lag), length - 1))
    acf_e = autocorrelation(energy[:, t0:], lags)
    # label-free: the k-th smallest coordinate along each axis, so that two particles trading places
    # (which leaves the configuration as a set unchanged) does not count as a change
    ordered = np.sort(positions[:, t0:], axis=2)
    acf_p = autocorrelation(np.moveaxis(ordered, 1, -1), lags)  # (R, N, dim, T - t0)
    return t0, acf_e, acf_p, decorrelation_lag(np.maximum(acf_e, acf_p), threshold)


def _simulate_gamma(system: LJSystem, start: np.ndarray, gamma: float, index: int, samples: int, *, kick: float,
                    seed: int, threshold: float, preliminary_sweeps: int, max_lag: int | None,
                    progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, GammaDiagnostics]:  # fmt: skip
    """Preliminary run, equilibration and lag, then the sampling run of one gamma."""
    from tqdm.auto import tqdm

    began = time.perf_counter()
    chains = Chains(system, start, gamma, kick, seed, key=(index,))
    energy = [chains.energy[:, None].copy()]
    positions = [chains.positions[:, None].astype(np.float32)]
    sweeps = preliminary_sweeps
    for doubling in range(MAX_DOUBLINGS + 1):
        rec = chains.run(sweeps, 1, record_positions=True)
        energy.append(rec.energy)
        positions.append(rec.positions.astype(np.float32))
        t0, acf_e, acf_p, crossing = _measure_lag(np.concatenate(energy, 1), np.concatenate(positions, 1),
                                                  threshold, max_lag)  # fmt: skip
        decorrelated = crossing is not None and crossing <= RELIABLE_LAG_FRACTION * (chains.sweeps - t0)
        if decorrelated or doubling == MAX_DOUBLINGS:
            break
        log.info("gamma %g: after %d sweeps the autocorrelations cross %g at lag %s, more than %g of the %d "
                 "sweeps after equilibration; doubling the preliminary run", gamma, chains.sweeps, threshold,
                 crossing, RELIABLE_LAG_FRACTION, chains.sweeps - t0)  # fmt: skip
        sweeps = chains.sweeps
    lag = crossing if decorrelated else len(acf_e) - 1
    if not decorrelated:
        log.warning("gamma %g: no reliable decorrelation lag after %d preliminary sweeps (threshold %g crossed at "
                    "lag %s, needs <= %g of the %d sweeps after equilibration); saving configurations %d sweeps "
                    "apart, which may still be correlated (raise --preliminary-sweeps)", gamma, chains.sweeps,
                    threshold, crossing, RELIABLE_LAG_FRACTION, chains.sweeps - t0, lag)  # fmt: skip
    traces = np.concatenate(energy, 1)
    del positions

    per_replica = -(-samples // chains.replicas)
    saved = np.empty((chains.replicas, per_replica, system.n_particles, system.dim))
    running = np.empty((chains.replicas, per_replica))
    chunk = max(1, min(per_replica, _MOVES_PER_CALL // (chains.replicas * lag * system.n_particles)))
    with tqdm(total=per_replica * chains.replicas, desc=f"gamma {gamma:g}", unit="conf", disable=not progress) as bar:
        done = 0
        while done < per_replica:
            n = min(chunk, per_replica - done)
            rec = chains.run(n * lag, lag, record_positions=True)
            saved[:, done : done + n], running[:, done : done + n] = rec.positions, rec.energy
            done += n
            bar.update(n * chains.replicas)
    order = slice(0, samples)  # save index first, then replica: trimming drops the last saves
    saved = np.swapaxes(saved, 0, 1).reshape(-1, system.n_particles, system.dim)[order]
    running = running.T.reshape(-1)[order]
    replica = np.tile(np.arange(chains.replicas), per_replica)[order]
    exact = lj_energy(saved, gamma)
    diag = GammaDiagnostics(
        gamma=float(gamma), energy_traces=traces, equilibration_sweep=t0, energy_acf=acf_e, position_acf=acf_p,
        lag=int(lag), crossing=crossing, decorrelated=decorrelated, acceptance=chains.acceptance,
        moves=chains.moves_per_replica * chains.replicas, seconds=time.perf_counter() - began,
        kernel_seconds=chains.kernel_seconds, energy_drift=float(np.max(np.abs(exact - running))),
    )  # fmt: skip
    return saved.astype(np.float32), exact, replica, diag


def simulate(system: LJSystem, gammas, samples_per_gamma: int, *, replicas: int = 16, kick: float = 0.2,
             seed: int = 0, threshold: float = 0.1, preliminary_sweeps: int = 2000, max_lag: int | None = None,
             progress: bool = True) -> Simulation:  # fmt: skip
    """Sample equilibrium configurations of ``system`` at each gravity strength.

    Per gamma: ``replicas`` chains start from :func:`initial_configurations` (the same for
    every gamma) and run ``preliminary_sweeps`` sweeps, recording energy and positions every
    sweep. The equilibration sweep ``t0`` is where the mean energy trace reaches its plateau
    (:func:`~keras_clust.data.lj_stats.detect_equilibration`); after ``t0`` the autocorrelations
    of the energy and of the particle coordinates are measured, and the lag is the first where
    both are below ``threshold``. If none is, or it is too long to trust against the run after
    ``t0`` (:data:`RELIABLE_LAG_FRACTION`), the preliminary run is doubled (up to
    :data:`MAX_DOUBLINGS` times), then the largest lag measured is used and the gamma is marked
    not decorrelated (with a warning). The chains then go on, each saving ``ceil(samples_per_gamma / replicas)``
    configurations ``lag`` sweeps apart, trimmed to ``samples_per_gamma``.

    Replica ``r`` of gamma number ``g`` draws from ``SeedSequence(seed, spawn_key=(g, r))``, so
    the result depends on the seed only, not on the number of threads.

    Memory: the preliminary run keeps every sweep's positions as float32, ``replicas * N * dim
    * 4`` bytes per sweep (92 MB for 16 replicas of 30 particles after 16000 sweeps).

    Args:
        system: The system (validated).
        gammas: Gravity strengths.
        samples_per_gamma: Configurations saved per gamma.
        replicas: Independent chains per gamma (a multiple of the core count uses every core).
        kick: Largest displacement of a coordinate per move, in ``(0, L/2)``.
        seed: Root seed (an integer >= 0).
        threshold: Autocorrelation level that counts as decorrelated, in ``(0, 1)``.
        preliminary_sweeps: Sweeps of the preliminary run (at least 20).
        max_lag: Largest lag of the autocorrelations; default half the run after ``t0``.
        progress: Show a progress bar (stderr) over the sampling.

    Returns:
        The :class:`Simulation`.
    """
    import keras_clust

    system.validate()
    check_kick(kick, system.box)
    gammas = [float(g) for g in np.atleast_1d(np.asarray(gammas, dtype=np.float64))]
    if not gammas or not all(math.isfinite(g) for g in gammas):
        raise UsageError(f"need at least one finite gamma, got {gammas}")
    if len(set(np.float32(gammas))) != len(gammas):
        raise UsageError(f"gammas must be distinct (as float32), got {gammas}")
    for name, value, low in (("samples per gamma", samples_per_gamma, 1), ("replicas", replicas, 1),
                             ("preliminary sweeps", preliminary_sweeps, 20), ("seed", seed, 0)):  # fmt: skip
        if int(value) != value or value < low:
            raise UsageError(f"{name} must be an integer >= {low}, got {value}")
    if not 0 < threshold < 1:
        raise UsageError(f"the autocorrelation threshold must be in (0, 1), got {threshold}")
    if max_lag is not None and max_lag < 1:
        raise UsageError(f"max_lag must be >= 1, got {max_lag}")
    start = initial_configurations(system, int(replicas), int(seed))
    Chains(system, start[:1], 0.0, kick, 0).run(1, 1, record_positions=True)  # compile (or load) the kernels first
    parts = [
        _simulate_gamma(system, start, g, k, int(samples_per_gamma), kick=kick, seed=int(seed), threshold=threshold,
                        preliminary_sweeps=int(preliminary_sweeps), max_lag=max_lag, progress=progress)
        for k, g in enumerate(gammas)
    ]  # fmt: skip
    settings = {"n_particles": system.n_particles, "box": system.box, "dim": system.dim,
                "temperature": system.temperature, "gammas": gammas, "samples_per_gamma": int(samples_per_gamma),
                "replicas": int(replicas), "kick": float(kick), "seed": int(seed), "threshold": float(threshold),
                "preliminary_sweeps": int(preliminary_sweeps), "max_lag": max_lag,
                "keras_clust_version": keras_clust.__version__}  # fmt: skip
    return Simulation(
        positions=np.concatenate([p[0] for p in parts]),
        gamma=np.repeat(np.float32(gammas), int(samples_per_gamma)),
        energy=np.concatenate([p[1] for p in parts]),
        replica=np.concatenate([p[2] for p in parts]),
        settings=settings,
        diagnostics=[p[3] for p in parts],
    )


# ---------------------------------------------------------------- dataset files

_REMEDY = "re-create it with 'keras-clust lj-fluid simulate'"
_FIELDS = ("positions", "gamma", "energy", "replica", "settings_json", "diagnostics_json")
_SETTINGS = ("n_particles", "box", "dim", "temperature", "gammas", "samples_per_gamma", "replicas", "kick", "seed",
             "threshold", "preliminary_sweeps")  # fmt: skip


def save_lj_dataset(sim: Simulation, path: str | Path) -> Path:
    """Write ``sim`` as an ``.npz`` atomically (a temporary file in the same folder, then a rename).

    Fields: ``positions``, ``gamma``, ``energy``, ``replica``, ``settings_json``,
    ``diagnostics_json`` (the scalars of every gamma) and ``diag<k>_<name>`` arrays
    (energy traces, autocorrelations, acceptance of gamma number ``k``). On any failure
    nothing is left behind.
    """
    from keras_clust.runs import _jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"positions": sim.positions, "gamma": sim.gamma, "energy": sim.energy, "replica": sim.replica,
              "settings_json": np.array(json.dumps(_jsonable(sim.settings))),
              "diagnostics_json": np.array(json.dumps([d.scalars() for d in sim.diagnostics]))}  # fmt: skip
    for k, d in enumerate(sim.diagnostics):
        arrays.update({f"diag{k}_{name}": getattr(d, name) for name in GammaDiagnostics.ARRAYS})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} does not exist; create it with 'keras-clust lj-fluid simulate'")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("a single array, not an npz archive")
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path} is not a readable .npz dataset ({reason}); {_REMEDY}") from None


def _parse_json(path: Path, raw: dict, name: str):
    try:
        return json.loads(str(raw[name]))
    except (ValueError, TypeError):
        raise DataError(f"{path}: field {name} is not valid JSON; {_REMEDY}") from None


def load_lj_dataset(path: str | Path) -> Simulation:
    """Read and check a dataset written by :func:`save_lj_dataset`.

    Raises:
        DataError: one line naming what is wrong (missing file, not an npz, missing fields,
            shapes that do not match the settings, NaN/inf values, positions outside the box).
    """
    path = Path(path)
    raw = _read_npz(path)
    missing = [k for k in _FIELDS if k not in raw]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)}; {_REMEDY}")
    settings = _parse_json(path, raw, "settings_json")
    scalars = _parse_json(path, raw, "diagnostics_json")
    if not isinstance(settings, dict) or not isinstance(scalars, list):
        raise DataError(f"{path}: settings_json must hold an object and diagnostics_json a list; {_REMEDY}")
    missing = [k for k in _SETTINGS if k not in settings]
    if missing:
        raise DataError(f"{path}: the settings lack {', '.join(missing)}; {_REMEDY}")
    try:
        n, dim, box = int(settings["n_particles"]), int(settings["dim"]), float(settings["box"])
        gammas, per_gamma = [float(g) for g in settings["gammas"]], int(settings["samples_per_gamma"])
    except (TypeError, ValueError):
        raise DataError(f"{path}: the settings hold non-numeric sizes or gammas; {_REMEDY}") from None
    try:
        LJSystem(n, box, dim, float(settings["temperature"])).validate()
    except (UsageError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: its settings describe no valid system ({exc}); {_REMEDY}") from None
    positions, total = raw["positions"], len(gammas) * per_gamma
    if positions.shape != (total, n, dim):
        raise DataError(f"{path}: positions have shape {positions.shape}, the settings say ({total}, {n}, {dim}); "
                        f"{_REMEDY}")  # fmt: skip
    for name in ("gamma", "energy", "replica"):
        if raw[name].shape != (total,):
            raise DataError(f"{path}: {name} has shape {raw[name].shape}, expected ({total},); {_REMEDY}")
    for name in ("positions", "gamma", "energy"):
        if not np.issubdtype(raw[name].dtype, np.number) or not np.all(np.isfinite(raw[name])):
            raise DataError(f"{path}: {name} contain NaN, infinite or non-numeric values; {_REMEDY}")
    if positions.size and (positions.min() < 0 or positions.max() > np.float32(box)):
        raise DataError(f"{path}: positions lie outside the box [0, {box:g}] (range {positions.min():g} to "
                        f"{positions.max():g}); {_REMEDY}")  # fmt: skip
    if len(scalars) != len(gammas):
        raise DataError(f"{path}: diagnostics for {len(scalars)} gammas, the settings list {len(gammas)}; {_REMEDY}")
    missing = [f"diag{k}_{name}" for k in range(len(gammas)) for name in GammaDiagnostics.ARRAYS
               if f"diag{k}_{name}" not in raw]  # fmt: skip
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)}; {_REMEDY}")
    keep = ("gamma", "equilibration_sweep", "lag", "crossing", "decorrelated", "moves", "seconds", "kernel_seconds",
            "energy_drift")  # fmt: skip
    try:
        diagnostics = [GammaDiagnostics(**{key: s[key] for key in keep},
                                        **{name: raw[f"diag{k}_{name}"] for name in GammaDiagnostics.ARRAYS})
                       for k, s in enumerate(scalars)]  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: diagnostics_json lacks {exc}; {_REMEDY}") from None
    return Simulation(positions.astype(np.float32), raw["gamma"].astype(np.float32),
                      raw["energy"].astype(np.float64), raw["replica"].astype(np.int64), settings, diagnostics)
