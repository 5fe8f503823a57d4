"""Settings of ``keras-clust cluster`` runs on a user's data (stored as ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass

from keras_clust.cluster.deep import METHODS, DeepSettings
from keras_clust.errors import UsageError

NAME = "cluster"
#: Rows a ``--quick`` run clusters (the first ones; the budgets are ``DeepSettings.quick()``).
QUICK_ROWS = 1000


@dataclass
class Config:
    """Every setting of a ``cluster`` run: the files, the method and its :class:`DeepSettings`."""

    data: str = ""
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
        if self.decoder and self.method != "idec":
            raise UsageError("--decoder is only used by --method idec; drop it")
        if self.settings.n_clusters < 2:
            raise UsageError(f"--k must be >= 2, got {self.settings.n_clusters}")
        return self
