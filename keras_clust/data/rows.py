"""A user's rows to cluster: ``.npy`` (memory-mapped), ``.npz`` or IDX (``.gz`` or raw) files.

Rows may have any shape (``(N, 784)``, ``(N, 28, 28)``, ...). Files are never unpickled;
every problem is a one-line :class:`~keras_clust.errors.DataError` naming the file.

:func:`read_npy` and :func:`read_npz` are the project's readers of ``.npy`` and ``.npz`` files (the
vector-field, Lennard-Jones and mixture files use them too): numpy allocates the size an array's header
declares before reading a byte of it, so they compare that size with the bytes the file (or the zip
member) can hold first, and a damaged header costs a message, not gigabytes.
"""

from __future__ import annotations

import io
import lzma
import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from keras_clust.data.idx import read_idx
from keras_clust.errors import DataError

#: Keys tried, in order, for the rows (and the labels) of an ``.npz`` holding several arrays.
NPZ_KEYS = ("x", "data", "images", "fields")
LABEL_KEYS = ("y", "labels")
_FORMATS = ".npy, .npz or IDX (.gz)"

#: What numpy, zipfile and the decompressors raise on a damaged ``.npy`` or ``.npz``: a damaged deflate
#: stream is a zlib.error, an unknown compression method a NotImplementedError (a RuntimeError, as an
#: encrypted member is), a damaged lzma stream an LZMAError. Readers turn them into one-line DataErrors.
READ_ERRORS = (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)
#: The .npy format versions numpy reads, and the longest header it accepts (its ``max_header_size``).
_NPY_VERSIONS, _MAX_HEADER = ((1, 0), (2, 0), (3, 0)), 10_000
#: Deflate expands a stream 1032 times at most, so a deflated member holds at most this times its compressed size.
_DEFLATE_RATIO = 1032


def _check_declared(fh: IO[bytes], available: int, what: str) -> None:
    """Read the ``.npy`` header at the start of ``fh`` and raise ValueError unless the data it declares
    fits in the ``available`` bytes of the file (the header included).

    numpy reads a header whole before checking its length (up to 4 GB in format 2.0) and parses it as
    Python literals, so the length is checked here first and a parser's error becomes a ValueError.
    """
    version = npy_format.read_magic(fh)  # ValueError when the bytes are not an .npy
    if version not in _NPY_VERSIONS:
        raise ValueError(f"{what} is in .npy format {version[0]}.{version[1]}, which numpy cannot read")
    length_bytes = fh.read(2 if version == (1, 0) else 4)
    length = int.from_bytes(length_bytes, "little")
    if length > _MAX_HEADER:
        raise ValueError(f"{what} declares a header of {length:,} bytes (numpy reads at most {_MAX_HEADER:,})")
    header = io.BytesIO(length_bytes + fh.read(length))
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:
        shape, _, dtype = read_header(header)
    except (SyntaxError, TypeError, tokenize.TokenError) as exc:
        raise ValueError(f"{what} has a damaged header ({exc})") from None
    declared, left = math.prod(shape) * dtype.itemsize, available - fh.tell()
    if declared > left:
        raise ValueError(f"{what} declares {shape} {dtype} values ({declared:,} bytes) and holds {left:,} bytes")


def read_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """The array of an ``.npy`` file (memory-mapped when ``mmap``), its header checked against the file's
    length before anything is allocated; never unpickled.

    Raises:
        One of :data:`READ_ERRORS` naming the problem.
    """
    with path.open("rb") as fh:
        _check_declared(fh, path.stat().st_size, "its header")
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _member_bytes(z: zipfile.ZipFile, info: zipfile.ZipInfo, archive_bytes: int) -> int:
    """The most bytes ``info`` can really hold, whatever its sizes (damaged, perhaps) claim."""
    compressed = min(info.compress_size, archive_bytes)
    if info.compress_type == zipfile.ZIP_STORED:
        return min(info.file_size, compressed)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return min(info.file_size, _DEFLATE_RATIO * compressed)
    with z.open(info) as fh:  # bzip2, lzma: no bound on the ratio, so count the bytes
        return sum(len(chunk) for chunk in iter(lambda: fh.read(2**20), b""))


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, archive_bytes: int) -> np.ndarray:
    with z.open(info) as fh:
        _check_declared(fh, _member_bytes(z, info, archive_bytes), f"its member {info.filename}")
    with z.open(info) as fh:
        return npy_format.read_array(fh, allow_pickle=False)


def _npz_members(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The members of an open ``.npz`` by array name (``x`` for ``x.npy``, as ``np.load`` names them)."""
    return {info.filename.removesuffix(".npy"): info for info in z.infolist()}


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, each member's header checked against the bytes the member can
    hold before anything is allocated; never unpickled.

    Raises:
        One of :data:`READ_ERRORS` naming the problem (a member that is not an ``.npy`` included).
    """
    size = path.stat().st_size
    with zipfile.ZipFile(path) as z:
        return {name: _read_member(z, info, size) for name, info in _npz_members(z).items()}


def _is_idx(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".gz", ".idx")) or "-idx" in name or "ubyte" in name


def _load_npz(path: Path, keys: tuple[str, ...], what: str) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz archive (not a zip file); the file is corrupt or of another format")
    with zipfile.ZipFile(path) as z:
        members = _npz_members(z)
        files = list(members)
        key = next((k for k in keys if k in files), files[0] if len(files) == 1 else None)
        if key is None:
            raise DataError(
                f"{path} holds the arrays {', '.join(files) or 'none'}; name the {what} array "
                f"'{keys[0]}' or keep one array in the file"
            )
        return _read_member(z, members[key], path.stat().st_size)


def read_array(path: str | Path, what: str = "data", keys: tuple[str, ...] = NPZ_KEYS, mmap: bool = True) -> np.ndarray:
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
            arr = read_npy(path, mmap)
        elif suffix == ".npz":
            arr = _load_npz(path, keys, what)
        elif _is_idx(path):
            arr = read_idx(path)
        else:
            raise DataError(f"{path} has the suffix {suffix or '(none)'}; give the {what} as {_FORMATS}")
    except READ_ERRORS as exc:
        if isinstance(exc, DataError):
            raise
        text = (str(exc).splitlines() or [""])[0]
        pickled = "pickle" in text.lower() or "python objects" in text.lower()
        reason = (
            "it holds pickled Python objects, which are never loaded; save plain numeric arrays"
            if pickled
            else f"{text or type(exc).__name__}; the file is corrupt or truncated"
        )
        raise DataError(f"{path} cannot be read: {reason}") from None
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
    if n and (y.min() < -(2**63) or y.max() >= 2**63):  # the cast to int64 would wrap them silently
        raise DataError(
            f"{path}: labels run from {y.min():g} to {y.max():g}, beyond int64; number the classes 0, 1, 2..."
        )
    return y.astype(np.int64)
