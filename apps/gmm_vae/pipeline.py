"""The steps of ``gmm-vae``: train one VAE on one mixture, score what its prior generates, draw it.

Data are standardised per column (the training samples' mean and std) before the VAE
sees them; generated samples are mapped back to data units before they are scored, and
the ELBO is reported in nats of the data in its own units (the standardisation's log
Jacobian added back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np

from keras_clust.apps.gmm_vae.config import Config, MixtureData, ModelSettings
from keras_clust.cluster import KSelection, ModeCoverage, mode_coverage, select_k
from keras_clust.data.gmm import GaussianMixture, mixture_log_density
from keras_clust.elbo import negative_elbo
from keras_clust.experiment import Run
from keras_clust.generation import prior_samples
from keras_clust.mixture_prior import KLWarmup, PriorRefit, mixture_log_prior, prior_layers, sample_mixture_prior
from keras_clust.models import VAE, build_dense_vae, standardised_vae_models
from keras_clust.training import FitResult, fit_model
from keras_clust.viz import (
    latent_map,
    loss_curves,
    minmax_columns,
    plot_k_selection,
    plot_latent_map,
    plot_loss_curves,
    plot_true_vs_generated,
)

log = logging.getLogger("keras_clust.apps.gmm_vae")


@dataclass
class Trained:
    """A trained VAE with its serving wrappers and what it was trained with.

    Attributes:
        vae: The training models (standardised units).
        encoder, decoder: ``samples -> z_mean`` and ``latent -> samples`` in data units.
        fit: History and wall time of ``fit``.
        log_var: ``log sigma^2`` of ``p(x|z)`` per standardised feature: learned, fixed, or
            for ``mean-mse`` the implied ``log(beta * d / 2)``.
        model_seed: The seed set right before the model was built (:func:`seed_model`).
    """

    vae: VAE
    encoder: keras.Model
    decoder: keras.Model
    fit: FitResult
    log_var: np.ndarray
    model_seed: int

    @property
    def prior_layer(self):
        """The learned mixture prior's layer, or None for the N(0, I) prior."""
        layers = prior_layers(self.vae.encoder)
        return layers[0] if layers else None

    def prior_parameters(self) -> dict | None:
        """The learned prior as arrays (``means``, ``variances``, ``weights``), or None for N(0, I)."""
        if self.prior_layer is None:
            return None
        return dict(zip(("means", "variances", "weights"), self.prior_layer.prior(), strict=True))

    def latent_draws(self, n: int, seed: int) -> np.ndarray:
        """``n`` seeded draws from the model's prior: N(0, I) or its learned mixture."""
        return latent_draws(self.prior_parameters(), self.vae.decoder.input_shape[-1], n, seed)


def latent_draws(prior: dict | None, latent_dim: int, n: int, seed: int) -> np.ndarray:
    """``n`` seeded draws from a row's prior: N(0, I) when ``prior`` is None, else the learned
    mixture it holds (``means``, ``variances``, ``weights``, as a run's metrics store it)."""
    if prior is None:
        return prior_samples(n, latent_dim, seed)
    return sample_mixture_prior(prior["means"], prior["variances"], prior["weights"], n, seed)


def observation_log_var(m: VAE, s: ModelSettings, dim: int) -> np.ndarray:
    """``log sigma^2`` per standardised feature of the likelihood the model was trained with."""
    if s.recon_loss == "mean-mse":
        # mean_j (x_j - mu_j)^2 + beta * KL is beta times sum_j (x_j - mu_j)^2 / (2 sigma^2) + KL with
        # sigma^2 = beta * d / 2: the ELBO (up to constants) of that fixed-variance Gaussian
        return np.full(dim, np.log(s.beta * dim / 2.0))
    layer = m.vae.get_layer("likelihood")
    return np.broadcast_to(np.asarray(keras.ops.convert_to_numpy(layer.observation_log_var()), np.float64), (dim,))


def train_vae(key: str, s: ModelSettings, data: MixtureData, seed_model: Callable[[str], int]) -> Trained:
    """Re-seed (``seed_model(key/mixture)``, e.g. :meth:`keras_clust.experiment.Run.seed_model`),
    build, compile and fit one VAE on the standardised training samples."""
    derived = seed_model(f"{key}/{data.key}")
    dim = data.x.shape[1]
    gaussian = s.recon_loss == "gaussian"
    m = build_dense_vae(
        dim,
        s.latent_dim,
        s.hidden_units,
        s.beta,
        seed=derived,
        name=f"vae_{key}",
        likelihood="gaussian" if gaussian else None,
        sigma=s.sigma,
        prior_components=s.prior_components if s.prior == "mixture" else None,
    )
    steps = s.epochs * int(np.ceil(len(data.x) / s.batch_size))
    lr = keras.optimizers.schedules.CosineDecay(s.learning_rate, steps) if s.schedule == "cosine" else s.learning_rate
    # gaussian: the likelihood and KL layers hold the whole loss; mean-mse: the write-up's Keras loss
    # one compiled call per epoch (steps_per_execution): the same steps and numbers, less Python per step
    m.vae.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=None if gaussian else "mse",
        steps_per_execution=int(np.ceil(len(data.x) / s.batch_size)),
    )
    xs = data.standardise(data.x)
    callbacks = []
    if s.prior == "mixture":
        if s.kl_warmup:
            callbacks.append(KLWarmup(s.kl_warmup))
        if s.prior_refit:
            callbacks.append(PriorRefit(m.encoder, xs, s.prior_refit, start=s.kl_warmup, seed=derived))
    fit = fit_model(m.vae, xs, xs, None, epochs=s.epochs, batch_size=s.batch_size, verbose=0, callbacks=callbacks)
    encoder, decoder = standardised_vae_models(m, data.mean, data.std, name="gmm_vae")
    log_var = observation_log_var(m, s, dim)
    log.info(
        "[%s %s] loss %.3f -> %.3f (KL %.3f, sigma %s) in %.0f s",
        key,
        data.key,
        fit.history["loss"][0],
        fit.history["loss"][-1],
        fit.history["kl"][-1],
        np.round(np.exp(0.5 * log_var), 3),
        fit.seconds,
    )
    return Trained(m, encoder, decoder, fit, log_var, derived)


def loss_table_epochs(epochs: int) -> list[int]:
    """Epochs reported in the loss table: 1 and the quarters (1, 25, 50, 75, 100 for 100)."""
    return sorted({1, *(max(1, round(epochs * q / 4)) for q in (1, 2, 3, 4))})


def generate(decoder: keras.Model, latent: np.ndarray) -> np.ndarray:
    """Decode latent draws with a data-unit decoder: its means, as the write-up does."""
    return np.asarray(decoder.predict(latent, verbose=0))


def decoder_samples(means: np.ndarray, log_var: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """Samples of ``p(x | z)`` around decoded ``means`` (data units): the model's own observation
    noise, ``sigma = exp(log_var / 2)`` per standardised feature times the data's ``std``."""
    noise = np.random.default_rng(seed).standard_normal(means.shape)
    return (means + np.exp(0.5 * np.asarray(log_var)) * std * noise).astype(np.float32)


def coverage(generated: np.ndarray, mixture: GaussianMixture, cfg: Config) -> ModeCoverage:
    """:func:`mode_coverage` with the run's radii and the shares its mode counts need."""
    return mode_coverage(generated, mixture, cfg.threshold, cfg.min_share, cfg.chi2_quantile, cfg.mode_share)


def score(
    key: str, s: ModelSettings, t: Trained, data: MixtureData, cfg: Config, prior_seed: int, kmeans: bool = True
) -> tuple[dict, np.ndarray]:
    """Mode coverage of ``cfg.generated`` prior draws decoded to the decoder's means (``modes``)
    and to samples of its likelihood (``modes_samples``, the learned or fixed sigma), held-out
    ELBO (beta = 1, nats per sample in data units) and, with ``kmeans``, the write-up's KMeans
    choice of k on the means.

    Returns:
        The row's metrics and the generated samples (the decoder's means).
    """
    generated = generate(t.decoder, t.latent_draws(cfg.generated, prior_seed))
    cov = coverage(generated, data.mixture, cfg)
    noisy = decoder_samples(generated, t.log_var, data.std, prior_seed + 1)
    cov_samples = coverage(noisy, data.mixture, cfg)
    log_prior = None if t.prior_layer is None else mixture_log_prior(t.prior_layer)
    elbo = negative_elbo(
        t.vae.encoder,
        t.vae.decoder,
        data.standardise(data.x_heldout),
        t.log_var,
        draws=cfg.elbo_draws,
        seed=prior_seed,
        log_prior=log_prior,
    ).shifted(data.log_jacobian)
    loss = t.fit.history["loss"]
    metrics = {
        "settings": asdict(s),
        "model_seed": t.model_seed,
        "parameters": t.vae.vae.count_params(),
        "train_seconds": round(t.fit.seconds, 1),
        "loss_at": {str(e): loss[e - 1] for e in loss_table_epochs(t.fit.epochs_run)},
        "final_kl": t.fit.history["kl"][-1],
        "sigma": np.exp(0.5 * t.log_var).tolist(),
        "heldout_elbo": elbo.to_dict(),
        "modes": cov.to_dict(),
        "modes_samples": cov_samples.to_dict(),
        "prior": None if t.prior_layer is None else {k: v.tolist() for k, v in t.prior_parameters().items()},
    }
    if kmeans:
        ks = range(2, min(cfg.k_max, len(generated) - 1) + 1)
        metrics["kmeans_raw"] = select_k(generated, ks, random_state=cfg.seed).to_dict()
        metrics["kmeans_minmax"] = select_k(minmax_columns(generated), ks, random_state=cfg.seed).to_dict()
    log.info(
        "[%s %s] decoder means: modes %d (>= %g of their own share) / %d (>= %g %%) / %d (>= 1 sample) of %d; "
        "high quality %.1f %% (3 sd), %.1f %% (chi2 %.2f); decoder samples: modes %d, high quality %.1f %% (3 sd); "
        "-ELBO %.3f nats",
        key,
        data.key,
        cov.modes_captured_weighted,
        cfg.mode_share,
        cov.modes_captured_min_share,
        100 * cfg.min_share,
        cov.modes_captured,
        data.mixture.n_components,
        100 * cov.high_quality_fraction,
        100 * cov.high_quality_fraction_chi2,
        cfg.chi2_quantile,
        cov_samples.modes_captured_weighted,
        100 * cov_samples.high_quality_fraction,
        elbo.neg_elbo,
    )
    return metrics, generated


def true_nll(data: MixtureData) -> float:
    """``-mean log p(x)`` of the held-out samples under the true mixture: the floor of ``-ELBO``."""
    return float(-np.mean(mixture_log_density(data.mixture, data.x_heldout)))


def draw_figures(
    key: str,
    s: ModelSettings,
    t: Trained,
    data: MixtureData,
    generated: np.ndarray,
    k_scaled: KSelection,
    cfg: Config,
    run: Run,
) -> float:
    """Loss curves, true vs generated (data units and min-max scaled), the k selection
    :func:`score` made on the min-max scaled means, latent maps. Returns the t-SNE's seconds."""
    f = run.figures
    what = "Gaussian NLL (summed) + beta * KL" if s.recon_loss == "gaussian" else "mean MSE + beta * KL"
    plot_loss_curves(
        loss_curves(t.fit.history),
        f / f"loss_{key}.png",
        log_scale=s.recon_loss != "gaussian",
        title=f"{key}: loss = {what}",
    )
    plot_true_vs_generated(
        data.x,
        generated,
        f / f"samples_{key}.png",
        means=data.mixture.means,
        title=f"{key}: true (blue) vs {len(generated)} generated (orange), data units",
    )
    plot_true_vs_generated(
        minmax_columns(data.x),
        minmax_columns(generated),
        f / f"samples_{key}_minmax.png",
        title=f"{key}: each set min-max scaled per column on its own (the write-up's view)",
    )
    plot_k_selection(k_scaled, f / f"kselect_{key}.png", title=f"{key}: KMeans on min-max scaled generated samples")
    codes = t.encoder.predict(data.x, verbose=0)
    names = [f"component {i}" for i in range(data.mixture.n_components)]
    lm = latent_map(codes, data.labels, method="tsne", seed=cfg.seed, perplexity=cfg.perplexity)
    plot_latent_map(
        lm,
        f / f"latent_tsne_{key}.png",
        names,
        title=f"{key}: t-SNE (perplexity {cfg.perplexity:g}) of z_mean, {lm.seconds:.1f} s",
    )
    if s.latent_dim == 2:
        raw = latent_map(codes, data.labels, method="identity")
        plot_latent_map(raw, f / f"latent_raw_{key}.png", names, title=f"{key}: z_mean (2-D latent)")
    return lm.seconds
