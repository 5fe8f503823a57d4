"""Train the three VAEs and the coordinate network of ``lj-fluid``, and score configurations
with them (negative ELBO per configuration, codes, decoded matrices)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from keras_clust.apps.lj_fluid import pair
from keras_clust.apps.lj_fluid.config import COORDS_MIN_LR, STEPS_PER_EXECUTION, Config
from keras_clust.apps.lj_fluid.data import RunData, Split
from keras_clust.elbo import gaussian_nll_np, negative_elbo_per_sample
from keras_clust.lj.pair_decoder import PairVAE
from keras_clust.lj.representations import box_diagonal, contacts, grid_dataset
from keras_clust.lj.vae import build_coordinate_net, build_distance_vae, build_grid_vae, build_particle_set_vae
from keras_clust.models import VAE, build_dense_vae
from keras_clust.training import FitResult, fit_model

log = logging.getLogger("keras_clust.apps.lj_fluid")

#: The three representations, in the order the report lists them.
VIEWS = ("coords", "grid", "distance")
VIEW_NAMES = {
    "coords": "sorted coordinates (VAE)",  # dense or DeepSets encoder: the report names it
    "grid": "density grid (Conv VAE)",
    "distance": "distance matrix (Conv2D VAE)",
}
SCORE_BATCH = 256


@dataclass
class TrainedVAE:
    """One view's VAE, its fit and the seed it was built with."""

    view: str
    vae: VAE | PairVAE
    fit: FitResult
    seed: int


def _compile(model: keras.Model, cfg: Config, loss=None) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss, steps_per_execution=STEPS_PER_EXECUTION
    )


def view_inputs(view: str, split: Split, cfg: Config, batch_size: int | None = None, shuffle: bool = False):
    """What the ``view``'s encoder reads: arrays, or a grid pipeline for ``grid``."""
    if view == "coords":
        return split.coords
    if view == "distance":
        return split.matrices
    return grids(split.positions, cfg, batch_size or cfg.batch_size, shuffle=shuffle, seed=cfg.seed)


def grids(positions: np.ndarray, cfg: Config, batch_size: int, **options):
    """:func:`~keras_clust.lj.representations.grid_dataset` of the run's grid (cells, smoothing)."""
    return grid_dataset(positions, cfg.box, cfg.grid_cells, batch_size, smoothing=cfg.grid_smoothing, **options)


def view_arrays(view: str, split: Split, cfg: Config) -> np.ndarray:
    """The ``view``'s encoder inputs of ``split`` as one array (the grids computed all at once)."""
    if view != "grid":
        return view_inputs(view, split, cfg)
    return next(iter(grids(split.positions, cfg, len(split.positions)))).numpy()


def build_view(view: str, cfg: Config, seed: int) -> VAE:
    n = cfg.particles
    if view == "coords" and cfg.coords_encoder == "deepsets":
        return build_particle_set_vae(
            n,
            cfg.dim,
            cfg.coords_latent,
            cfg.coords_hidden,
            cfg.coords_set_units,
            cfg.beta,
            seed=seed,
            name="coords_vae",
            free_bits=cfg.coords_free_bits,
        )
    if view == "coords":
        return build_dense_vae(
            n * cfg.dim,
            cfg.coords_latent,
            cfg.coords_hidden,
            cfg.beta,
            seed=seed,
            name="coords_vae",
            likelihood="gaussian",
            sigma=None,
            free_bits=cfg.coords_free_bits,
        )
    if view == "grid":
        return build_grid_vae(
            cfg.grid_cells,
            cfg.dim,
            cfg.grid_filters,
            cfg.grid_kernel,
            cfg.grid_latent,
            cfg.beta,
            seed=seed,
            name="grid_vae",
            free_bits=cfg.grid_free_bits,
            blocks=cfg.grid_blocks,
            likelihood=cfg.grid_likelihood,
            log_var_scale=cfg.grid_log_var_scale,
            min_sigma=cfg.grid_sigma_floor,
            peak_power=cfg.grid_peak_power if cfg.grid_likelihood == "gaussian" else 0,
        )
    return build_distance_vae(
        n,
        cfg.distance_latent,
        beta=cfg.beta,
        seed=seed,
        name="distance_vae",
        free_bits=cfg.distance_free_bits,
        contacts_diagonal=box_diagonal(cfg.box, cfg.dim) if cfg.distance_likelihood == "contacts" else None,
    )


def fit_options(view: str, cfg: Config) -> dict:
    """The view's VAE's epochs, early stopping and learning-rate halving (keywords of
    :func:`~keras_clust.training.fit_model`): the sorted coordinates' own (``--coords-epochs``,
    ``--coords-patience``, ``--coords-lr-plateau``); the others' epochs and ``--patience`` at a constant rate."""
    if view == "coords":
        return {
            "epochs": cfg.coords_epochs,
            "patience": cfg.coords_patience,
            "halve_lr_after": cfg.coords_lr_plateau,
            "min_lr": COORDS_MIN_LR,
        }
    return {"epochs": {"grid": cfg.grid_epochs, "distance": cfg.distance_epochs}[view], "patience": cfg.patience}


def is_pair(view: str, cfg: Config) -> bool:
    """Whether the view is the sorted coordinates with the pair decoder (``--coords-decoder pair``)."""
    return view == "coords" and cfg.coords_decoder == "pair"


def train_view(view: str, data: RunData, cfg: Config, seed_model: Callable[[str], int]) -> TrainedVAE:
    """Re-seed, build and fit one view's VAE on the training split (validation on the
    validation split), through ``fit``; with a patience (:func:`fit_options`) it stops when the validation
    -ELBO stops improving and keeps its best epoch. The sorted coordinates with the pair decoder:
    :func:`~keras_clust.apps.lj_fluid.pair.train_pair` (a :class:`PairVAE`)."""
    seed = seed_model(f"{view}_vae")
    if is_pair(view, cfg):
        m, fit = pair.train_pair(data, cfg, seed, fit_options(view, cfg))
    else:
        m = build_view(view, cfg, seed)
        _compile(m.vae, cfg)
        x = view_inputs(view, data.train, cfg, shuffle=True)
        val = view_inputs(view, data.val, cfg)
        fit = fit_model(
            m.vae,
            x,
            None,
            val if view == "grid" else (val, None),
            batch_size=cfg.batch_size,
            verbose=0,
            **fit_options(view, cfg),
        )
    h, k = fit.history, fit.kept_epoch - 1
    log.info(
        "[%s] loss %.2f -> %.2f nats, kept epoch %d of %d (val %.2f, KL %.2f) in %.0f s",
        view,
        h["loss"][0],
        h["loss"][k],
        k + 1,
        fit.epochs_run,
        h["val_loss"][k],
        h["kl"][k],
        fit.seconds,
    )
    return TrainedVAE(view, m, fit, seed)


def train_coordinate_net(data: RunData, cfg: Config, seed_model: Callable[[str], int]) -> tuple[keras.Model, FitResult]:
    """The write-up's second model: true distance matrix -> coordinates / L (MSE)."""
    seed_model("coordinate_net")
    model = build_coordinate_net(cfg.particles, cfg.dim, cfg.coordinate_hidden)
    _compile(model, cfg, loss="mse")
    fit = fit_model(
        model,
        data.train.matrices,
        data.train.ordered / cfg.box,
        (data.val.matrices, data.val.ordered / cfg.box),
        epochs=cfg.coordinate_epochs,
        batch_size=cfg.batch_size,
        patience=cfg.patience,
        verbose=0,
    )
    k = fit.kept_epoch - 1
    log.info(
        "[coordinate net] MSE %.5f -> %.5f, kept epoch %d of %d (val %.5f) in %.0f s",
        fit.history["loss"][0],
        fit.history["loss"][k],
        k + 1,
        fit.epochs_run,
        fit.history["val_loss"][k],
        fit.seconds,
    )
    return model, fit


# --- scoring ----------------------------------------------------------------------------


def _batches(view: str, positions_or_array, cfg: Config):
    """Batches of the view's inputs as NumPy arrays (grids built batch by batch)."""
    if view == "grid":
        for batch in grids(positions_or_array, cfg, SCORE_BATCH):
            yield batch.numpy()
    else:
        for i in range(0, len(positions_or_array), SCORE_BATCH):
            yield positions_or_array[i : i + SCORE_BATCH]


def _source(view: str, split: Split):
    return {"coords": split.coords, "grid": split.positions, "distance": split.matrices}[view]


def trained_log_var(vae: keras.Model) -> np.ndarray | None:
    """``log sigma^2`` of a Gaussian likelihood layer (None for the Bernoulli grid and the pair
    decoder, whose likelihood has no such layer)."""
    try:
        layer = vae.get_layer("likelihood")
    except ValueError:
        return None
    if hasattr(layer, "observation_log_var"):
        return np.asarray(keras.ops.convert_to_numpy(layer.observation_log_var()), np.float64)
    return None


def save_likelihood(run_file, view: str, vae: keras.Model) -> None:
    """Store the learned ``log sigma^2`` beside the models (``models/<view>_likelihood.npy``)."""
    log_var = trained_log_var(vae)
    if log_var is not None:
        np.save(run_file(f"models/{view}_likelihood.npy"), log_var)


def likelihood_log_var(path, view: str) -> np.ndarray | None:
    from pathlib import Path

    f = Path(path) / "models" / f"{view}_likelihood.npy"
    return np.load(f) if f.is_file() else None


def _triangle(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    rows, cols = np.triu_indices(n, k=1)
    return x[:, rows, cols, 0] if x.ndim == 4 else x[:, rows, cols]


def _likelihood(
    view: str, x: np.ndarray, log_var: np.ndarray | None, cfg: Config
) -> Callable[[np.ndarray], np.ndarray]:
    """``decoder output -> -log p(x | z)`` per configuration of the batch ``x``, with the likelihood
    the view was trained with: Bernoulli over an occupancy grid's cells from logits (no
    ``log_var``), Gaussian with ``log_var`` over a smooth grid's cells (and their powers, with
    ``--grid-peak-power``), the sorted coordinates or the distinct distances (and their contacts,
    with ``--distance-likelihood contacts``)."""

    def nll(out: np.ndarray) -> np.ndarray:
        if view == "grid" and log_var is None:
            logits, t = out.reshape(len(x), -1), x.reshape(len(x), -1).astype(np.float64)
            return np.sum(np.logaddexp(0.0, logits) - t * logits, axis=-1)
        if view == "distance":
            t, mu = _triangle(x), _triangle(out)
            if cfg.distance_likelihood == "contacts":
                diagonal = box_diagonal(cfg.box, cfg.dim)
                t = np.concatenate([t, contacts(t.astype(np.float64) * diagonal)], axis=1)
                mu = np.concatenate([mu, contacts(mu.astype(np.float64) * diagonal)], axis=1)
        else:
            t, mu = x.reshape(len(x), -1), out.reshape(len(x), -1)
            if view == "grid" and cfg.grid_peak_power:
                t, mu = (np.concatenate([a, a.astype(np.float64) ** cfg.grid_peak_power], axis=1) for a in (t, mu))
        return gaussian_nll_np(t, mu, log_var)

    return nll


def scoring_decoder(t: TrainedVAE) -> keras.Model:
    """The decoder the -ELBO is computed with: an occupancy grid VAE's logits (so that no
    probability is rounded to 0 or 1 in float32), the reconstruction mean of the Gaussian ones."""
    if isinstance(t.vae, PairVAE):
        return t.vae.likelihood
    if t.view == "grid" and trained_log_var(t.vae.vae) is None:
        return t.vae.vae.get_layer("grid_vae_decoder_logits")
    return t.vae.decoder


def neg_elbo_terms(
    view: str,
    encoder: keras.Model,
    decoder: keras.Model,
    log_var: np.ndarray | None,
    split: Split,
    cfg: Config,
    draws: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Per-configuration ``recon`` = E_q[-log p(x|z)] (``draws`` seeded latent draws) and
    ``kl`` = KL(q(z|x) || N(0, I)) (closed form), and ``neg_elbo`` = their sum, in nats, with
    the likelihood the view was trained with: Bernoulli over the grid's cells from the
    decoder's logits, Gaussian with ``log_var`` over a smooth grid's cells, the sorted
    coordinates or the distinct distances (and their contacts, with ``--distance-likelihood
    contacts``). ``encoder`` gives ``[z_mean, z_log_var, ...]``. The same ``seed`` gives the same numbers:
    :func:`keras_clust.elbo.negative_elbo_per_sample` batch by batch, on one stream of draws.

    The three views' numbers are not comparable with each other: they are densities of
    different things (binary grids, coordinates / L, distances / box diagonal).
    """
    rng = np.random.default_rng(seed)  # one stream over the batches
    recon, kl = [], []
    for x in _batches(view, _source(view, split), cfg):
        nll = _likelihood(view, x, log_var, cfg)
        batch_recon, batch_kl = negative_elbo_per_sample(encoder, decoder, x, nll, draws, rng, batch_size=None)
        recon.append(batch_recon)
        kl.append(batch_kl)
    recon_a, kl_a = np.concatenate(recon), np.concatenate(kl)
    return {"recon": recon_a, "kl": kl_a, "neg_elbo": recon_a + kl_a}


def trained_terms(t: TrainedVAE, split: Split, cfg: Config, seed: int) -> dict[str, np.ndarray]:
    """:func:`neg_elbo_terms` of a VAE trained in this process (``cfg.elbo_draws`` draws)."""
    if isinstance(t.vae, PairVAE):
        return pair.pair_terms(t.vae, split.coords, cfg, seed)
    return neg_elbo_terms(
        t.view, t.vae.encoder, scoring_decoder(t), trained_log_var(t.vae.vae), split, cfg, cfg.elbo_draws, seed
    )


def posterior(view: str, encoder: keras.Model, split: Split, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """``z_mean`` and ``z_log_var`` of every configuration of ``split`` (float64)."""
    out = [
        [np.asarray(a, np.float64) for a in encoder.predict(x, verbose=0)[:2]]
        for x in _batches(view, _source(view, split), cfg)
    ]
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


def codes(view: str, vae: VAE, split: Split, cfg: Config) -> np.ndarray:
    """``z_mean`` of every configuration of ``split``."""
    return posterior(view, vae.encoder, split, cfg)[0]


def decode_matrices(vae: VAE, split: Split) -> np.ndarray:
    """The distance VAE's reconstruction of each matrix: decoder(z_mean), shape (S, N, N, 1)."""
    z = vae.mean_encoder.predict(split.matrices, batch_size=SCORE_BATCH, verbose=0)
    return np.asarray(vae.decoder.predict(z, batch_size=SCORE_BATCH, verbose=0))


def decode_grids(vae: VAE, positions: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Original grids and the decoded ones (occupancy probabilities, or a smooth grid's mean) for a
    few configurations."""
    x = next(iter(grids(positions, cfg, len(positions)))).numpy()
    z = vae.mean_encoder.predict(x, verbose=0)
    return x, np.asarray(vae.decoder.predict(z, verbose=0))
