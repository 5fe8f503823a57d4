"""The sorted-coordinate view with the pair decoder (``--coords-decoder pair``): its lattice from
the training data, its fit, its -ELBO, its configurations, and its files in the run folder.

The model is :func:`keras_clust.lj.pair_decoder.build_pair_vae`: the DeepSets encoder, the
heights by a MADE, each particle's position in the plane on a lattice whose logits hold a pair
potential with the particles below it, and a hard core just inside the training configurations'
closest approach (``cfg.coords_pair_core_margin``), so the core takes probability only off places
where no training particle sits.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_clust.apps.lj_fluid.config import STEPS_PER_EXECUTION, Config
from keras_clust.apps.lj_fluid.data import RunData
from keras_clust.errors import DataError
from keras_clust.files import atomic_write_text
from keras_clust.lj.pair_decoder import (
    PairVAE,
    build_pair_vae,
    draw_configurations,
    gibbs_sweeps,
    negative_elbo_terms,
)
from keras_clust.lj.pair_lattice import PairLattice, closest_centres
from keras_clust.seeding import model_seed
from keras_clust.training import FitResult, fit_model

#: The lattice's file in a run folder's ``models/``.
LATTICE_FILE = "coords_lattice.json"


def pair_lattice(cfg: Config, train_coords: np.ndarray) -> PairLattice:
    """The run's lattice, its core ``cfg.coords_pair_core_margin`` inside the training
    configurations' closest cell and sub-cell centres (:func:`closest_centres`)."""
    lattice = PairLattice(
        cfg.particles,
        cfg.dim,
        cfg.box,
        cfg.coords_pair_grid,
        cfg.coords_pair_subgrid,
        cfg.coords_pair_window,
    )
    closest = closest_centres(lattice, train_coords)
    margin = cfg.coords_pair_core_margin
    return replace(lattice, core=(max(closest[0] - margin, 0.0), max(closest[1] - margin, 0.0)))


def build(cfg: Config, lattice: PairLattice, seed: int) -> PairVAE:
    """The run's pair-decoder VAE on ``lattice`` (the settings ``coords_*`` of ``cfg``)."""
    return build_pair_vae(
        lattice,
        cfg.coords_latent,
        cfg.coords_set_units,
        cfg.coords_hidden,
        cfg.coords_pair_units,
        cfg.coords_pair_components,
        free_bits=cfg.coords_free_bits,
        beta=cfg.beta,
        seed=seed,
        name="coords_vae",
        signed_hinges=cfg.coords_pair_signed,
    )


def batches(model: PairVAE, coords: np.ndarray, batch_size: int, shuffle_seed: int | None = None):
    """The coordinates and their pair sums, batched (shuffled each epoch with a seed)."""
    ds = tf.data.Dataset.from_tensor_slices((tuple(model.inputs(coords)),))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(coords), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(2)


def train_pair(data: RunData, cfg: Config, seed: int, options: dict) -> tuple[PairVAE, FitResult]:
    """Build the pair-decoder VAE on the training split's lattice and fit it (validation on the
    validation split) with ``options`` of :func:`~keras_clust.training.fit_model` (epochs, early stopping,
    learning-rate halving); the caller has seeded the model."""
    model = build(cfg, pair_lattice(cfg, data.train.coords), seed)
    model.vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), steps_per_execution=STEPS_PER_EXECUTION)
    fit = fit_model(
        model.vae,
        batches(model, data.train.coords, cfg.batch_size, shuffle_seed=seed),
        None,
        batches(model, data.val.coords, cfg.batch_size),
        batch_size=cfg.batch_size,
        verbose=0,
        **options,
    )
    return model, fit


def pair_terms(model: PairVAE, coords: np.ndarray, cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """:func:`negative_elbo_terms` with the run's draws."""
    return negative_elbo_terms(model.encoder, model.likelihood, model.lattice, coords, cfg.elbo_draws, seed)


def configurations(
    model: PairVAE, test_codes: np.ndarray, latent: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted coordinates drawn given the test configurations' codes (reconstructions) and given
    prior draws (generated ones), each on a stream of its own derived from ``seed``."""
    return drawn(model, test_codes, seed, "pair-reconstructed"), drawn(model, latent, seed, "pair-generated")


def drawn(model: PairVAE, codes: np.ndarray, seed: int, stream: str) -> np.ndarray:
    """Sorted coordinates drawn (one pass) given ``codes``, on a stream of its own."""
    return draw_configurations(model, codes.astype(np.float32), model_seed(seed, stream))


def swept(model: PairVAE, codes: np.ndarray, drawn: np.ndarray, sweeps: int, seed: int, stream: str) -> np.ndarray:
    """``drawn`` (sorted coordinates given ``codes``, e.g. :func:`configurations`') after ``sweeps``
    sweeps of the decoder's own Gibbs sampler (:func:`gibbs_sweeps`), on a stream of its own."""
    return gibbs_sweeps(model, codes.astype(np.float32), drawn, (sweeps,), model_seed(seed, stream))[sweeps]


def save(model: PairVAE, run) -> None:
    """The models a later ``evaluate`` or generation needs, and the lattice (``models/``)."""
    run.save_model(model.mean_encoder, "coords_encoder.keras")
    run.save_model(model.encoder, "coords_posterior.keras")
    run.save_model(model.likelihood, "coords_scoring_decoder.keras")
    run.save_model(model.heights, "coords_heights.keras")
    run.save_model(model.background, "coords_background.keras")
    atomic_write_text(run.file(f"models/{LATTICE_FILE}"), json.dumps(asdict(model.lattice), indent=1))


def load_lattice(path: str | Path) -> PairLattice:
    """The lattice a run's pair decoder was trained on (``models/`` of the run folder ``path``).

    Raises:
        DataError: when the file is missing (the folder is not a complete run).
    """
    f = Path(path) / "models" / LATTICE_FILE
    if not f.is_file():
        raise DataError(f"{f} is missing; the run folder is incomplete (run the experiment again)")
    d = json.loads(f.read_text())
    return PairLattice(**{**d, "hinges": tuple(d["hinges"]), "core": None if d["core"] is None else tuple(d["core"])})
