"""Settings of ``cluster-bench`` runs (stored as ``config.json``) and the published numbers
the measured table is printed beside."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.errors import UsageError

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


@dataclass
class Config:
    """Every setting of a ``cluster-bench`` run.

    The deep methods share one pretrained ``d-500-500-2000-10`` autoencoder per seed (each copies
    it before fine-tuning), so their rows differ only in what follows the pretraining.
    """

    dataset: str = "digits"
    methods: tuple[str, ...] = METHODS
    split: str = "all"
    seeds: tuple[int, ...] = (0,)
    settings: DeepSettings = field(default_factory=DeepSettings)
    max_rows: int | None = None
    data_dir: str | None = None
    quick: bool = False
    seed: int = 0

    def __post_init__(self):
        self.methods = tuple(self.methods)
        self.seeds = tuple(self.seeds)
        if isinstance(self.settings, dict):
            self.settings = DeepSettings(**self.settings)

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
        if self.max_rows is not None and self.max_rows < s.n_clusters:
            raise UsageError(f"--max-rows {self.max_rows} is fewer rows than the {s.n_clusters} clusters")
        return self
