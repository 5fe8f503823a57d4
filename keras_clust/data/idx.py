"""Reader for the IDX format used by (Fashion-)MNIST, gzip-compressed or raw.

The header is two zero bytes, a dtype code, the number of dimensions, then one
big-endian uint32 per dimension. Every field is checked before the payload is
reshaped, so a damaged file gives a message that names it.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"IDX file {path} is a damaged gzip archive ({exc}); download or reinstall it") from None


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file.

    Args:
        data: The uncompressed file content.
        source: Name used in error messages.

    Returns:
        The array with its native dtype (converted to native byte order).

    Raises:
        DataError: if the magic number, dtype code, dimensions or length are wrong.
    """
    if len(data) < 4:
        raise DataError(f"IDX file {source} is too short ({len(data)} bytes) to hold a header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(f"{source} is not an IDX file (bad magic number 0x{data[:4].hex()})")
    if dtype_code not in IDX_DTYPES:
        raise DataError(f"IDX file {source} has unknown dtype code 0x{dtype_code:02x}")
    if ndim == 0:
        raise DataError(f"IDX file {source} declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"IDX file {source} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[dtype_code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: in int64, (2**16,) * 4 makes 0
    actual = len(data) - header_len
    if actual != expected:
        kind = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"IDX file {source} is {kind}: header {tuple(dims)} needs {expected} bytes of data, found {actual}"
        )
    try:
        arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    except ValueError:  # an empty array whose other dimensions overflow, e.g. (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)
        raise DataError(
            f"IDX file {source} declares dimensions {tuple(dims)}, which no array can have; the file is corrupt"
        ) from None
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a NumPy array.

    Args:
        path: Path of the file.

    Returns:
        The array stored in the file.

    Raises:
        DataError: if the file cannot be read or is not a valid IDX file.
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), source=str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    Used to build test fixtures and to store derived data sets.
    """
    array = np.asarray(array)
    codes = {dt.str.lstrip("<>|="): code for code, dt in IDX_DTYPES.items()}
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = codes.get(big.str.lstrip("<>|="))
    if code is None:
        raise DataError(f"dtype {array.dtype} has no IDX code")
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(big, copy=False).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
