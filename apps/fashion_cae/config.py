"""Settings of ``fashion-cae`` runs and searches, and the data they share."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from keras_clust.data import load_dataset
from keras_clust.data.splits import Split, split_dataset
from keras_clust.errors import DataError
from keras_clust.files import read_json
from keras_clust.models.classifier import SCHEDULES
from keras_clust.option_types import fraction, non_negative_int, positive_float, positive_int
from keras_clust.run_folder import find_run
from keras_clust.settings import (
    cluster_setting,
    config_defaults,
    config_from_args,
    data_dir_setting,
    declarations,
    export_setting,
    grace_period_setting,
    heartbeat_interval_setting,
    k_criterion_setting,
    k_range_setting,
    k_setting,
    kerastuner_dir_setting,
    models_dir_setting,
    optional_setting,
    quick_setting,
    seed_setting,
    setting,
    show_default,
    storage_setting,
    study_name_setting,
    workers_setting,
)
from keras_clust.training import OPTIMIZERS
from keras_clust.tuning import CAE_SPACE, TUNERS

NAME = "fashion-cae"

#: The report's best trial (test MSE 0.0166 there): the CAE's default hyper-parameters.
REPORT_BEST = {
    "encoded_space_dim": 14,
    "n_channels": 8,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 1e-5,
}
#: SGD's momentum when neither the search nor ``--momentum`` gives one.
SGD_MOMENTUM = 0.9
QUICK_RUN_SIZES = (2000, 500)
QUICK_TUNE_SIZES = (600, 200)


def _v1_to_v2(old: dict) -> dict:
    """Runs written before version 2 fine-tuned with one learning rate, no schedule and no early
    stopping, and clustered codes with 10 KMeans restarts (raw pixels with 3)."""
    return {**old, "clf_encoder_lr_factor": 1.0, "clf_schedule": "constant", "clf_patience": 0, "kmeans_n_init": 10}


def _v2_to_v3(old: dict) -> dict:
    """Runs written before ``--cluster``: KMeans only."""
    return {**old, "cluster": "kmeans"}


def _v3_to_v4(old: dict) -> dict:
    """Runs written before ``--k auto``: KMeans with k = 10."""
    return {**old, "k_range": [2, 20], "k_criterion": "silhouette"}


def _factor(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 1, got {value}")
    return value


# --- settings of run and tune alike ------------------------------------------------------


def _dataset_setting():
    return setting(
        "fashion_mnist",
        "dataset of 28x28 images (fashion_mnist: from Debian's dataset-fashion-mnist)",
        choices=("fashion_mnist", "mnist"),
    )


def _val_fraction_setting():
    return setting(0.1, "share of the training set held out for validation", type=fraction)


def _batch_size_setting():
    return setting(256, "CAE batch size", type=positive_int, quick=64)


# --- the groups of run's --help ---------------------------------------------------------

CAE_GROUP = "CAE"
CAE_PARAMS_GROUP = "CAE hyper-parameters (default: the report's best; with --params-from, that search's best)"
VAE_GROUP = "VAE"
ANALYSIS_GROUP = "analysis and transfer learning"


def _cae_param(key: str, help: str, **kwargs):
    """An option overriding ``cae[key]``; ``--help`` shows the report's best as its default."""
    shown = show_default(REPORT_BEST.get(key, SGD_MOMENTUM))
    return setting(None, help, default_text=shown, group=CAE_PARAMS_GROUP, **kwargs)


@dataclass
class CaeOptions:
    """The options that change the CAE's hyper-parameters (see :func:`cae_params_from_args`):
    not saved themselves, the ``RunConfig.cae`` they make is."""

    encoded_space_dim: int | None = _cae_param("encoded_space_dim", "latent size", type=positive_int)
    n_channels: int | None = _cae_param("n_channels", "channels of the first conv layer", type=positive_int)
    optimizer: str | None = _cae_param("optimizer", "adam or sgd (with momentum)", choices=OPTIMIZERS)
    learning_rate: float | None = _cae_param("learning_rate", "learning rate", type=positive_float)
    weight_decay: float | None = _cae_param("weight_decay", "decoupled weight decay", type=positive_float)
    momentum: float | None = _cae_param("momentum", "SGD momentum", type=fraction)


@dataclass
class RunConfig:
    """Every setting of a ``fashion-cae run`` (stored as ``config.json``).

    Version 2 added the fine-tuning schedule (``clf_encoder_lr_factor``, ``clf_schedule``,
    ``clf_patience``) and one ``kmeans_n_init`` for every row of the KMeans comparison; version 3
    ``cluster`` (``--cluster``: DEC, IDEC or N2D on the CAE encoder beside KMeans); version 4
    ``--k`` as an option (``auto``: chosen without labels), ``k_range`` and ``k_criterion``.
    """

    CONFIG_VERSION: ClassVar[int] = 4
    MIGRATIONS: ClassVar[dict] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}

    dataset: str = _dataset_setting()
    data_dir: str | None = data_dir_setting()
    cae: dict = field(default_factory=lambda: dict(REPORT_BEST))  # its options: CaeOptions
    params_from: str | None = optional_setting(
        "use the best hyper-parameters of a 'fashion-cae tune' run (folder or run id)",
        metavar="RUN",
        default_text="the report's best",
        group=CAE_GROUP,
    )
    cae_epochs: int = setting(30, "CAE epochs", type=positive_int, group=CAE_GROUP)
    batch_size: int = _batch_size_setting()
    val_fraction: float = _val_fraction_setting()
    vae_latent: int | None = optional_setting(
        "VAE latent size (2 adds a latent traversal figure)",
        type=positive_int,
        default_text="the CAE's",
        group=VAE_GROUP,
    )
    vae_channels: int = setting(32, "VAE conv channels", type=positive_int, group=VAE_GROUP)
    vae_hidden: int = 128
    vae_epochs: int = setting(30, "VAE epochs", type=positive_int, group=VAE_GROUP)
    vae_batch_size: int = 128
    vae_learning_rate: float = setting(1e-3, "VAE Adam learning rate", type=positive_float, group=VAE_GROUP)
    beta: float = setting(1.0, "weight of the KL term", type=positive_float, group=VAE_GROUP)
    clf_epochs: int = setting(
        20, "most epochs of each classifier (fewer with --clf-patience)", type=positive_int, group=ANALYSIS_GROUP
    )
    clf_learning_rate: float = setting(
        1e-3,
        "classifier Adam learning rate of the head; the start of the schedule",
        type=positive_float,
        group=ANALYSIS_GROUP,
    )
    clf_encoder_lr_factor: float = setting(  # chosen on validation: bench/results/fashion_transfer.json
        1.0,
        "fine-tuning: the encoder's learning rate as a share of the head's (1 was chosen on validation accuracy "
        "over 0.1 and 0.3; lower values are there to try)",
        type=_factor,
        group=ANALYSIS_GROUP,
    )
    clf_schedule: str = setting(
        "cosine",
        "classifier learning-rate schedule: cosine decay to 0 over --clf-epochs, or constant",
        choices=SCHEDULES,
        group=ANALYSIS_GROUP,
    )
    clf_patience: int = setting(
        4,
        "stop a classifier this many epochs after its best validation accuracy and keep that epoch's weights; "
        "0: train every epoch, keep the last",
        type=non_negative_int,
        group=ANALYSIS_GROUP,
    )
    clf_hidden: int = 64
    n_clusters: int | None = k_setting(10, group=ANALYSIS_GROUP)
    k_range: tuple[int, int] = k_range_setting(group=ANALYSIS_GROUP)
    k_criterion: str = k_criterion_setting(group=ANALYSIS_GROUP)
    kmeans_n_init: int = setting(
        10,
        "KMeans restarts, the same for the codes and the raw pixels",
        type=positive_int,
        group=ANALYSIS_GROUP,
    )
    cluster: str = cluster_setting()
    tsne_points: int = setting(
        5000, "test codes in the PCA/t-SNE maps", type=positive_int, quick=500, group=ANALYSIS_GROUP
    )
    quick: bool = quick_setting()
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()

    def option_defaults(self) -> dict:
        """The options that repeat this config (``--config``): its settings, and its CAE
        hyper-parameters as the options that set them."""
        cae = {f.name: self.cae.get(f.name) for f, _ in declarations(CaeOptions)}
        return {**config_defaults(RunConfig, asdict(self)), **cae}

    @property
    def latent_vae(self) -> int:
        return self.vae_latent or int(self.cae["encoded_space_dim"])


@dataclass
class TuneConfig:
    """Every setting of a ``fashion-cae tune`` (stored as ``config.json``, with the search space)."""

    dataset: str = _dataset_setting()
    data_dir: str | None = data_dir_setting()
    engine: str = setting(
        "optuna",
        "search engine (both: one after the other, compared in the report)",
        choices=("optuna", "kerastuner", "both"),
    )
    tuner: str = setting(
        "bayesian", "KerasTuner algorithm (hyperband sizes its own trials from --epochs)", choices=TUNERS
    )
    trials: int = optional_setting(
        "finished trials wanted; a resumed study only runs the missing ones",
        type=positive_int,
        default_text="20; --quick: 2",
    )
    epochs: int = setting(10, "epochs per trial; --quick: 1", type=positive_int)
    final_epochs: int = setting(
        30,
        "retrain the best configuration this long and score it on the test set; 0 scores the best trial's own model",
        type=non_negative_int,
        quick=1,
    )
    batch_size: int = _batch_size_setting()
    val_fraction: float = _val_fraction_setting()
    timeout: float | None = setting(
        None, "Optuna: start no new trial after this many seconds", type=positive_float, default_text="no limit"
    )
    storage: str | None = storage_setting()
    study_name: str = study_name_setting(NAME, "study (Optuna) or project (KerasTuner) name")
    workers: int = workers_setting()
    heartbeat_interval: int = heartbeat_interval_setting()
    grace_period: int = grace_period_setting()
    kerastuner_dir: str | None = kerastuner_dir_setting()
    quick: bool = quick_setting()
    seed: int = seed_setting()
    space: list = field(default_factory=lambda: [asdict(p) for p in CAE_SPACE.params])  # what was searched

    def __post_init__(self):
        if self.trials is None:  # not a cap: --quick --trials 5 runs 5
            self.trials = 2 if self.quick else 20


def prepare_data(
    dataset: str, data_dir: str | None, val_fraction: float, seed: int, quick_sizes: tuple[int, int] | None = None
) -> Split:
    """Load the images, subsample them for quick runs, split off the validation set."""
    ds = load_dataset(dataset, data_dir)
    if ds.image_shape[:2] != (28, 28):
        raise DataError(f"{dataset} images are {ds.image_shape}, the CAE needs 28x28 grey-scale images")
    if quick_sizes is not None:
        ds = ds.subsample(*quick_sizes, seed=seed)
    return split_dataset(ds, val_fraction, seed, (28, 28, 1))


def cae_params_from_args(args: argparse.Namespace, out: Path) -> tuple[dict, str | None]:
    """The CAE hyper-parameters: a tune run's best (``--params-from``), else the report's
    best, each overridden by the options given explicitly (:class:`CaeOptions`)."""
    params, source = dict(REPORT_BEST), None
    if args.params_from:
        path = find_run(out, NAME, args.params_from)
        best = read_json(path / "metrics.json").get("best_params")
        if not best:
            raise DataError(f"{path} is not a finished 'fashion-cae tune' run (no best_params in metrics.json)")
        params, source = dict(best), str(path)
    for f, _ in declarations(CaeOptions):
        value = getattr(args, f.name)
        if value is not None:
            params[f.name] = value
    if params.get("optimizer") == "sgd":
        params.setdefault("momentum", SGD_MOMENTUM)
    else:
        params.pop("momentum", None)
    missing = [k for k in ("encoded_space_dim", "n_channels", "optimizer", "learning_rate") if k not in params]
    if missing:
        raise DataError(f"hyper-parameters from {source} lack {missing}")
    return params, source


def run_config(args: argparse.Namespace) -> RunConfig:
    """The config of a ``run`` command line: its declared settings, the CAE's hyper-parameters
    (:func:`cae_params_from_args`) and ``--quick``'s budget: every model trains 2 epochs (a value,
    not a cap), the VAE's batch is at most 64."""
    cae, source = cae_params_from_args(args, args.out)
    cfg = config_from_args(RunConfig, args, cae=cae, params_from=source)
    if cfg.quick:
        cfg.cae_epochs = cfg.vae_epochs = cfg.clf_epochs = 2
        cfg.vae_batch_size = min(cfg.vae_batch_size, 64)
    return cfg


def tune_config(args: argparse.Namespace) -> TuneConfig:
    """The config of a ``tune`` command line: its declared settings; ``--quick`` trains every trial
    1 epoch (a value, not a cap)."""
    cfg = config_from_args(TuneConfig, args)
    if cfg.quick:
        cfg.epochs = 1
    return cfg
