"""Data: IDX reader, dataset registry, validation split, Gaussian mixtures, corruptions."""

from keras_clust.data.corruption import CORRUPTIONS, corrupt, gaussian_blur, gaussian_noise, salt_and_pepper
from keras_clust.data.gmm import (
    GaussianMixture,
    check_mixture,
    load_mixture,
    random_mixture,
    sample_mixture,
    save_mixture,
)
from keras_clust.data.idx import parse_idx, read_idx, write_idx
from keras_clust.data.lj_io import load_lj_dataset, save_lj_dataset
from keras_clust.data.lj_mc import Chains, LJSystem, check_kick, initial_configurations, lj_energy, move_delta
from keras_clust.data.lj_sampling import GammaDiagnostics, Simulation, simulate
from keras_clust.data.lj_stats import (
    autocorrelation,
    decorrelation_lag,
    density_profile,
    detect_equilibration,
    integrated_autocorrelation_time,
    mean_height,
)
from keras_clust.data.registry import (
    DATASETS,
    Dataset,
    DataSource,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist_sample,
    train_val_split,
)

__all__ = [
    "CORRUPTIONS", "corrupt", "gaussian_blur", "gaussian_noise", "salt_and_pepper",
    "GaussianMixture", "check_mixture", "load_mixture", "random_mixture", "sample_mixture", "save_mixture",
    "DATASETS", "DataSource", "Dataset", "load_dataset", "load_digits", "load_fashion_mnist",
    "load_mnist", "load_mnist_sample", "parse_idx", "read_idx", "train_val_split", "write_idx",
    "Chains", "GammaDiagnostics", "LJSystem", "Simulation", "check_kick", "initial_configurations", "lj_energy",
    "load_lj_dataset", "move_delta", "save_lj_dataset", "simulate",
    "autocorrelation", "decorrelation_lag", "density_profile", "detect_equilibration",
    "integrated_autocorrelation_time", "mean_height",
]  # fmt: skip

from keras_clust.data.vector_fields import FLOW_TYPES, FieldSet, generate_fields, pixel_centres  # noqa: E402
from keras_clust.data.vf_io import fields_source, load_fields, save_fields  # noqa: E402

__all__ += ["FLOW_TYPES", "FieldSet", "generate_fields", "pixel_centres", "fields_source", "load_fields", "save_fields"]
