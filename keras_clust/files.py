"""Files: atomic writers (text, ``.npz``), JSON in and out, CSV text of rows, and the conversion
of NumPy values and paths to what JSON and CSV can hold.

Every writer goes through a temporary file in the destination's folder and a rename, so a
reader sees either the old file or the whole new one, never a half-written one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError


def to_jsonable(obj):
    """``obj`` with what :mod:`json` cannot write made plain: mappings with string keys, tuples as
    lists, paths as strings, NumPy scalars and arrays as Python numbers and lists, NaN as None and
    infinities as ``"inf"``/``"-inf"``; anything else is returned as it is."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` through a synced temporary file in the same
    folder and a rename, so ``path`` is either the old file or the whole new one; on any failure
    nothing is left behind. The file is readable by every user (``0o644``), as a data file is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON (NumPy values converted), atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


def append_json_row(path: str | Path, row: Mapping, header: Mapping) -> Path:
    """Append ``row`` to the ``rows`` list of the JSON file ``path`` (a study's results), creating
    it as ``{**header, "rows": []}`` first; written atomically."""
    path = Path(path)
    data = read_json(path) if path.is_file() else {**header, "rows": []}
    data["rows"].append(row)
    return write_json(path, data)


def read_json(path: str | Path):
    """The JSON value in ``path``.

    Raises:
        DataError: naming the file when it is missing or is not JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def rows_to_csv(rows: Sequence[Mapping]) -> str:
    """CSV text of a list of dicts; the columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: to_jsonable(v) for k, v in row.items()})
    return buf.getvalue()
