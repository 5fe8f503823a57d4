"""Settings of ``lj-fluid``: the simulation, the three VAEs and the analyses (``config.json``)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from typing import ClassVar

from keras_clust.errors import UsageError
from keras_clust.lj.representations import grid_cells

NAME = "lj-fluid"

#: Defaults of the simulation (the write-up: 30 particles in a 3-D box of side 5 sigma, T = 1).
PARTICLES, BOX, DIM, TEMPERATURE = 30, 5.0, 3, 1.0
GAMMAS = (1.0, 2.0, 4.0)
SAMPLES = 8000
#: gamma simulated beside the training ones and held out of training (anomaly detection (i)).
HOLDOUT_GAMMA = 0.5
#: Default grid: 32 cells across the box (h = 0.15625 sigma for L = 5; the write-up's h = 0.1 gives
#: 50 cells, which three 2x poolings cannot halve, and 48 cells cost ~3x the time per epoch on 2 cores).
GRID_CELLS, QUICK_GRID_CELLS = 32, 16

QUICK = {"samples": 600, "epochs": 2, "preliminary_sweeps": 300, "replicas": 4}


def _v1_to_v2(old: dict) -> dict:
    """Runs written before ``--cluster``: KMeans only."""
    return {**old, "cluster": "kmeans"}


@dataclass
class Config:
    """Every setting of an ``lj-fluid run``.

    ``samples`` counts the configurations of the training gammas together (split evenly
    between them); the held-out gamma gets as many as one training gamma. ``dataset`` (an
    ``.npz`` written by ``simulate`` or a ``simulate`` run folder) replaces the simulation.
    ``cluster`` (``--cluster``, version 2) adds DEC, IDEC or N2D on each view's encoder.
    """

    CONFIG_VERSION: ClassVar[int] = 2
    MIGRATIONS: ClassVar[dict] = {1: _v1_to_v2}

    dataset: str | None = None
    particles: int = PARTICLES
    box: float = BOX
    dim: int = DIM
    temperature: float = TEMPERATURE
    gammas: tuple[float, ...] = GAMMAS
    holdout_gamma: float | None = HOLDOUT_GAMMA
    samples: int = SAMPLES
    replicas: int = 16
    kick: float = 0.2
    preliminary_sweeps: int = 4000
    threshold: float = 0.1
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    # sorted-coordinate dense VAE (the write-up: 60 -> 45 -> 22 -> 2 for 30 particles in 2-D)
    coords_hidden: tuple[int, ...] = (45, 22)
    coords_latent: int = 2
    coords_epochs: int = 200
    # density-grid Conv VAE (grid_h None: L / 32 cells, L / 16 with --quick)
    grid_h: float | None = None
    grid_filters: tuple[int, ...] = (8, 16, 32)
    grid_kernel: int = 3
    grid_latent: int = 16
    grid_epochs: int = 20
    # distance-matrix Conv2D VAE and the coordinate network
    distance_latent: int = 64
    distance_epochs: int = 150
    coordinate_hidden: tuple[int, ...] = (512, 256)
    coordinate_epochs: int = 150
    beta: float = 1.0
    batch_size: int = 64
    learning_rate: float = 1e-3
    # analyses
    elbo_draws: int = 8
    overlap_distance: float = 0.5
    invalid_distance: float = 0.8
    cluster: str = "kmeans"
    quick: bool = False
    seed: int = 0
    export: bool = True
    models_dir: str = "saved_models"

    def __post_init__(self):
        for name in ("gammas", "coords_hidden", "grid_filters", "coordinate_hidden"):
            setattr(self, name, tuple(getattr(self, name)))

    @property
    def cell_side(self) -> float:
        """The grid's cell side h as asked (``--grid-h``, or L / 32; L / 16 with ``--quick``)."""
        if self.grid_h is not None:
            return self.grid_h
        return self.box / (QUICK_GRID_CELLS if self.quick else GRID_CELLS)

    @property
    def grid_cells(self) -> int:
        return grid_cells(self.box, self.cell_side, len(self.grid_filters))

    def check(self) -> Config:
        """Checks that need several settings together; returns self."""
        if self.holdout_gamma is not None and self.holdout_gamma in self.gammas and self.dataset is None:
            raise UsageError(f"--holdout-gamma {self.holdout_gamma:g} is also a training gamma; pick another")
        if self.val_fraction + self.test_fraction >= 0.5:
            raise UsageError("--val-fraction + --test-fraction must stay below 0.5")
        if len(self.grid_filters) != 3:
            raise UsageError(
                f"--grid-filters needs three filter counts (one per Conv block), got "
                f"{','.join(map(str, self.grid_filters))}"
            )
        self.grid_cells  # noqa: B018 - raises a one-line UsageError for an h the poolings cannot use
        return self


def gamma_list(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated distinct gammas >= 0, e.g. ``1,2,4``."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"needs distinct numbers >= 0, e.g. 1,2,4; got {text!r}")
    return values


def optional_gamma(text: str) -> float | str | None:
    """argparse type: ``none``, ``auto`` or a gamma >= 0."""
    t = text.strip().lower()
    if t in ("none", "auto"):
        return None if t == "none" else "auto"
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number >= 0, 'auto' or 'none'") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def quick_config(cfg: Config) -> Config:
    """``--quick``: a few hundred configurations, a coarse grid, two epochs per model."""
    e = QUICK["epochs"]
    return replace(
        cfg,
        samples=min(cfg.samples, QUICK["samples"]),
        replicas=min(cfg.replicas, QUICK["replicas"]),
        preliminary_sweeps=min(cfg.preliminary_sweeps, QUICK["preliminary_sweeps"]),
        elbo_draws=2,
        coords_epochs=min(cfg.coords_epochs, e),
        grid_epochs=min(cfg.grid_epochs, e),
        distance_epochs=min(cfg.distance_epochs, e),
        coordinate_epochs=min(cfg.coordinate_epochs, e),
    )
