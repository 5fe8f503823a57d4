"""The fields of a ``vector-fields`` run or search: generated or read, split, scaled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError

#: ``tune`` draws its synthetic fields with ``seed + TUNE_DATA_OFFSET``, so an architecture
#: it finds is never chosen on the fields a ``run`` with the same seed reports on.
TUNE_DATA_OFFSET = 1000


def dataset_file(path: str | Path) -> Path:
    """A user's ``.npy``/``.npz``, or a folder holding ``fields.npz`` (written by ``generate``)."""
    path = Path(path)
    if path.is_dir():
        if (path / "fields.npz").is_file():
            return path / "fields.npz"
        raise DataError(f"{path} is a folder without fields.npz; pass the .npy/.npz file of the fields")
    return path


def acquire(settings, seed: int):
    """The fields: read from ``settings.dataset`` or generated from the settings' ``per_class``,
    ``size``, ``channels``, ``noise`` and ``max_rotation`` (a run's or a search's config),
    deterministic from ``seed``."""
    from keras_clust.fields.dataset import load_fields
    from keras_clust.fields.generator import generate_fields

    if settings.dataset is not None:
        return load_fields(dataset_file(settings.dataset))
    return generate_fields(
        settings.per_class,
        size=settings.size,
        channels=tuple(settings.channels),
        noise=settings.noise,
        max_rotation=settings.max_rotation,
        seed=seed,
    )


@dataclass
class Splits:
    """Train/validation/test fields (with their rows in the full set and their labels, if any)."""

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    idx_train: np.ndarray
    idx_val: np.ndarray
    idx_test: np.ndarray
    scale: float

    @property
    def sizes(self) -> dict:
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}


def split_fields(
    fields: np.ndarray, labels: np.ndarray | None, val_fraction: float, test_fraction: float, seed: int
) -> Splits:
    """Seeded split (stratified by label when there are labels) and the training fields' RMS,
    the scale the model divides its inputs by (so fields of any unit train alike)."""
    from sklearn.model_selection import train_test_split

    n = len(fields)
    idx = np.arange(n)
    n_test, n_val = max(1, round(test_fraction * n)), max(1, round(val_fraction * n))
    if n - n_test - n_val < 1:
        raise DataError(f"{n} fields are too few to split into train, validation and test; give at least 3")
    classes = 0 if labels is None else len(np.unique(labels))
    stratify = (
        labels is not None and min(n_test, n_val) >= classes and np.min(np.bincount(labels)[np.unique(labels)]) >= 3
    )  # every split can hold every class
    strat = labels if stratify else None
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=strat)
    strat_rest = None if strat is None else labels[rest]
    train, val = train_test_split(rest, test_size=n_val, random_state=seed + 1, stratify=strat_rest)
    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    scale = float(np.sqrt(np.mean(np.square(fields[train], dtype=np.float64))))
    if not scale > 0:
        raise DataError("the training fields are all zero; there is nothing to learn")
    return Splits(fields[train], fields[val], fields[test], train, val, test, scale)


def uv_channels(channels) -> list[int] | None:
    """Indices of u and v among ``channels`` (by name, else the first two), or None for one channel."""
    names = list(channels)
    if "u" in names and "v" in names:
        return [names.index("u"), names.index("v")]
    return [0, 1] if len(names) >= 2 else None
