"""Checks on arrays handed to the library API."""

from __future__ import annotations

import numpy as np

from keras_clust.errors import DataError


def check_array(x, name: str = "x", ndim: int | None = None, min_samples: int = 1) -> np.ndarray:
    """Return ``x`` as a float32 array after checking it is finite and well-shaped.

    Args:
        x: Array-like input.
        name: Name used in the error message.
        ndim: Required number of dimensions, or None for any.
        min_samples: Minimum length of the first axis.

    Returns:
        The array as ``float32``.

    Raises:
        DataError: if the array is empty, has the wrong rank, or holds NaN/inf.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{name} must be numeric, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.ndim == 0 or arr.shape[0] < min_samples:
        raise DataError(f"{name} needs at least {min_samples} samples, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DataError(f"{name} contains {bad} NaN or infinite values; clean or impute them first")
    return arr


def check_labels(y, n: int, name: str = "labels") -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of length ``n``.

    Raises:
        DataError: if the labels have the wrong length or are not integers.
    """
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{name} must be 1-D with {n} entries, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise DataError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_rows(x, name: str = "X", min_samples: int = 1, chunk: int = 65536) -> np.ndarray:
    """Like :func:`check_array` for rows of any shape, but without a float32 copy: the array (or
    memory map) is returned as it is, after checking it is numeric and finite chunk by chunk,
    so a file mapped from disk is never loaded whole.

    Raises:
        DataError: non-numeric, fewer than ``min_samples`` rows, or NaN/inf (naming the first row).
    """
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype.kind == "c":
        raise DataError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.shape[0] < min_samples:
        n = arr.shape[0] if arr.ndim else 0
        raise DataError(
            f"{name} must hold at least {min_samples} rows (2-D or more), got {n} sample"
            f"{'' if n == 1 else 's'} of shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        for start in range(0, len(arr), chunk):
            finite = np.isfinite(arr[start : start + chunk]).reshape(min(chunk, len(arr) - start), -1).all(axis=1)
            if not finite.all():
                row = start + int(np.argmin(finite))
                raise DataError(f"{name} has NaN or infinite values (first in row {row}); clean or drop those rows")
    return arr
