"""Sampling driver of the Lennard-Jones Monte Carlo: from a system and gravity strengths to a dataset.

For every gamma, :func:`simulate` runs the replicas of :class:`~keras_clust.lj.monte_carlo.Chains`
through a preliminary run, finds the equilibration sweep and the decorrelation lag from the
energy and position autocorrelations (doubling the run when the lag cannot be trusted), then
saves configurations that many sweeps apart; the result is a :class:`~keras_clust.lj.results.Simulation` with one
:class:`~keras_clust.lj.results.GammaDiagnostics` per gamma. With a checkpoint file
(:mod:`~keras_clust.lj.checkpoint`), a killed simulation continues where it stopped and
ends bitwise as if never interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.lj.checkpoint import Checkpoint, GammaProgress, Part
from keras_clust.lj.monte_carlo import Chains, LJSystem, check_kick, initial_configurations, lj_energy
from keras_clust.lj.results import GammaDiagnostics, Simulation

log = logging.getLogger(__name__)

#: Most moves (all replicas) per kernel call: the granularity of the progress and of the checkpoints.
_MOVES_PER_CALL = 20_000_000

#: Times :func:`simulate` doubles a preliminary run too short to measure the decorrelation lag.
#: Five (up to 32x ``preliminary_sweeps``): with three, gamma = 4 of the default run (lag ~1,550
#: sweeps) stopped at 32,000 sweeps just short of a reliable lag and was saved at the largest lag
#: measured, 15,000 sweeps: 69 of the simulation's 88 s, and flagged not decorrelated. With five,
#: it crosses at 1,575 of 62,700 sweeps and takes 25 s in all (``lj-fluid simulate --gamma 1,2,4,0.5
#: --samples 10688 --seed 0``, 2026-12-06); the recorded positions of that last preliminary run
#: raise the simulation's peak resident memory to 3.1 GB.
MAX_DOUBLINGS = 5

#: A threshold crossing counts only at a lag of at most this fraction of the window after ``t0``.
#: Each series' own window mean is subtracted, which biases the autocorrelation by about
#: ``-g / W`` (``g`` ~ 0.9 lag for an exponential decay crossing 0.1), so a crossing at a lag
#: near the window is an artefact: for gamma = 1 (N=30, L=5, kick 0.2) windows of 2000, 8000,
#: 32000 and 200000 sweeps put the crossing at 460, 1600, 3860 and 5520 sweeps. At 1/20 the
#: bias at the crossing is below 0.05.
RELIABLE_LAG_FRACTION = 0.05


def _measure_lag(energy: np.ndarray, positions: np.ndarray, threshold: float, max_lag: int | None):
    """Equilibration sweep, autocorrelations after it and the decorrelation lag (None if not reached)."""
    from keras_clust.lj.statistics import autocorrelation, decorrelation_lag, detect_equilibration

    t0 = detect_equilibration(energy.mean(axis=0))
    length = energy.shape[1] - t0
    lags = max(1, length // 2) if max_lag is None else max(1, min(int(max_lag), length - 1))
    acf_e = autocorrelation(energy[:, t0:], lags)
    # label-free: the k-th smallest coordinate along each axis, so that two particles trading places
    # (which leaves the configuration as a set unchanged) does not count as a change
    ordered = np.sort(positions[:, t0:], axis=2)
    acf_p = autocorrelation(np.moveaxis(ordered, 1, -1), lags)  # (R, N, dim, T - t0)
    return t0, acf_e, acf_p, decorrelation_lag(np.maximum(acf_e, acf_p), threshold)


class _Quiet:
    """Stands in for a :class:`~keras_clust.progress.Progress` when nothing is shown."""

    def update(self, n: int = 1) -> None:
        pass


def _progress(show: bool, total: int, what: str, initial: int):
    from keras_clust.progress import Progress

    return Progress(total, what, initial=initial) if show else contextlib.nullcontext(_Quiet())


def _simulate_gamma(
    system: LJSystem,
    start: np.ndarray,
    gamma: float,
    index: int,
    samples: int,
    *,
    kick: float,
    seed: int,
    threshold: float,
    preliminary_sweeps: int,
    max_lag: int | None,
    progress: bool,
    checkpoint: Checkpoint | None = None,
    finished: list | None = None,
    resume: GammaProgress | None = None,
) -> Part:
    """Preliminary run (with its doublings), equilibration and lag, then the sampling run of one gamma.

    The chains advance by calls of at most :data:`_MOVES_PER_CALL` moves; after a call, when
    ``checkpoint`` is due, it is written with the ``finished`` gammas and this one's progress.
    ``resume`` (read from a checkpoint) continues from there.
    """

    began = time.perf_counter()
    chains = Chains(system, start, gamma, kick, seed, key=(index,))
    at = GammaProgress.begin(chains) if resume is None else resume
    chains.restore(at.chains)
    earlier = at.seconds

    def save() -> None:
        if checkpoint is not None and checkpoint.due():
            at.chains, at.seconds = chains.state(), earlier + time.perf_counter() - began
            checkpoint.write(finished or [], at)

    step = max(1, _MOVES_PER_CALL // (chains.replicas * system.n_particles))
    while at.phase == "preliminary":
        target = preliminary_sweeps << at.doubling
        what = f"gamma {gamma:g}: preliminary sweeps" + (f", doubling {at.doubling}" if at.doubling else "")
        with _progress(progress, target, what, chains.sweeps) as bar:
            while chains.sweeps < target:
                n = min(step, target - chains.sweeps)
                at.record(chains.run(n, 1, record_positions=True))
                bar.update(n)
                if chains.sweeps < target:
                    save()
        energy, positions = at.traces()
        t0, acf_e, acf_p, crossing = _measure_lag(energy, positions, threshold, max_lag)
        decorrelated = crossing is not None and crossing <= RELIABLE_LAG_FRACTION * (chains.sweeps - t0)
        if decorrelated or at.doubling == MAX_DOUBLINGS:
            lag = crossing if decorrelated else len(acf_e) - 1
            if not decorrelated:
                log.warning(
                    "gamma %g: no reliable decorrelation lag after %d preliminary sweeps (threshold %g "
                    "crossed at lag %s, needs <= %g of the %d sweeps after equilibration); saving "
                    "configurations %d sweeps apart, which may still be correlated (raise "
                    "--preliminary-sweeps)",
                    gamma,
                    chains.sweeps,
                    threshold,
                    crossing,
                    RELIABLE_LAG_FRACTION,
                    chains.sweeps - t0,
                    lag,
                )
            at.start_sampling(
                (t0, acf_e, acf_p, crossing, decorrelated, lag),
                -(-samples // chains.replicas),
                system.n_particles,
                system.dim,
            )
        else:
            log.info(
                "gamma %g: after %d sweeps the autocorrelations cross %g at lag %s, more than %g of the %d "
                "sweeps after equilibration; doubling the preliminary run",
                gamma,
                chains.sweeps,
                threshold,
                crossing,
                RELIABLE_LAG_FRACTION,
                chains.sweeps - t0,
            )
            at.doubling += 1
        save()

    t0, acf_e, acf_p, crossing, decorrelated, lag = at.measured
    traces, saved, running = at.traces()[0], at.saved, at.running
    per_replica = saved.shape[1]
    chunk = max(1, min(per_replica, _MOVES_PER_CALL // (chains.replicas * lag * system.n_particles)))
    with _progress(
        progress, per_replica * chains.replicas, f"gamma {gamma:g}: configurations", at.done * chains.replicas
    ) as bar:
        while at.done < per_replica:
            n = min(chunk, per_replica - at.done)
            rec = chains.run(n * lag, lag, record_positions=True)
            saved[:, at.done : at.done + n], running[:, at.done : at.done + n] = rec.positions, rec.energy
            at.done += n
            bar.update(n * chains.replicas)
            if at.done < per_replica:
                save()
    order = slice(0, samples)  # save index first, then replica: trimming drops the last saves
    saved = np.swapaxes(saved, 0, 1).reshape(-1, system.n_particles, system.dim)[order]
    running = running.T.reshape(-1)[order]
    replica = np.tile(np.arange(chains.replicas), per_replica)[order]
    exact = lj_energy(saved, gamma)
    diag = GammaDiagnostics(
        gamma=float(gamma),
        energy_traces=traces,
        equilibration_sweep=t0,
        energy_acf=acf_e,
        position_acf=acf_p,
        lag=int(lag),
        crossing=crossing,
        decorrelated=decorrelated,
        acceptance=chains.acceptance,
        moves=chains.moves_per_replica * chains.replicas,
        seconds=earlier + time.perf_counter() - began,
        kernel_seconds=chains.kernel_seconds,
        energy_drift=float(np.max(np.abs(exact - running))),
    )
    return saved.astype(np.float32), exact, replica, diag


def simulate(
    system: LJSystem,
    gammas,
    samples_per_gamma: int,
    *,
    replicas: int = 16,
    kick: float = 0.2,
    seed: int = 0,
    threshold: float = 0.1,
    preliminary_sweeps: int = 2000,
    max_lag: int | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
) -> Simulation:
    """Sample equilibrium configurations of ``system`` at each gravity strength.

    Per gamma: ``replicas`` chains start from
    :func:`~keras_clust.lj.monte_carlo.initial_configurations` (the same for every gamma) and run
    ``preliminary_sweeps`` sweeps, recording energy and positions every sweep.
    The equilibration sweep ``t0`` is where the mean energy trace reaches its plateau
    (:func:`~keras_clust.lj.statistics.detect_equilibration`); after ``t0`` the autocorrelations
    of the energy and of the particle coordinates are measured, and the lag is the first where
    both are below ``threshold``. If none is, or it is too long to trust against the run after
    ``t0`` (:data:`RELIABLE_LAG_FRACTION`), the preliminary run is doubled (up to
    :data:`MAX_DOUBLINGS` times), then the largest lag measured is used and the gamma is marked
    not decorrelated (with a warning). The chains then go on, each saving ``ceil(samples_per_gamma / replicas)``
    configurations ``lag`` sweeps apart, trimmed to ``samples_per_gamma``.

    Replica ``r`` of gamma number ``g`` draws from ``SeedSequence(seed, spawn_key=(g, r))``, so
    the result depends on the seed only, not on the number of threads.

    With ``checkpoint``, a killed simulation loses at most ``checkpoint_every`` seconds: the file
    (:class:`~keras_clust.lj.checkpoint.Checkpoint`) is rewritten atomically at the first
    kernel call that ends that long after the last one, and after every gamma. Called again with
    the same file and settings, :func:`simulate` continues from it, and the result is bitwise
    the uninterrupted one (its timings aside). The file stays when :func:`simulate` returns
    (then holding every gamma, so a second call only assembles them): remove it once the result
    is saved.

    Memory: the preliminary run keeps every sweep's positions as float32, ``replicas * N * dim
    * 4`` bytes per sweep (92 MB for 16 replicas of 30 particles after 16000 sweeps); a
    checkpoint during the preliminary run holds them too.

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
        progress: Show the progress (:class:`~keras_clust.progress.Progress`: a bar on a
            terminal, log lines otherwise) of the preliminary sweeps and saved configurations.
        checkpoint: An ``.npz`` file to continue from when it exists, and to checkpoint into.
        checkpoint_every: Seconds between checkpoints (0: after every kernel call).

    Returns:
        The :class:`Simulation`.

    Raises:
        UsageError: a bad setting, or a checkpoint of other settings (naming what differs).
        DataError: a checkpoint that cannot be read.
    """
    import keras_clust

    system.validate()
    check_kick(kick, system.box)
    gammas = [float(g) for g in np.atleast_1d(np.asarray(gammas, dtype=np.float64))]
    if not gammas or not all(math.isfinite(g) for g in gammas):
        raise UsageError(f"need at least one finite gamma, got {gammas}")
    if len(set(np.float32(gammas))) != len(gammas):
        raise UsageError(f"gammas must be distinct (as float32), got {gammas}")
    for name, value, low in (
        ("samples per gamma", samples_per_gamma, 1),
        ("replicas", replicas, 1),
        ("preliminary sweeps", preliminary_sweeps, 20),
        ("seed", seed, 0),
    ):
        if int(value) != value or value < low:
            raise UsageError(f"{name} must be an integer >= {low}, got {value}")
    if not 0 < threshold < 1:
        raise UsageError(f"the autocorrelation threshold must be in (0, 1), got {threshold}")
    if max_lag is not None and max_lag < 1:
        raise UsageError(f"max_lag must be >= 1, got {max_lag}")
    if not checkpoint_every >= 0:
        raise UsageError(f"checkpoint_every must be a number of seconds >= 0, got {checkpoint_every}")
    settings = {
        "n_particles": int(system.n_particles),
        "box": float(system.box),
        "dim": int(system.dim),
        "temperature": float(system.temperature),
        "gammas": gammas,
        "samples_per_gamma": int(samples_per_gamma),
        "replicas": int(replicas),
        "kick": float(kick),
        "seed": int(seed),
        "threshold": float(threshold),
        "preliminary_sweeps": int(preliminary_sweeps),
        "max_lag": None if max_lag is None else int(max_lag),
        "keras_clust_version": keras_clust.__version__,
    }
    saver = None if checkpoint is None else Checkpoint(checkpoint, settings, checkpoint_every)
    back = None if saver is None else saver.read(-(-int(samples_per_gamma) // int(replicas)))
    parts, current = back if back is not None else ([], None)
    if back is not None:
        log.info(
            "continuing the simulation of checkpoint %s: %d of %d gammas finished%s",
            saver.path,
            len(parts),
            len(gammas),
            ""
            if current is None
            else f", gamma {gammas[len(parts)]:g} in its {current.phase} run at sweep {int(current.chains['sweeps'])}",
        )
    start = initial_configurations(system, int(replicas), int(seed))
    if len(parts) < len(gammas):
        Chains(system, start[:1], 0.0, kick, 0).run(1, 1, record_positions=True)  # compile (or load) the kernels
    for k in range(len(parts), len(gammas)):
        parts.append(
            _simulate_gamma(
                system,
                start,
                gammas[k],
                k,
                int(samples_per_gamma),
                kick=kick,
                seed=int(seed),
                threshold=threshold,
                preliminary_sweeps=int(preliminary_sweeps),
                max_lag=max_lag,
                progress=progress,
                checkpoint=saver,
                finished=parts,
                resume=current,
            )
        )
        current = None
        if saver is not None:
            saver.write(parts, None)
    return Simulation(
        positions=np.concatenate([p[0] for p in parts]),
        gamma=np.repeat(np.float32(gammas), int(samples_per_gamma)),
        energy=np.concatenate([p[1] for p in parts]),
        replica=np.concatenate([p[2] for p in parts]),
        settings=settings,
        diagnostics=[p[3] for p in parts],
    )
