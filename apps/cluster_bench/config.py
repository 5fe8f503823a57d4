"""Settings of ``cluster-bench`` runs (stored as ``config.json``) and the published numbers
the measured table is printed beside."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.cluster.options import deep_config_defaults
from keras_clust.errors import UsageError
from keras_clust.option_types import names_list, positive_int, seed_list
from keras_clust.settings import data_dir_setting, quick_setting, seed_setting, setting

NAME = "cluster-bench"
DATASETS = ("fashion_mnist", "mnist", "digits")
SPLITS = ("all", "test")

#: Published ACC / NMI on all 70k images (None: not published there). Sources: DEC (Xie et al.
#: 2016, MNIST), IDEC (Guo et al. 2017, MNIST), N2D (McConville et al. 2020, Tables 2-3, which
#: also quote DEC/IDEC/KMeans on Fashion-MNIST); "dec (Keras)" is the Keras reimplementation
#: by X. Guo (github.com/XifengGuo/DEC-keras).
PUBLISHED: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "fashion_mnist": {
        "kmeans (pixels)": (0.474, 0.512),
        "dec": (0.518, 0.546),
        "idec": (0.529, 0.557),
        "n2d": (0.672, 0.684),
    },
    "mnist": {
        "kmeans (pixels)": (0.535, None),
        "dec": (0.843, None),
        "dec (Keras)": (0.91, None),
        "idec": (0.881, 0.867),
        "n2d": (0.979, 0.942),
    },
    "digits": {},
}

#: Rows a ``--quick`` run clusters (a seeded subsample; the budgets are ``DeepSettings.quick()``).
QUICK_ROWS = 600
#: The :class:`~keras_clust.cluster.options.DeepOptions` a ``cluster-bench`` run offers.
DEEP_OPTIONS = (
    "n_clusters",
    "k_range",
    "k_criterion",
    "pretrain_epochs",
    "max_iter",
    "update_interval",
    "tol",
    "n_neighbors",
)


def _methods(text: str) -> tuple[str, ...]:
    return METHODS if text == "all" else names_list(METHODS)(text)


@dataclass
class Config:
    """Every setting of a ``cluster-bench`` run.

    The deep methods share one pretrained ``d-500-500-2000-10`` autoencoder per seed (each copies
    it before fine-tuning), so their rows differ only in what follows the pretraining.
    """

    dataset: str = setting("digits", "data to cluster", choices=DATASETS)
    methods: tuple[str, ...] = setting(
        METHODS,
        "all, or a comma list of " + ", ".join(METHODS),
        type=_methods,
        flag="--method",
        metavar="METHODS",
        default_text="all",
    )
    split: str = setting("all", "all = train + test as the papers; test = the held-out split only", choices=SPLITS)
    seeds: tuple[int, ...] = setting(
        None, "comma list of seeds, each a full repetition", type=seed_list, default_text="--seed"
    )
    settings: DeepSettings = field(default_factory=DeepSettings)  # its options: DEEP_OPTIONS
    max_rows: int | None = setting(
        None, "cluster a seeded random subset of this many rows", type=positive_int, default_text="all"
    )
    data_dir: str | None = data_dir_setting()
    quick: bool = quick_setting()
    seed: int = seed_setting()

    def __post_init__(self):
        self.methods = tuple(self.methods)
        self.seeds = (self.seed,) if self.seeds is None else tuple(self.seeds)  # --seeds: default --seed
        if isinstance(self.settings, dict):
            self.settings = DeepSettings(**self.settings)

    def option_defaults(self) -> dict:
        """The options that repeat this config (``--config``): its settings and its DEC/IDEC/N2D ones."""
        return deep_config_defaults(self, DEEP_OPTIONS)

    def check(self) -> Config:
        if self.dataset not in DATASETS:
            raise UsageError(f"--dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.split not in SPLITS:
            raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise UsageError(f"--method takes {', '.join(METHODS)} or all, got {','.join(self.methods)}")
        s = self.settings
        if not 0 <= s.tol < 1:
            raise UsageError(f"--tol is a share of labels in [0, 1), got {s.tol}")
        if s.n_neighbors < 2:
            raise UsageError(f"--n-neighbors must be >= 2, got {s.n_neighbors}")
        need = s.n_clusters if s.n_clusters is not None else s.k_range[0] + 1
        if self.max_rows is not None and self.max_rows < need:
            raise UsageError(f"--max-rows {self.max_rows} is fewer rows than the {need} clusters --k needs")
        return self
