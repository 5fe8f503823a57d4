"""A labelled image dataset as an experiment trains on it: training, validation and test arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_clust.data.registry import Dataset, train_val_split


@dataclass
class Split:
    """Samples and labels split into training, validation and test sets, with the dataset they
    came from (its class names and data record)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    data: Dataset

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.data.class_names)


def split_dataset(ds: Dataset, val_fraction: float, seed: int, sample_shape: tuple[int, ...] | None = None) -> Split:
    """``ds`` with each sample reshaped to ``sample_shape`` (default: flat) and a seeded validation
    set split off its training set (:func:`~keras_clust.data.registry.train_val_split`)."""
    shape = (-1, *(sample_shape or (int(np.prod(ds.image_shape)),)))
    xtr, ytr, xval, yval = train_val_split(ds.x_train.reshape(shape), ds.y_train, val_fraction, seed)
    return Split(xtr, ytr, xval, yval, ds.x_test.reshape(shape), ds.y_test, ds)
