"""Settings of ``vector-fields`` runs, searches and clusterings (stored as ``config.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar

from keras_clust.errors import UsageError
from keras_clust.fields.autoencoder import REPORT, UPSAMPLING
from keras_clust.fields.generator import CHANNELS
from keras_clust.option_types import (
    fraction,
    k_bounds,
    k_or_auto,
    names_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from keras_clust.settings import (
    cluster_setting,
    config_defaults,
    export_setting,
    models_dir_setting,
    optional_setting,
    path_setting,
    quick_setting,
    seed_setting,
    setting,
)

NAME = "vector-fields"

#: What ``--quick`` shrinks to: a few fields per flow type, two epochs, a short clustering study.
QUICK = {"per_class": 24, "epochs": 2, "cluster_trials": 12}
CLUSTER_ALGORITHMS = ("kmeans", "dbscan")
OBJECTIVES = ("silhouette", "knives", "knife_count", "spacing")
CHOICES = ("knee", "silhouette", "knives")
LOSSES = ("mse", "weighted_mse")
#: Embedding size of runs and searches. The slides used 3; 8 was chosen on fields other than the
#: ones reported (trained on generator seed 11, scored on seed 7, 100 fields per type, 20 epochs):
#: validation MSE 0.103 -> 0.054 and the study's chosen clustering ACC 0.36 -> 0.59.
DEFAULT_LATENT = 8

FIELDS, AUTOENCODER, STUDY = "synthetic fields", "autoencoder", "clustering study"
BY_TYPE = "clustering by flow type"


# --- the settings of the fields, shared by generate, run and tune ---------------------------------


def dataset_setting(what: str):
    return path_setting(what, metavar="NPY|NPZ", default_text="synthetic fields")


def per_class_setting(default: int, quick: int | None = None):
    return setting(default, "fields per flow type (11 types)", type=positive_int, quick=quick, group=FIELDS)


def size_setting():
    return setting(80, "side of the square fields in cells", type=positive_int, group=FIELDS)


def channels_setting():
    return setting(("u", "v", "magnitude"), "channels, from u,v,magnitude", type=names_list(CHANNELS), group=FIELDS)


def noise_setting():
    return setting(
        0.05, "Gaussian noise on u and v, relative to the field's strength", type=non_negative_float, group=FIELDS
    )


def max_rotation_setting():
    return setting(
        45.0,
        "largest rotation of a pattern in degrees, drawn uniformly in +-this",
        type=non_negative_float,
        group=FIELDS,
    )


@dataclass
class GenerateSettings:
    """The options of ``generate`` (which writes an .npz, not a run folder)."""

    seed: int = setting(0, "seed of the generator", type=non_negative_int)
    per_class: int = per_class_setting(300)
    size: int = size_setting()
    channels: tuple[str, ...] = channels_setting()
    noise: float = noise_setting()
    max_rotation: float = max_rotation_setting()


@dataclass
class ClusterSettings:
    """How the codes are clustered: the multi-objective study's settings."""

    algorithms: tuple[str, ...] = setting(
        CLUSTER_ALGORITHMS,
        "clustering algorithms the study chooses from",
        type=names_list(CLUSTER_ALGORITHMS),
        group=STUDY,
    )
    objectives: tuple[str, ...] = setting(
        ("silhouette", "knives"),
        "2 or 3 of silhouette (max), knives (max: share of clusters cutting the mean silhouette), knife_count "
        "(max: their number, the slides' wording), spacing (min: spread of the centroid distances over their mean)",
        type=names_list(OBJECTIVES),
        group=STUDY,
    )
    trials: int = setting(
        80,
        "trials of the clustering study",
        type=positive_int,
        flag="--cluster-trials",
        quick=QUICK["cluster_trials"],
        group=STUDY,
    )
    k_max: int = setting(15, "largest KMeans k tried", type=positive_int, group=STUDY)
    choose: str = setting(
        "knee",
        "which Pareto solution is chosen: knee (closest to the ideal point), silhouette or knives",
        choices=CHOICES,
        group=STUDY,
    )
    n_init: int = setting(10, "KMeans restarts", type=positive_int, group=STUDY)

    def __post_init__(self):
        self.algorithms, self.objectives = tuple(self.algorithms), tuple(self.objectives)

    def check(self) -> ClusterSettings:
        if not 2 <= len(self.objectives) <= 3:
            raise UsageError(f"--objectives needs 2 or 3 of {', '.join(OBJECTIVES)}, got {','.join(self.objectives)}")
        if self.k_max < 2:
            raise UsageError(f"--k-max must be >= 2, got {self.k_max}")
        return self


def _v1_to_v2(old: dict) -> dict:
    """Runs written before ``--cluster``: the study and the KMeans rows only."""
    return {**old, "deep_cluster": "kmeans"}


def _v2_to_v3(old: dict) -> dict:
    """Runs written before the clustering by flow type (``--k``): it had no settings, and those runs
    did not make it; these are its defaults."""
    return {**old, "k": None, "k_range": [2, 20]}


@dataclass
class ArchitectureOptions:
    """The option that, beside ``--params-from``, chooses a run's autoencoder (``Config.architecture``)."""

    latent: int | None = optional_setting(
        "embedding size (the slides used 3: --latent 3 gives their network exactly)",
        type=positive_int,
        default_text=f"{DEFAULT_LATENT}, or the tune's with --params-from",
    )


@dataclass
class Config:
    """Every setting of a ``vector-fields run``.

    ``dataset`` (a user's ``.npy``/``.npz`` or a run folder holding ``fields.npz``) replaces
    the synthetic fields; ``architecture`` is the autoencoder (the slides' winner unless
    ``--params-from`` a tune); the latent size is ``architecture['latent']``. ``deep_cluster``
    (``--cluster``, version 2) adds DEC, IDEC or N2D on the run's encoder at the true number of types;
    ``k`` and ``k_range`` (version 3) set the clustering by flow type.
    """

    CONFIG_VERSION: ClassVar[int] = 3
    MIGRATIONS: ClassVar[dict] = {1: _v1_to_v2, 2: _v2_to_v3}

    dataset: str | None = dataset_setting(
        "your fields (N, H, W, C) in .npy/.npz (labels optional) instead of synthetic ones"
    )
    per_class: int = per_class_setting(300, quick=QUICK["per_class"])
    size: int = size_setting()
    channels: tuple[str, ...] = channels_setting()
    noise: float = noise_setting()
    max_rotation: float = max_rotation_setting()
    architecture: dict = field(default_factory=lambda: replace(REPORT, latent=DEFAULT_LATENT).to_dict())
    params_from: str | None = path_setting(
        "train the best architecture of a 'vector-fields tune' folder",
        metavar="TUNE_RUN",
        default_text="the slides' winner",
        group=AUTOENCODER,
    )
    loss: str = setting(
        "mse",
        "mse, or weighted_mse: squared errors weighted by the local field magnitude",
        choices=LOSSES,
        group=AUTOENCODER,
    )
    weight_floor: float = setting(
        0.1, "added to the magnitude in the weighted MSE's weights", type=non_negative_float, group=AUTOENCODER
    )
    vae: bool = setting(False, "a VAE: z_mean/z_log_var heads, trained on the -ELBO", group=AUTOENCODER)
    beta: float = setting(1.0, "KL weight of the VAE", type=positive_float, group=AUTOENCODER)
    upsampling: str = setting("bilinear", "decoder upsampling", choices=UPSAMPLING, group=AUTOENCODER)
    epochs: int = setting(40, "epochs", type=positive_int, quick=QUICK["epochs"], group=AUTOENCODER)
    patience: int = setting(
        8,
        "epochs without validation improvement before stopping, best epoch kept; 0: never",
        type=non_negative_int,
        group=AUTOENCODER,
    )
    batch_size: int = setting(32, "batch size", type=positive_int, group=AUTOENCODER)
    learning_rate: float = setting(1e-3, "Adam", type=positive_float, group=AUTOENCODER)
    val_fraction: float = setting(0.15, "validation share", type=fraction, group=AUTOENCODER)
    test_fraction: float = setting(0.15, "test share", type=fraction, group=AUTOENCODER)
    k: int | None = optional_setting(
        "flow types to find: auto chooses in --k-range by the silhouette of Gaussian mixtures on N2D's UMAP map "
        "of the fields divided by their norms",
        type=k_or_auto,
        metavar="K|auto",
        default_text="auto",
        group=BY_TYPE,
    )
    k_range: tuple[int, int] = setting(
        (2, 20), "the k that --k auto tries", type=k_bounds, metavar="LOW-HIGH", default_text="2-20", group=BY_TYPE
    )
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    deep_cluster: str = cluster_setting(flag="--cluster")  # a run's ``cluster`` holds the study's settings
    quick: bool = quick_setting()
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()

    def __post_init__(self):
        self.channels = tuple(self.channels)
        self.k_range = tuple(self.k_range)
        if isinstance(self.cluster, dict):
            self.cluster = ClusterSettings(**self.cluster)

    def check(self) -> Config:
        if self.val_fraction + self.test_fraction >= 0.6:
            raise UsageError("--val-fraction + --test-fraction must stay below 0.6")
        self.cluster.check()
        return self

    def option_defaults(self) -> dict:
        """``--config``: the saved settings as the parser's defaults, the nested study's too; the
        saved architecture's latent size as ``--latent``."""
        return {
            **config_defaults(Config, asdict(self)),
            **config_defaults(ClusterSettings, asdict(self.cluster)),
            "latent": self.architecture["latent"],
        }


def quick_cluster(c: ClusterSettings) -> ClusterSettings:
    """``--quick``: a short clustering study."""
    return replace(c, trials=min(c.trials, QUICK["cluster_trials"]))


@dataclass
class ClusterConfig:
    """Every setting of a ``vector-fields cluster``: the finished run whose codes are clustered
    again (its folder), the fields (None: the run's own) and the study's settings."""

    run: str | None = optional_setting("run folder or run id to use", default_text="the newest complete run")
    dataset: str | None = path_setting(
        "cluster these fields with the run's encoder instead of the run's own fields",
        metavar="NPY|NPZ",
        default_text="the run's own",
    )
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    seed: int = setting(0, "seed of the study", type=non_negative_int)

    def __post_init__(self):
        if isinstance(self.cluster, dict):
            self.cluster = ClusterSettings(**self.cluster)

    def option_defaults(self) -> dict:
        """``--config``: the saved settings, the nested study's too, as the parser's defaults."""
        return {
            **config_defaults(ClusterConfig, asdict(self)),
            **config_defaults(ClusterSettings, asdict(self.cluster)),
        }
