"""What a Lennard-Jones simulation produces: the saved configurations and, per gamma, how its chains behaved.

:func:`~keras_clust.lj.sampling.simulate` returns a :class:`Simulation`;
:mod:`~keras_clust.lj.checkpoint` and :mod:`~keras_clust.lj.dataset` store and read these records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_clust.lj.monte_carlo import LJSystem


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
    def energy_iat(self) -> float:
        """Integrated autocorrelation time of the energy, in sweeps (:func:`iat_from_acf`)."""
        from keras_clust.lj.statistics import iat_from_acf

        return iat_from_acf(self.energy_acf, self._window)

    @property
    def position_iat(self) -> float:
        """Integrated autocorrelation time of the (label-free, sorted) coordinates, in sweeps."""
        from keras_clust.lj.statistics import iat_from_acf

        return iat_from_acf(self.position_acf, self._window)

    @property
    def _window(self) -> int:
        """Sweeps of the preliminary run after equilibration: the series the autocorrelations are of."""
        return max(2, self.preliminary_sweeps + 1 - self.equilibration_sweep)

    @property
    def moves_per_second(self) -> float:
        return self.moves / self.kernel_seconds if self.kernel_seconds > 0 else float("nan")

    def scalars(self) -> dict:
        """The non-array fields (and the derived speed), JSON-ready."""
        return {
            "gamma": float(self.gamma),
            "equilibration_sweep": int(self.equilibration_sweep),
            "lag": int(self.lag),
            "crossing": None if self.crossing is None else int(self.crossing),
            "decorrelated": bool(self.decorrelated),
            "moves": int(self.moves),
            "seconds": float(self.seconds),
            "kernel_seconds": float(self.kernel_seconds),
            "energy_drift": float(self.energy_drift),
            "preliminary_sweeps": self.preliminary_sweeps,
            "moves_per_second": float(self.moves_per_second),
        }


@dataclass
class Simulation:
    """Saved configurations of every gamma, with the settings and the per-gamma diagnostics.

    Attributes:
        positions: ``(S, N, dim)`` float32 configurations, gamma by gamma.
        gamma: ``(S,)`` float32 gravity strength of each configuration.
        energy: ``(S,)`` float64 exact total energy of each configuration (computed in float64
            before the positions were stored as float32).
        replica: ``(S,)`` replica (chain) each configuration comes from.
        settings: The arguments of :func:`~keras_clust.lj.sampling.simulate` and the package version.
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
