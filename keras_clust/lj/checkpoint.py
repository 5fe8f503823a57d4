"""Checkpoints of :func:`~keras_clust.lj.sampling.simulate`: a killed simulation goes on where it stopped.

One ``.npz`` holds the settings, every finished gamma (configurations, energies, replicas,
diagnostics) and the gamma in progress (:class:`GammaProgress`): the chains' state (positions,
running energies, xoshiro256** generator states, accepted moves, sweeps), the phase -- the
preliminary run with its doublings, or the sampling run -- and what that phase has recorded.
Chains continued from it draw exactly the numbers the killed process would have drawn, so a
resumed simulation is bitwise the uninterrupted one (its timings aside). The file is written
atomically (a temporary file, then a rename) and read without unpickling; one of other
settings is refused in one line naming what differs.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.lj.monte_carlo import ChainRecord, Chains
from keras_clust.lj.results import GammaDiagnostics

#: Version of the layout below; a checkpoint of another is refused.
FORMAT = 1

#: Settings a checkpoint must share with the simulation that continues it (not the package version).
COMPARED = (
    "n_particles",
    "box",
    "dim",
    "temperature",
    "gammas",
    "samples_per_gamma",
    "replicas",
    "kick",
    "seed",
    "threshold",
    "preliminary_sweeps",
    "max_lag",
)

_DIAG_SCALARS = (
    "gamma",
    "equilibration_sweep",
    "lag",
    "crossing",
    "decorrelated",
    "moves",
    "seconds",
    "kernel_seconds",
    "energy_drift",
)

#: One finished gamma: float32 configurations, float64 energies, replicas and its diagnostics.
Part = tuple[np.ndarray, np.ndarray, np.ndarray, GammaDiagnostics]


@dataclass
class GammaProgress:
    """How far the chains of one gamma are: what a checkpoint keeps of the gamma in progress.

    Attributes:
        phase: ``"preliminary"`` (the preliminary run and its doublings) or ``"sampling"``.
        chains: :meth:`~keras_clust.lj.monte_carlo.Chains.state` at the checkpoint.
        seconds: Wall time spent on this gamma up to the checkpoint.
        doubling: Preliminary: the segment being run (0 the first run, ``k`` after ``k`` doublings).
        energy: Energy of each replica after every sweep of the preliminary run, as blocks of
            ``(R, sweeps)`` (see :meth:`traces`); kept for the diagnostics while sampling.
        positions: Preliminary: float32 ``(R, sweeps, N, dim)`` blocks of every sweep's positions.
        measured: Sampling: ``t0``, energy and position autocorrelations, crossing, decorrelated, lag.
        saved: Sampling: ``(R, per_replica, N, dim)`` configurations, the first ``done`` of each replica saved.
        running: Sampling: ``(R, per_replica)`` running energies of the saved configurations.
        done: Sampling: configurations saved per replica.
    """

    phase: str
    chains: dict[str, np.ndarray]
    seconds: float = 0.0
    doubling: int = 0
    energy: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    measured: tuple | None = None
    saved: np.ndarray | None = None
    running: np.ndarray | None = None
    done: int = 0

    @classmethod
    def begin(cls, chains: Chains) -> GammaProgress:
        """Fresh chains at sweep 0 of the preliminary run (their starting energies and positions recorded)."""
        return cls(
            "preliminary",
            chains.state(),
            energy=[chains.energy[:, None].copy()],
            positions=[chains.positions[:, None].astype(np.float32)],
        )

    def record(self, rec: ChainRecord) -> None:
        """Append a preliminary block: the energy and the positions of every sweep of ``rec``."""
        self.energy.append(rec.energy)
        self.positions.append(rec.positions.astype(np.float32))

    def traces(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Energy ``(R, T + 1)`` and, while preliminary, float32 positions ``(R, T + 1, N, dim)`` of every sweep."""
        self.energy = [np.concatenate(self.energy, axis=1)]
        if self.positions:
            self.positions = [np.concatenate(self.positions, axis=1)]
        return self.energy[0], self.positions[0] if self.positions else None

    def start_sampling(self, measured: tuple, per_replica: int, n_particles: int, dim: int) -> None:
        """Leave the preliminary run: keep its energies (diagnostics), drop its positions."""
        self.phase, self.measured, self.positions, self.done = "sampling", tuple(measured), [], 0
        replicas = self.traces()[0].shape[0]
        self.saved = np.empty((replicas, per_replica, n_particles, dim))
        self.running = np.empty((replicas, per_replica))

    def to_arrays(self) -> dict[str, np.ndarray]:
        energy, positions = self.traces()
        arrays = {f"chain_{k}": v for k, v in self.chains.items()}
        arrays.update(
            phase=np.array(self.phase),
            seconds=np.float64(self.seconds),
            doubling=np.int64(self.doubling),
            trace_energy=energy,
        )
        if self.phase == "preliminary":
            arrays["trace_positions"] = positions
        else:
            t0, acf_e, acf_p, crossing, decorrelated, lag = self.measured
            arrays.update(
                t0=np.int64(t0),
                acf_energy=acf_e,
                acf_positions=acf_p,
                crossing=np.int64(-1 if crossing is None else crossing),
                decorrelated=np.bool_(decorrelated),
                lag=np.int64(lag),
                done=np.int64(self.done),
                saved=self.saved[:, : self.done],
                running=self.running[:, : self.done],
            )
        return arrays

    @classmethod
    def from_arrays(cls, raw: dict[str, np.ndarray], per_replica: int) -> GammaProgress:
        """The gamma in progress of a checkpoint's arrays (KeyError, ValueError, TypeError when damaged)."""
        phase = str(raw["phase"])
        at = cls(
            phase,
            {k: raw[f"chain_{k}"] for k in Chains.STATE},
            float(raw["seconds"]),
            int(raw["doubling"]),
            [np.asarray(raw["trace_energy"], dtype=np.float64)],
        )
        if phase == "preliminary":
            at.positions = [np.asarray(raw["trace_positions"], dtype=np.float32)]
            if at.positions[0].shape[:2] != at.energy[0].shape:
                raise ValueError("the preliminary traces of energies and positions differ in length")
            return at
        if phase != "sampling":
            raise ValueError(f"unknown phase {phase!r}")
        crossing = int(raw["crossing"])
        at.measured = (
            int(raw["t0"]),
            raw["acf_energy"],
            raw["acf_positions"],
            None if crossing < 0 else crossing,
            bool(raw["decorrelated"]),
            int(raw["lag"]),
        )
        at.done, saved, running = int(raw["done"]), raw["saved"], raw["running"]
        if not 0 <= at.done <= per_replica or saved.shape[1] != at.done or running.shape != saved.shape[:2]:
            raise ValueError(f"{at.done} saved configurations per replica do not fit {per_replica}")
        at.saved = np.empty((saved.shape[0], per_replica, *saved.shape[2:]))
        at.running = np.empty((saved.shape[0], per_replica))
        at.saved[:, : at.done], at.running[:, : at.done] = saved, running
        return at


def _part_arrays(k: int, part: Part) -> dict[str, np.ndarray]:
    positions, energy, replica, diag = part
    scalars = {key: diag.scalars()[key] for key in _DIAG_SCALARS}
    return {
        f"g{k}_positions": positions,
        f"g{k}_energy": energy,
        f"g{k}_replica": replica,
        f"g{k}_diagnostics_json": np.array(json.dumps(scalars)),
        **{f"g{k}_{name}": getattr(diag, name) for name in GammaDiagnostics.ARRAYS},
    }


def _part(raw: dict[str, np.ndarray], k: int, shape: tuple[int, ...]) -> Part:
    positions = raw[f"g{k}_positions"]
    if positions.shape != shape or positions.dtype != np.float32:
        raise ValueError(f"gamma {k}: configurations of shape {positions.shape}, expected {shape} float32")
    diag = GammaDiagnostics(
        **json.loads(str(raw[f"g{k}_diagnostics_json"])),
        **{name: raw[f"g{k}_{name}"] for name in GammaDiagnostics.ARRAYS},
    )
    return positions, raw[f"g{k}_energy"], raw[f"g{k}_replica"], diag


def _differences(saved: dict, wanted: dict) -> list[str]:
    def same(a, b) -> bool:
        return json.dumps(a) == json.dumps(b)  # both from JSON-ready values: 2.0 == 2.0, [1.0] == [1.0]

    return [
        f"{k} {json.dumps(saved.get(k))} there, {json.dumps(wanted[k])} here"
        for k in COMPARED
        if not same(saved.get(k), wanted[k])
    ]


class Checkpoint:
    """The checkpoint file of one simulation: read back (checked against its settings), written when due.

    Args:
        path: The ``.npz`` file.
        settings: The simulation's settings (JSON-ready); those of :data:`COMPARED` must match
            a file read back.
        every: Seconds between two checkpoints (0: at every chance, i.e. after every kernel call).
    """

    def __init__(self, path: str | Path, settings: dict, every: float = 60.0):
        self.path, self.settings, self.every = Path(path), settings, float(every)
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the last checkpoint (or the start)."""
        return time.monotonic() - self._last >= self.every

    def write(self, finished: list[Part], current: GammaProgress | None) -> None:
        """Write the finished gammas and the one in progress (None between gammas) atomically."""
        from keras_clust.files import atomic_save_npz

        arrays = {
            "format": np.int64(FORMAT),
            "settings_json": np.array(json.dumps(self.settings)),
            "finished": np.int64(len(finished)),
        }
        for k, part in enumerate(finished):
            arrays.update(_part_arrays(k, part))
        if current is not None:
            arrays.update(current.to_arrays())
        atomic_save_npz(self.path, arrays)
        self._last = time.monotonic()

    def read(self, per_replica: int) -> tuple[list[Part], GammaProgress | None] | None:
        """The finished gammas and the gamma in progress (or None) of the file, None when there is no file.

        Raises:
            UsageError: the checkpoint is of a simulation with other settings (naming them).
            DataError: the file is not a readable checkpoint.
        """
        if not self.path.is_file():
            return None
        fresh = "delete it to start afresh"
        try:
            with np.load(self.path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
            version, saved = int(raw["format"]), json.loads(str(raw["settings_json"]))
        except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DataError(f"{self.path} is not a readable checkpoint ({reason}); {fresh}") from None
        if version != FORMAT:
            raise DataError(f"checkpoint {self.path} has format {version}, this version reads {FORMAT}; {fresh}")
        differ = _differences(saved if isinstance(saved, dict) else {}, self.settings)
        if differ:
            raise UsageError(
                f"checkpoint {self.path} is of another simulation ({'; '.join(differ)}); continue "
                f"it with its settings, or {fresh}"
            )
        s = self.settings
        shape = (int(s["samples_per_gamma"]), int(s["n_particles"]), int(s["dim"]))
        try:
            finished = [_part(raw, k, shape) for k in range(int(raw["finished"]))]
            current = GammaProgress.from_arrays(raw, per_replica) if "phase" in raw else None
            if len(finished) + (current is not None) > len(s["gammas"]):
                raise ValueError(f"{len(finished)} finished gammas of {len(s['gammas'])}")
        except (KeyError, ValueError, TypeError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DataError(f"{self.path} is a damaged checkpoint ({reason}); {fresh}") from None
        return finished, current

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
