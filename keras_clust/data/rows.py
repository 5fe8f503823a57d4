"""A user's rows to cluster: ``.npy`` (memory-mapped), ``.npz`` or IDX (``.gz`` or raw) files.

Rows may have any shape (``(N, 784)``, ``(N, 28, 28)``, ...). Files are never unpickled;
every problem is a one-line :class:`~keras_clust.errors.DataError` naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from keras_clust.data.idx import read_idx
from keras_clust.errors import DataError

#: Keys tried, in order, for the rows (and the labels) of an ``.npz`` holding several arrays.
NPZ_KEYS = ("x", "data", "images", "fields")
LABEL_KEYS = ("y", "labels")
_FORMATS = ".npy, .npz or IDX (.gz)"


def _is_idx(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".gz", ".idx")) or "-idx" in name or "ubyte" in name


def _load_npz(path: Path, keys: tuple[str, ...], what: str) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz archive (not a zip file); the file is corrupt or of another format")
    with np.load(path, allow_pickle=False) as z:
        files = list(z.files)
        key = next((k for k in keys if k in files), files[0] if len(files) == 1 else None)
        if key is None:
            raise DataError(f"{path} holds the arrays {', '.join(files) or 'none'}; name the {what} array "
                            f"'{keys[0]}' or keep one array in the file")  # fmt: skip
        return z[key]


def read_array(path: str | Path, what: str = "data", keys: tuple[str, ...] = NPZ_KEYS,
               mmap: bool = True) -> np.ndarray:  # fmt: skip
    """Read one numeric array from ``path`` (``.npy`` memory-mapped when ``mmap``; in an ``.npz``
    the first of ``keys`` present, or its only array).

    Raises:
        DataError: missing file, unknown format, pickled objects, corrupt file, non-numeric dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; give the {what} as {_FORMATS}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif suffix == ".npz":
            arr = _load_npz(path, keys, what)
        elif _is_idx(path):
            arr = read_idx(path)
        else:
            raise DataError(f"{path} has the suffix {suffix or '(none)'}; give the {what} as {_FORMATS}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        text = (str(exc).splitlines() or [""])[0]
        pickled = "pickle" in text.lower() or "python objects" in text.lower()
        reason = ("it holds pickled Python objects, which are never loaded; save plain numeric arrays" if pickled
                  else f"{text or type(exc).__name__}; the file is corrupt or truncated")
        raise DataError(f"{path} cannot be read: {reason}") from None  # fmt: skip
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "c":
        raise DataError(f"{path}: the {what} have dtype {arr.dtype}; save real numbers (float or integer)")
    return arr


def load_rows(path: str | Path) -> np.ndarray:
    """The rows to cluster: at least 2 rows of at least one value each (``.npy`` stays on disk).

    Raises:
        DataError: as :func:`read_array`, or fewer than 2 rows or a 1-D array.
    """
    x = read_array(path, "data")
    if x.ndim < 2 or x.shape[0] < 2 or x[0].size == 0:
        raise DataError(f"{path}: data of shape {x.shape}; give at least 2 rows, shape (N, features...)")
    return x


def load_labels(path: str | Path, n: int) -> np.ndarray:
    """Integer labels, one per row.

    Raises:
        DataError: wrong shape or non-integer values.
    """
    y = np.asarray(read_array(path, "labels", LABEL_KEYS, mmap=False))
    if y.shape != (n,):
        raise DataError(f"{path}: labels of shape {y.shape} for {n} rows; give one integer label per row, ({n},)")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise DataError(f"{path}: labels must be whole numbers; save them with labels.astype(int)")
    return y.astype(np.int64)
