"""Vector-field files: our ``.npz`` written atomically, users' ``.npy``/``.npz`` read and checked strictly.

:func:`save_fields` writes a :class:`~keras_clust.fields.generator.FieldSet` with its labels,
names, ground-truth parameters and settings; :func:`load_fields` reads those files back exactly,
and also any ``.npy`` holding one ``(N, H, W, C)`` array or any ``.npz`` with a ``fields`` array
(or exactly one array) and optional ``labels``, ``class_names`` and ``channels``. Files are never
unpickled. Every problem is a one-line :class:`~keras_clust.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from keras_clust.data.registry import DataSource
from keras_clust.data.rows import READ_ERRORS, read_npy, read_npz
from keras_clust.errors import DataError, UsageError
from keras_clust.fields.generator import FieldSet
from keras_clust.fields.pooling import depths

SUFFIXES = (".npy", ".npz")
_NPY_MAGIC = b"\x93NUMPY"
_SIZE_HINT = "H must be a product of at least 2 factors >= 2, such as 80"


def save_fields(fs: FieldSet, path: str | Path) -> Path:
    """Write ``fs`` as an ``.npz`` atomically (a temporary file in the same folder, then a rename).

    Keys: ``fields``, ``labels`` (when labelled), ``class_names``, ``channels``, ``params_<name>``
    for every ground-truth parameter, ``settings`` and ``note`` (strings; settings as JSON).

    Raises:
        UsageError: when ``path`` does not end in ``.npz``.
    """
    from keras_clust.files import atomic_save_npz, to_jsonable

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise UsageError(f"{path}: vector fields are saved as .npz; give a path ending in .npz")
    arrays = {
        "fields": np.asarray(fs.fields, dtype=np.float32),
        "class_names": np.array(fs.class_names, dtype=str),
        "channels": np.array(fs.channels, dtype=str),
        "settings": np.array(json.dumps(to_jsonable(fs.settings))),
        "note": np.array(fs.note),
    }
    if fs.labels is not None:
        arrays["labels"] = np.asarray(fs.labels, dtype=np.int64)
    arrays.update({f"params_{name}": np.asarray(values) for name, values in fs.params.items()})
    return atomic_save_npz(path, arrays)


def _reason(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0].strip()
    if "allow_pickle" in text or "pickle" in text.lower():
        return "it holds pickled Python objects, which are never loaded; save plain numeric arrays"
    return f"{text or type(exc).__name__}; the file is corrupt or truncated, write it again"


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``path`` (one array of an ``.npy`` is called ``fields``), without unpickling."""
    if path.suffix.lower() not in SUFFIXES:
        what = "a folder" if path.is_dir() else f"of type {path.suffix or '(no suffix)'}"
        raise DataError(f"{path} is {what}; give an .npy array (N, H, W, C) or an .npz with a 'fields' array")
    if not path.is_file():
        raise DataError(f"{path} does not exist; give an .npy or .npz file of fields (N, H, W, C)")
    npy = path.suffix.lower() == ".npy"
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"{path} cannot be opened ({exc.strerror or exc}); check its permissions") from None
    if npy and head != _NPY_MAGIC:
        raise DataError(f"{path} is not an .npy array (no NumPy header); the file is corrupt or of another format")
    if not npy and not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz archive (not a zip file); the file is corrupt or of another format")
    try:
        return {"fields": read_npy(path)} if npy else read_npz(path)
    except READ_ERRORS as exc:
        raise DataError(f"{path} cannot be read: {_reason(exc)}") from None


def _check_fields(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim != 4:
        hint = "; for one channel add a channel axis with x[..., None]" if x.ndim == 3 else ""
        raise DataError(f"{path}: fields have shape {x.shape}, expected 4 axes (N, H, W, C){hint}")
    if x.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: fields have dtype {x.dtype}, expected real numbers (float or integer); "
            "convert them with x.astype('float32')"
        )
    bad = ~np.isfinite(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)
    with np.errstate(over="ignore"):
        out = x.astype(np.float32)
    reason = "NaN or infinite"
    if not bad.any() and not np.isfinite(out).all():
        bad, reason = ~np.isfinite(out), "beyond the float32 range"
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: {int(bad.sum())} values are {reason} (first at index {first}); replace or drop those fields"
        )
    n, h, w, c = x.shape
    if n < 2:
        raise DataError(f"{path}: holds {n} field(s); clustering needs at least 2")
    if h != w:
        raise DataError(
            f"{path}: fields are {h}x{w} (H x W); the model pools square fields, crop or resample "
            "them to a square such as 80x80"
        )
    if c < 1:  # before the pooling table, whose search takes time linear in a side no data backs when C = 0
        raise DataError(f"{path}: fields have no channels (C = 0); give at least one channel")

    if not depths(h):
        raise DataError(f"{path}: fields of side {h} cannot be pooled to one cell ({_SIZE_HINT}); resample them")
    return out


def _names(path: Path, raw: dict, key: str, count: int | None) -> tuple[str, ...] | None:
    if key not in raw:
        return None
    a = raw[key]
    if a.dtype.kind not in "US" or a.ndim != 1:
        raise DataError(f"{path}: {key} must be a 1-D array of strings, got {a.dtype} of shape {a.shape}")
    names = tuple(str(s) for s in a.tolist())
    if count is not None and len(names) != count:
        raise DataError(f"{path}: {len(names)} names in {key} for {count} channels; give one name per channel")
    return names


def _check_labels(path: Path, raw: dict, n: int) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if "labels" not in raw:
        if "class_names" in raw and raw["class_names"].size:
            raise DataError(f"{path}: class_names without labels; add a 'labels' array or drop class_names")
        return None, ()
    y = raw["labels"]
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: labels have dtype {y.dtype}, expected integers; save them with labels.astype(int)")
    if y.shape != (n,):
        raise DataError(f"{path}: labels have shape {y.shape} for {n} fields; give one label per field, shape ({n},)")
    y = y.astype(np.int64)
    if n and y.min() < 0:
        raise DataError(f"{path}: labels include {int(y.min())}; classes are numbered 0, 1, 2...")
    names = _names(path, raw, "class_names", None)
    needed = int(y.max()) + 1 if n else 0
    if names is None:
        return y, tuple(str(k) for k in range(needed))
    if len(names) < needed:
        raise DataError(f"{path}: {len(names)} class_names for labels up to {needed - 1}; give {needed} names")
    return y, names


def _parse_settings(path: Path, raw: dict) -> dict:
    try:
        settings = json.loads(str(raw["settings"]))
    except (ValueError, TypeError):
        raise DataError(f"{path}: its settings are not valid JSON; write the file again with save_fields") from None
    if not isinstance(settings, dict):
        raise DataError(f"{path}: its settings are not a JSON object; write the file again with save_fields")
    return settings


def load_fields(path: str | Path) -> FieldSet:
    """Read vector fields from an ``.npy`` or ``.npz`` file and check them.

    Integer fields are converted to float32. Without ``channels`` the channels are named
    ``c0``, ``c1``...; without ``class_names`` classes are named by their number.

    Raises:
        DataError: one line naming the file and the problem (missing, wrong type, corrupt,
            pickled, not (N, H, W, C), not real numbers, NaN/inf, fewer than 2 fields, not
            square, a side with no pooling table, labels of the wrong length or type...).
    """
    path = Path(path)
    raw = _read(path)
    if "fields" not in raw:
        if len(raw) != 1:
            raise DataError(
                f"{path}: holds arrays {', '.join(sorted(raw)) or '(none)'} but none called 'fields'; "
                "save the (N, H, W, C) array under the key 'fields'"
            )
        raw = {"fields": next(iter(raw.values()))}
    x = _check_fields(path, raw["fields"])
    n, h, _, c = x.shape
    channels = _names(path, raw, "channels", c) or tuple(f"c{k}" for k in range(c))
    labels, class_names = _check_labels(path, raw, n)
    params = {key.removeprefix("params_"): value for key, value in raw.items() if key.startswith("params_")}
    wrong = [name for name, value in params.items() if value.shape != (n,)]
    if wrong:
        raise DataError(
            f"{path}: parameter(s) {', '.join(wrong)} do not have one value per field; "
            "write the file again with save_fields"
        )
    settings = _parse_settings(path, raw) if "settings" in raw else {"path": str(path)}
    if "note" in raw:
        note = str(raw["note"])
    else:
        kind = f"labelled, {len(class_names)} classes" if labels is not None else "unlabelled"
        note = f"{n} vector fields of {h}x{h} ({kind}), channels {', '.join(channels)}, read from {path}"
    return FieldSet(x, labels, class_names, channels, params, note, settings)


def fields_source(fs: FieldSet, path: str | Path | None = None) -> DataSource:
    """The :class:`DataSource` record of ``fs``: ``synthetic`` when generated, ``file`` when read from ``path``."""
    if path is None:
        return DataSource("vector_fields", "synthetic", "keras_clust.fields.generator.generate_fields", True, fs.note)
    note = fs.note if str(path) in fs.note else f"{fs.note} (read from {path})"
    return DataSource("vector_fields", "file", str(path), True, note)
