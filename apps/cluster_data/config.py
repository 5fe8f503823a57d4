"""Settings of ``keras-clust cluster`` runs on a user's data (stored as ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.errors import UsageError

NAME = "cluster"
#: Rows a ``--quick`` run clusters (the first ones; the budgets are ``DeepSettings.quick()``).
QUICK_ROWS = 1000


@dataclass
class Config:
    """Every setting of a ``cluster`` run: the files, the method and its :class:`DeepSettings`.

    Version 2 names the rows' file ``data_file``: ``config.json`` keeps ``data`` for where the
    data came from (as every experiment does), which hid version 1's ``data`` field.
    """

    CONFIG_VERSION: ClassVar[int] = 2

    data_file: str = ""
    labels: str | None = None
    encoder: str | None = None
    decoder: str | None = None
    method: str = "n2d"
    settings: DeepSettings = None  # type: ignore[assignment]
    max_rows: int | None = None
    name: str | None = None
    quick: bool = False
    seed: int = 0
    export: bool = True
    models_dir: str = "saved_models"

    def __post_init__(self):
        if self.settings is None:
            self.settings = DeepSettings()
        elif isinstance(self.settings, dict):
            self.settings = DeepSettings(**self.settings)

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
        if s.n_clusters < 2:
            raise UsageError(f"--k must be >= 2, got {s.n_clusters}")
        if s.n_neighbors < 2 or not 0 <= s.tol < 1:
            raise UsageError(f"--n-neighbors must be >= 2 and --tol in [0, 1), got {s.n_neighbors} and {s.tol}")
        if self.max_rows is not None and self.max_rows < s.n_clusters:
            raise UsageError(f"--max-rows {self.max_rows} is fewer rows than --k {s.n_clusters} clusters")
        return self
