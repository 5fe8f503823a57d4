"""Data: IDX reader, dataset registry, validation split, Gaussian mixtures, corruptions.

The Lennard-Jones engine is :mod:`keras_clust.lj`, the vector fields :mod:`keras_clust.fields`;
this package imports neither numba nor TensorFlow.
"""

from keras_clust.data.corruption import CORRUPTIONS, corrupt, gaussian_blur, gaussian_noise, salt_and_pepper
from keras_clust.data.gmm import (
    GaussianMixture,
    check_mixture,
    load_mixture,
    random_mixture,
    sample_mixture,
    save_mixture,
)
from keras_clust.data.idx import parse_idx, read_idx, write_idx
from keras_clust.data.registry import (
    DATASETS,
    Dataset,
    DataSource,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist_sample,
    train_val_split,
)

__all__ = [
    "CORRUPTIONS",
    "corrupt",
    "gaussian_blur",
    "gaussian_noise",
    "salt_and_pepper",
    "GaussianMixture",
    "check_mixture",
    "load_mixture",
    "random_mixture",
    "sample_mixture",
    "save_mixture",
    "DATASETS",
    "DataSource",
    "Dataset",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_sample",
    "parse_idx",
    "read_idx",
    "train_val_split",
    "write_idx",
]
