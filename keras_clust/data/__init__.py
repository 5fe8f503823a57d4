"""Data: IDX reader, dataset registry, validation split."""

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
    "DATASETS", "DataSource", "Dataset", "load_dataset", "load_digits", "load_fashion_mnist",
    "load_mnist", "load_mnist_sample", "parse_idx", "read_idx", "train_val_split", "write_idx",
]  # fmt: skip
