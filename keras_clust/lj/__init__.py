"""The Lennard-Jones domain: a fluid under gravity simulated by Metropolis Monte Carlo.

The engine is exported here (numba, no TensorFlow): the system and its kernels
(:mod:`~keras_clust.lj.monte_carlo`), sampling with decorrelation diagnostics
(:mod:`~keras_clust.lj.sampling`, :mod:`~keras_clust.lj.checkpoint`,
:mod:`~keras_clust.lj.statistics`), the dataset file (:mod:`~keras_clust.lj.dataset`),
the representations a VAE reads (:mod:`~keras_clust.lj.representations`), the
geometry of recovered configurations (:mod:`~keras_clust.lj.geometry`) and the repair of
decoded ones (:mod:`~keras_clust.lj.overlaps`). The VAEs
(:mod:`keras_clust.lj.vae`, and the coordinate VAE whose decoder keeps particles apart,
:mod:`keras_clust.lj.pair_decoder` with its lattice :mod:`keras_clust.lj.pair_lattice`;
TensorFlow) and figures (:mod:`keras_clust.lj.figures`, matplotlib) are imported from their
modules.
"""

from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.geometry import classical_mds, kabsch_align, min_pair_distance, rmsd
from keras_clust.lj.monte_carlo import Chains, LJSystem, check_kick, initial_configurations, lj_energy, move_delta
from keras_clust.lj.overlaps import separate_overlaps
from keras_clust.lj.results import GammaDiagnostics, Simulation
from keras_clust.lj.sampling import simulate
from keras_clust.lj.statistics import (
    autocorrelation,
    decorrelation_lag,
    density_profile,
    detect_equilibration,
    integrated_autocorrelation_time,
    mean_height,
)

__all__ = [
    "Chains",
    "GammaDiagnostics",
    "LJSystem",
    "Simulation",
    "autocorrelation",
    "check_kick",
    "classical_mds",
    "decorrelation_lag",
    "density_profile",
    "detect_equilibration",
    "initial_configurations",
    "integrated_autocorrelation_time",
    "kabsch_align",
    "lj_energy",
    "load_lj_dataset",
    "mean_height",
    "min_pair_distance",
    "move_delta",
    "rmsd",
    "save_lj_dataset",
    "separate_overlaps",
    "simulate",
]
