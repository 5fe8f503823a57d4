"""Settings of ``keras-clust cluster`` runs on a user's data (stored as ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.cluster.options import deep_config_defaults
from keras_clust.errors import UsageError
from keras_clust.option_types import positive_int
from keras_clust.settings import export_setting, models_dir_setting, optional_setting, seed_setting, setting

NAME = "cluster"
#: Rows a ``--quick`` run clusters (the first ones; the budgets are ``DeepSettings.quick()``).
QUICK_ROWS = 1000
#: The :class:`~keras_clust.cluster.options.DeepOptions` a ``cluster`` run offers.
DEEP_OPTIONS = ("n_clusters", "k_range", "k_criterion", "pretrain_epochs", "max_iter", "tol", "n_neighbors")


@dataclass
class Config:
    """Every setting of a ``cluster`` run: the files, the method and its :class:`DeepSettings`.

    Version 2 names the rows' file ``data_file``: ``config.json`` keeps ``data`` for where the
    data came from (as every experiment does), which hid version 1's ``data`` field.
    """

    CONFIG_VERSION: ClassVar[int] = 2

    data_file: str = setting(
        "",
        "rows to cluster: .npy, .npz (array 'x') or IDX (.gz) file",
        flag="--data",
        metavar="DATA",
        default_text="none; required but with --resume",
    )
    labels: str | None = setting(None, "true labels, one per row (.npy, .npz 'y' or IDX), for scores")
    encoder: str | None = optional_setting(
        "a .keras file, a SavedModel folder or saved_models/<name>",
        default_text="train the d-500-500-2000-10 autoencoder on the data",
    )
    decoder: str | None = setting(None, "the encoder's decoder (.keras), for --method idec")
    method: str = setting("n2d", "clustering method", choices=METHODS)
    settings: DeepSettings = None  # type: ignore[assignment]  # its options: DEEP_OPTIONS
    max_rows: int | None = setting(None, "cluster only the first rows", type=positive_int, default_text="all")
    name: str | None = optional_setting("name of the exported SavedModel", default_text="cluster_<method>")
    quick: bool = setting(False, "smoke run: the first 1,000 rows, 2 epochs")
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()

    def __post_init__(self):
        if self.settings is None:
            self.settings = DeepSettings()
        elif isinstance(self.settings, dict):
            self.settings = DeepSettings(**self.settings)

    def option_defaults(self) -> dict:
        """The options that repeat this config (``--config``): its settings and its DEC/IDEC/N2D ones."""
        return deep_config_defaults(self, DEEP_OPTIONS)

    @property
    def model_name(self) -> str:
        """Name of the exported SavedModel."""
        return self.name or f"cluster_{self.method}"

    def check(self) -> Config:
        if self.method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.decoder and (self.method != "idec" or not self.encoder):
            raise UsageError(
                "--decoder goes with --encoder and --method idec (without --encoder the autoencoder "
                "trained here brings its own decoder); drop it"
            )
        if self.method == "idec" and self.encoder and not self.decoder:
            raise UsageError("--method idec with --encoder needs that encoder's decoder too: add --decoder FILE.keras")
        s = self.settings
        if s.n_clusters is not None and s.n_clusters < 2:
            raise UsageError(f"--k must be auto or >= 2, got {s.n_clusters}")
        if s.n_neighbors < 2 or not 0 <= s.tol < 1:
            raise UsageError(f"--n-neighbors must be >= 2 and --tol in [0, 1), got {s.n_neighbors} and {s.tol}")
        need = s.n_clusters if s.n_clusters is not None else s.k_range[0] + 1
        if self.max_rows is not None and self.max_rows < need:
            k = s.n_clusters if s.n_clusters is not None else f"auto (from {s.k_range[0]})"
            raise UsageError(f"--max-rows {self.max_rows} is fewer rows than --k {k} clusters")
        return self
