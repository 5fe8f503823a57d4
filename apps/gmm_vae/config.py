"""Settings of ``gmm-vae``: the model presets, the run's config and the mixtures it trains on."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

import numpy as np

from keras_clust.app import positive_float
from keras_clust.data import GaussianMixture, load_mixture, random_mixture, sample_mixture
from keras_clust.errors import DataError, UsageError
from keras_clust.runs import model_seed

NAME = "gmm-vae"
RECON_LOSSES = ("gaussian", "mean-mse")


@dataclass(frozen=True)
class ModelSettings:
    """Settings of one VAE (a row of the comparison).

    ``recon_loss``: ``gaussian`` is ``-log N(x; decoder(z), sigma^2)`` summed over the
    (standardised) features, constants included, so that ``beta = 1`` trains the ELBO
    itself; ``sigma`` None learns one sigma per feature, a number fixes it. ``mean-mse`` is
    the write-up's objective, Keras ``loss="mse"`` (the mean over features) plus the KL:
    the ELBO of a Gaussian with a fixed variance of ``beta * d / 2`` per standardised feature
    (``d / 2`` at beta = 1), scaled by beta.
    """

    latent_dim: int = 2
    hidden_units: tuple[int, ...] = (64, 32)
    beta: float = 1.0
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "constant"
    recon_loss: str = "gaussian"
    sigma: float | None = None

    @classmethod
    def from_dict(cls, raw: dict) -> ModelSettings:
        """Settings stored in a run's ``config.json``/``metrics.json`` (exact keys)."""
        check_keys(raw, cls, "model settings")
        return cls(**{**raw, "hidden_units": tuple(raw["hidden_units"])})


#: The write-up's model and training (dimz 2, Dense 64-32, Adam 1e-3, 100 epochs, batch
#: 32, beta 1) with the reconstruction term written as a Gaussian likelihood (learned sigma).
REPORT = ModelSettings()
#: The write-up's exact objective: Keras ``loss="mse"`` (mean over features) + KL.
REPORT_MSE = replace(REPORT, recon_loss="mean-mse")
#: Chosen by ``gmm-vae tune`` on mixture seeds 100-104 (apps/gmm_vae/preset_sweep.md),
#: never on the mixtures the run reports.
TUNED = ModelSettings(hidden_units=(128, 128), epochs=1000, schedule="cosine")
PRESETS = {"report-mse": REPORT_MSE, "report": REPORT, "tuned": TUNED}
#: Candidates of ``gmm-vae tune`` (the preset sweep), all with the Gaussian ELBO at beta 1.
SWEEP = {
    "report": REPORT,
    "64-32-300-cosine": replace(REPORT, epochs=300, schedule="cosine"),
    "128-128-300-cosine": ModelSettings(hidden_units=(128, 128), epochs=300, schedule="cosine"),
    "128-128-300-cosine-z3": ModelSettings(latent_dim=3, hidden_units=(128, 128), epochs=300, schedule="cosine"),
    "128-128-1000-cosine": ModelSettings(hidden_units=(128, 128), epochs=1000, schedule="cosine"),
}
SWEEP_MIXTURE_SEEDS = (100, 101, 102, 103, 104)
QUICK_EPOCHS = 20
QUICK_MIXTURES = 2
QUICK_SAMPLES = 500


@dataclass
class Config:
    """Every setting of a ``gmm-vae run`` (stored as ``config.json``).

    Version 2 (this one) added the mixture seeds, the reconstruction loss and the chi-square
    radius; version-1 runs (one mixture, mean MSE only, other metrics) are not migrated:
    re-run them.
    """

    CONFIG_VERSION: ClassVar[int] = 2

    dim: int = 3
    components: int = 10
    samples: int = 1000
    box: float = 10.0
    mixture_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    mixture_file: str | None = None
    model: ModelSettings = field(default_factory=lambda: REPORT)
    preset: str = "report"
    comparison: bool = True
    generated: int = 1000
    threshold: float = 3.0
    min_share: float = 0.01
    chi2_quantile: float = 0.99
    elbo_draws: int = 10
    k_max: int = 10
    perplexity: float = 5.0
    quick: bool = False
    seed: int = 0
    export: bool = True
    models_dir: str = "saved_models"

    def preset_settings(self, name: str) -> ModelSettings:
        """A preset as this run trains it (``--quick`` caps its epochs)."""
        s = PRESETS[name]
        return replace(s, epochs=min(s.epochs, QUICK_EPOCHS)) if self.quick else s

    @property
    def primary(self) -> str:
        """Row name of this run's own settings: the preset's name, or ``this_run`` when
        options made them differ from every preset."""
        return next((n for n in PRESETS if self.model == self.preset_settings(n)), "this_run")

    def models(self) -> dict[str, ModelSettings]:
        """The VAEs this run trains, in the order of :data:`PRESETS`: this run's own settings
        and, unless ``--no-comparison``, every preset beside them."""
        out = {self.primary: self.model}
        if self.comparison:
            out.update({n: self.preset_settings(n) for n in PRESETS if n != self.primary})
        order = [*PRESETS, "this_run"]
        return dict(sorted(out.items(), key=lambda kv: order.index(kv[0])))

    def __post_init__(self):
        if isinstance(self.model, dict):  # read back from config.json, strictly
            self.model = ModelSettings.from_dict(self.model)
        self.mixture_seeds = tuple(self.mixture_seeds)


def check_keys(raw: dict, cls, what: str) -> None:
    """Raise :class:`DataError` when ``raw`` lacks a field of the dataclass ``cls`` or has
    a key that is not one."""
    names = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(raw) - names), sorted(names - set(raw))
    if unknown or missing:
        raise DataError(
            f"{what}: unknown keys {unknown}, missing keys {missing}; the run was written by another "
            "version of keras-clust (re-run it, or migrate its config.json by hand)"
        )


def sigma_option(text: str) -> str | float:
    """argparse type: ``learned`` or a fixed sigma > 0."""
    return "learned" if text.strip() == "learned" else positive_float(text)


def config_from_args(args: argparse.Namespace) -> Config:
    base = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ModelSettings.__dataclass_fields__ if getattr(args, k, None) is not None}
    if args.sigma is not None:
        overrides["sigma"] = None if args.sigma == "learned" else args.sigma
    model = replace(base, **overrides)
    if model.recon_loss == "mean-mse" and model.sigma is not None:
        raise UsageError("--sigma applies to --recon-loss gaussian; mean-mse has its fixed variance beta*d/2")
    cfg = Config(
        dim=args.dim,
        components=args.components,
        samples=args.samples,
        box=args.box,
        mixture_seeds=args.mixture_seeds,
        mixture_file=str(args.mixture) if args.mixture else None,
        model=model,
        preset=args.preset,
        comparison=not args.no_comparison,
        generated=args.generated,
        threshold=args.threshold,
        min_share=args.min_share,
        chi2_quantile=args.chi2_quantile,
        elbo_draws=args.elbo_draws,
        k_max=args.k_max,
        perplexity=args.perplexity,
        quick=args.quick,
        seed=args.seed,
        export=not args.no_export,
        models_dir=str(args.models_dir),
    )
    if cfg.mixture_file:
        cfg.mixture_seeds = ()
    if cfg.quick:
        cfg.model = replace(cfg.model, epochs=min(cfg.model.epochs, QUICK_EPOCHS))
        cfg.samples, cfg.generated = min(cfg.samples, QUICK_SAMPLES), min(cfg.generated, QUICK_SAMPLES)
        cfg.mixture_seeds = cfg.mixture_seeds[:QUICK_MIXTURES]
    if cfg.k_max < 2:
        raise UsageError("--k-max must be >= 2")
    return cfg


@dataclass
class MixtureData:
    """One mixture of a run, its training samples and held-out samples.

    Attributes:
        key: ``m<seed>`` for a random mixture, ``file`` for ``--mixture``.
        mixture_seed: Seed of the random mixture (None for a file).
        source: How the mixture was made, for the report.
        x, labels: Training samples and their components.
        x_heldout: Fresh samples of the same mixture (the ELBO and the true NLL are measured on them).
        x_reference: As many fresh samples as a run generates: the mixture itself scored by the
            mode metric, the ceiling of every row (a component lighter than the minimum share
            is rarely captured even by the mixture's own samples).
    """

    key: str
    mixture_seed: int | None
    source: str
    mixture: GaussianMixture
    x: np.ndarray
    labels: np.ndarray
    x_heldout: np.ndarray
    x_reference: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.x.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.x.std(axis=0) + 1e-8

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` with the training samples' statistics."""
        return (x - self.mean) / self.std

    @property
    def log_jacobian(self) -> float:
        """``sum_j log std_j``: nats added to a density of standardised data to get data units."""
        return float(np.sum(np.log(self.std)))


def mixture_data(cfg: Config, mixture_seed: int | None) -> MixtureData:
    """The mixture of seed ``mixture_seed`` (or ``cfg.mixture_file`` when it is None), its
    training samples (seed: the mixture seed, or the run seed for a file), held-out and
    reference samples (seeds derived from that one)."""
    if mixture_seed is None:
        if not cfg.mixture_file:
            raise UsageError("a mixture needs a seed or a mixture file")
        mixture, key, data_seed, source = load_mixture(cfg.mixture_file), "file", cfg.seed, cfg.mixture_file
    else:
        mixture = random_mixture(cfg.dim, cfg.components, cfg.box, seed=mixture_seed)
        key, data_seed = f"m{mixture_seed}", mixture_seed
        source = (
            f"random, seed {mixture_seed}: means uniform in [-{cfg.box:g}, {cfg.box:g}]^{cfg.dim}, identity "
            "covariances, flat-Dirichlet weights"
        )
    x, labels = sample_mixture(mixture, cfg.samples, seed=data_seed)
    heldout, _ = sample_mixture(mixture, cfg.samples, seed=model_seed(data_seed, "held-out"))
    reference, _ = sample_mixture(mixture, cfg.generated, seed=model_seed(data_seed, "reference"))
    return MixtureData(key, mixture_seed, source, mixture, x, labels, heldout, reference)


def run_mixtures(cfg: Config) -> list[int | None]:
    """The mixtures a run trains on: its mixture seeds, or ``[None]`` for ``--mixture``."""
    return [None] if cfg.mixture_file else list(cfg.mixture_seeds)
