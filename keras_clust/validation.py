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
