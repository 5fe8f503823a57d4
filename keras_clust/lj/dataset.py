"""Lennard-Jones dataset files: a :class:`~keras_clust.lj.sampling.Simulation` as an ``.npz``.

:func:`save_lj_dataset` writes the configurations, the settings and every gamma's diagnostics
atomically; :func:`load_lj_dataset` reads them back and checks them (fields, shapes against the
settings, finite values, positions inside the box), failing with a one-line
:class:`~keras_clust.errors.DataError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_clust.data.rows import READ_ERRORS, read_npz
from keras_clust.errors import DataError, UsageError
from keras_clust.lj.monte_carlo import LJSystem
from keras_clust.lj.results import GammaDiagnostics, Simulation

_REMEDY = "re-create it with 'keras-clust lj-fluid simulate'"
_FIELDS = ("positions", "gamma", "energy", "replica", "settings_json", "diagnostics_json")
_SETTINGS = (
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
)
#: The scalars of every gamma's diagnostics and their types; ``crossing`` may also be None.
_SCALARS = {
    "gamma": float,
    "equilibration_sweep": int,
    "lag": int,
    "crossing": int,
    "decorrelated": bool,
    "moves": int,
    "seconds": float,
    "kernel_seconds": float,
    "energy_drift": float,
}
#: The arrays of a dataset and the dtypes a :class:`Simulation` holds them in.
_STORED = {"positions": np.float32, "gamma": np.float32, "energy": np.float64, "replica": np.int64}
#: Axes of every gamma's diagnostic arrays: energy traces are (replicas, sweeps), the others 1-D.
_ARRAY_AXES = {"energy_traces": 2, "energy_acf": 1, "position_acf": 1, "acceptance": 1}


def save_lj_dataset(sim: Simulation, path: str | Path) -> Path:
    """Write ``sim`` as an ``.npz`` atomically (a temporary file in the same folder, then a rename).

    Fields: ``positions``, ``gamma``, ``energy``, ``replica``, ``settings_json``,
    ``diagnostics_json`` (the scalars of every gamma) and ``diag<k>_<name>`` arrays
    (energy traces, autocorrelations, acceptance of gamma number ``k``). On any failure
    nothing is left behind.
    """
    from keras_clust.files import atomic_save_npz, to_jsonable

    path = Path(path)
    arrays = {
        "positions": sim.positions,
        "gamma": sim.gamma,
        "energy": sim.energy,
        "replica": sim.replica,
        "settings_json": np.array(json.dumps(to_jsonable(sim.settings))),
        "diagnostics_json": np.array(json.dumps([d.scalars() for d in sim.diagnostics])),
    }
    for k, d in enumerate(sim.diagnostics):
        arrays.update({f"diag{k}_{name}": getattr(d, name) for name in GammaDiagnostics.ARRAYS})
    return atomic_save_npz(path, arrays)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} does not exist; create it with 'keras-clust lj-fluid simulate'")
    try:
        return read_npz(path)
    except READ_ERRORS as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path} is not a readable .npz dataset ({reason}); {_REMEDY}") from None


def _parse_json(path: Path, raw: dict, name: str):
    try:
        return json.loads(str(raw[name]))
    except (ValueError, TypeError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise DataError(f"{path}: field {name} is not valid JSON; {_REMEDY}") from None


def _diagnostics(path: Path, raw: dict, scalars: list) -> list[GammaDiagnostics]:
    for k in range(len(scalars)):
        for name, axes in _ARRAY_AXES.items():
            a = raw[f"diag{k}_{name}"]
            if a.ndim != axes or a.dtype.kind not in "iuf":
                raise DataError(
                    f"{path}: diag{k}_{name} holds {a.dtype} of shape {a.shape}, expected {axes}-D real "
                    f"numbers; {_REMEDY}"
                )
    try:
        diagnostics = [
            GammaDiagnostics(
                **{
                    key: None if key == "crossing" and s[key] is None else kind(s[key])
                    for key, kind in _SCALARS.items()
                },
                **{name: raw[f"diag{k}_{name}"] for name in _ARRAY_AXES},
            )
            for k, s in enumerate(scalars)
        ]
        for d in diagnostics:
            d.scalars()  # as a report writes them: a count of 10**400 moves is no float
        return diagnostics
    except KeyError as exc:
        raise DataError(f"{path}: diagnostics_json lacks {exc}; {_REMEDY}") from None
    except (TypeError, ValueError, OverflowError):
        raise DataError(
            f"{path}: diagnostics_json holds a value that is not a number where one is needed; {_REMEDY}"
        ) from None


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
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: the settings hold non-numeric sizes or gammas; {_REMEDY}") from None
    positions, total = raw["positions"], len(gammas) * per_gamma
    if positions.shape != (total, n, dim):  # first: the system's check takes forever on 10**300 particles
        raise DataError(
            f"{path}: positions have shape {positions.shape}, the settings say ({total}, {n}, {dim}); {_REMEDY}"
        )
    try:
        LJSystem(n, box, dim, float(settings["temperature"])).validate()
    except (UsageError, TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{path}: its settings describe no valid system ({exc}); {_REMEDY}") from None
    for name in ("gamma", "energy", "replica"):
        if raw[name].shape != (total,):
            raise DataError(f"{path}: {name} has shape {raw[name].shape}, expected ({total},); {_REMEDY}")
    stored = {}
    for name, dtype in _STORED.items():
        if raw[name].dtype.kind not in ("iu" if name == "replica" else "iuf"):
            raise DataError(f"{path}: {name} contain non-numeric values ({raw[name].dtype}); {_REMEDY}")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            stored[name] = raw[name].astype(dtype)
        if not np.all(np.isfinite(stored[name])):
            raise DataError(f"{path}: {name} contain NaN, infinite or out-of-range values; {_REMEDY}")
    positions = stored["positions"]
    if positions.size and (positions.min() < 0 or positions.max() > np.float32(box)):
        raise DataError(
            f"{path}: positions lie outside the box [0, {box:g}] (range {positions.min():g} to "
            f"{positions.max():g}); {_REMEDY}"
        )
    if len(scalars) != len(gammas):
        raise DataError(f"{path}: diagnostics for {len(scalars)} gammas, the settings list {len(gammas)}; {_REMEDY}")
    missing = [
        f"diag{k}_{name}"
        for k in range(len(gammas))
        for name in GammaDiagnostics.ARRAYS
        if f"diag{k}_{name}" not in raw
    ]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)}; {_REMEDY}")
    diagnostics = _diagnostics(path, raw, scalars)
    return Simulation(positions, stored["gamma"], stored["energy"], stored["replica"], settings, diagnostics)
