"""Settings of ``fashion-cae`` runs and searches, and the data they share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from keras_clust.data import Dataset, load_dataset, train_val_split
from keras_clust.errors import DataError
from keras_clust.runs import find_run, read_json
from keras_clust.tuning.storage import GRACE_PERIOD, HEARTBEAT_INTERVAL

NAME = "fashion-cae"

#: The report's best trial (test MSE 0.0166 there): the CAE's default hyper-parameters.
REPORT_BEST = {
    "encoded_space_dim": 14,
    "n_channels": 8,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
}
QUICK_RUN_SIZES = (2000, 500)
QUICK_TUNE_SIZES = (600, 200)


def _v1_to_v2(old: dict) -> dict:
    """Runs written before version 2 fine-tuned with one learning rate, no schedule and no early
    stopping, and clustered codes with 10 KMeans restarts (raw pixels with 3)."""
    return {**old, "clf_encoder_lr_factor": 1.0, "clf_schedule": "constant", "clf_patience": 0, "kmeans_n_init": 10}


def _v2_to_v3(old: dict) -> dict:
    """Runs written before ``--cluster``: KMeans only."""
    return {**old, "cluster": "kmeans"}


@dataclass
class RunConfig:
    """Every setting of a ``fashion-cae run`` (stored as ``config.json``).

    Version 2 added the fine-tuning schedule (``clf_encoder_lr_factor``, ``clf_schedule``,
    ``clf_patience``) and one ``kmeans_n_init`` for every row of the KMeans comparison; version 3
    ``cluster`` (``--cluster``: DEC, IDEC or N2D on the CAE encoder beside KMeans).
    """

    CONFIG_VERSION: ClassVar[int] = 3
    MIGRATIONS: ClassVar[dict] = {1: _v1_to_v2, 2: _v2_to_v3}

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    cae: dict = field(default_factory=lambda: dict(REPORT_BEST))
    params_from: str | None = None
    cae_epochs: int = 30
    batch_size: int = 256
    val_fraction: float = 0.1
    vae_latent: int | None = None
    vae_channels: int = 32
    vae_hidden: int = 128
    vae_epochs: int = 30
    vae_batch_size: int = 128
    vae_learning_rate: float = 1e-3
    beta: float = 1.0
    clf_epochs: int = 20
    clf_learning_rate: float = 1e-3
    clf_encoder_lr_factor: float = 1.0  # chosen on validation: bench/results/fashion_transfer.json
    clf_schedule: str = "cosine"
    clf_patience: int = 4
    clf_hidden: int = 64
    n_clusters: int = 10
    kmeans_n_init: int = 10
    cluster: str = "kmeans"
    tsne_points: int = 5000
    quick: bool = False
    seed: int = 0
    export: bool = True
    models_dir: str = "saved_models"

    @property
    def latent_vae(self) -> int:
        return self.vae_latent or int(self.cae["encoded_space_dim"])


@dataclass
class TuneConfig:
    """Every setting of a ``fashion-cae tune`` (stored as ``config.json``)."""

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    engine: str = "optuna"
    tuner: str = "bayesian"
    trials: int = 20
    epochs: int = 10
    final_epochs: int = 30
    batch_size: int = 256
    val_fraction: float = 0.1
    timeout: float | None = None
    storage: str | None = None
    study_name: str = "fashion-cae"
    workers: int = 1
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    kerastuner_dir: str | None = None
    quick: bool = False
    seed: int = 0


@dataclass
class Prepared:
    """Images ``(n, 28, 28, 1)`` in [0, 1] with labels, split into train/validation/test."""

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


def prepare_data(
    dataset: str, data_dir: str | None, val_fraction: float, seed: int, quick_sizes: tuple[int, int] | None = None
) -> Prepared:
    """Load the images, subsample them for quick runs, split off the validation set."""
    ds = load_dataset(dataset, data_dir)
    if ds.image_shape[:2] != (28, 28):
        raise DataError(f"{dataset} images are {ds.image_shape}, the CAE needs 28x28 grey-scale images")
    if quick_sizes is not None:
        ds = ds.subsample(*quick_sizes, seed=seed)
    shape = (-1, 28, 28, 1)
    xtr, ytr, xval, yval = train_val_split(ds.x_train.reshape(shape), ds.y_train, val_fraction, seed)
    return Prepared(xtr, ytr, xval, yval, ds.x_test.reshape(shape), ds.y_test, ds)


def cae_params_from_args(args: argparse.Namespace, out: Path) -> tuple[dict, str | None]:
    """The CAE hyper-parameters: a tune run's best (``--params-from``), else the report's
    best, each overridden by the options given explicitly."""
    params, source = dict(REPORT_BEST), None
    if args.params_from:
        path = find_run(out, NAME, args.params_from)
        best = read_json(path / "metrics.json").get("best_params")
        if not best:
            raise DataError(f"{path} is not a finished 'fashion-cae tune' run (no best_params in metrics.json)")
        params, source = dict(best), str(path)
    for key in ("encoded_space_dim", "n_channels", "optimizer", "learning_rate", "weight_decay", "momentum"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    if params.get("optimizer") == "sgd":
        params.setdefault("momentum", 0.9)
    else:
        params.pop("momentum", None)
    missing = [k for k in ("encoded_space_dim", "n_channels", "optimizer", "learning_rate") if k not in params]
    if missing:
        raise DataError(f"hyper-parameters from {source} lack {missing}")
    return params, source
