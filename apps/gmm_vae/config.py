"""Settings of ``gmm-vae``: the model presets, the run's config and the mixtures it trains on."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

import numpy as np

from keras_clust.data import GaussianMixture, load_mixture, random_mixture, sample_mixture
from keras_clust.errors import DataError, UsageError
from keras_clust.option_types import (
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    seed_list,
    share,
    share_up_to_one,
)
from keras_clust.seeding import model_seed
from keras_clust.settings import (
    config_defaults,
    config_from_args,
    declarations,
    export_setting,
    models_dir_setting,
    optional_setting,
    path_setting,
    quick_setting,
    seed_setting,
    setting,
)

NAME = "gmm-vae"
RECON_LOSSES = ("gaussian", "mean-mse")
PRIORS = ("normal", "mixture")
#: How ``--help`` shows the default of a model option: the chosen preset's value.
PRESET_VALUE = "the --preset's"


def sigma_option(text: str) -> str | float:
    """argparse type: ``learned`` or a fixed sigma > 0."""
    return "learned" if text.strip() == "learned" else positive_float(text)


@dataclass(frozen=True)
class ModelSettings:
    """Settings of one VAE (a row of the comparison).

    ``recon_loss``: ``gaussian`` is ``-log N(x; decoder(z), sigma^2)`` summed over the
    (standardised) features, constants included, so that ``beta = 1`` trains the ELBO
    itself; ``sigma`` None learns one sigma per feature, a number fixes it. ``mean-mse`` is
    the write-up's objective, Keras ``loss="mse"`` (the mean over features) plus the KL:
    the ELBO of a Gaussian with a fixed variance of ``beta * d / 2`` per standardised feature
    (``d / 2`` at beta = 1), scaled by beta.

    Each field is also a model option of ``gmm-vae run`` (``--latent-dim`` ...): None unless
    given, and given, it overrides the ``--preset``'s value (:func:`model_settings`).
    """

    latent_dim: int = setting(2, "latent size dimz", type=positive_int, default_text=PRESET_VALUE)
    hidden_units: tuple[int, ...] = setting(
        (64, 32), "hidden widths, e.g. 128,128", type=positive_int_list, default_text=PRESET_VALUE
    )
    beta: float = setting(1.0, "weight of the KL term", type=positive_float, default_text=PRESET_VALUE)
    epochs: int = setting(100, "training epochs", type=positive_int, default_text=PRESET_VALUE)
    batch_size: int = setting(32, "batch size", type=positive_int, default_text=PRESET_VALUE)
    learning_rate: float = setting(1e-3, "Adam learning rate", type=positive_float, default_text=PRESET_VALUE)
    schedule: str = setting(
        "constant", "learning-rate schedule", choices=("constant", "cosine"), default_text=PRESET_VALUE
    )
    recon_loss: str = setting(
        "gaussian",
        "gaussian: -log N(x; decoder(z), sigma^2) summed over features (beta 1 = the ELBO); mean-mse: Keras "
        "'mse' (mean over features), the write-up's objective",
        choices=RECON_LOSSES,
        default_text=PRESET_VALUE,
    )
    sigma: float | None = optional_setting(
        "gaussian only: 'learned' (one sigma per standardised feature) or a fixed sigma > 0",
        type=sigma_option,
        metavar="learned|S",
        default_text=PRESET_VALUE,
    )

    prior: str = setting(
        "normal",
        "normal: N(0, I); mixture: a learned Gaussian mixture of --prior-components, refitted by EM to the "
        "codes every --prior-refit epochs, generated samples drawn from it",
        choices=PRIORS,
        default_text=PRESET_VALUE,
    )
    prior_components: int = setting(
        16, "mixture prior only: its components", type=positive_int, default_text=PRESET_VALUE
    )
    prior_refit: int = setting(
        25,
        "mixture prior only: epochs between EM refits of the prior to the codes (0: gradient steps only)",
        type=non_negative_int,
        default_text=PRESET_VALUE,
    )
    kl_warmup: int = setting(
        0,
        "epochs over which the KL's weight rises from 0 to beta (0: beta from the start)",
        type=non_negative_int,
        default_text=PRESET_VALUE,
    )

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
#: TUNED's network and training before the mixture prior (the sweep's choice of 2026-11-25).
NORMAL_PRIOR_1000 = ModelSettings(hidden_units=(128, 128), epochs=1000, schedule="cosine")
#: That network and training with a learned mixture prior (16 components, refitted by EM every
#: 25 epochs) and 50 epochs of KL warm-up: designed on random mixtures of seeds 200-204 (3-D) and
#: 300-304 (2-D, narrow modes), never on the reported ones (docs/gmm-vae.md); the base of the
#: sweep's mixture-prior candidates.
MIXTURE_PRIOR = replace(NORMAL_PRIOR_1000, prior="mixture", kl_warmup=50)
#: Candidates of ``gmm-vae tune`` (the preset sweep), all with the Gaussian ELBO at beta 1.
SWEEP = {
    "report": REPORT,
    "64-32-300-cosine": replace(REPORT, epochs=300, schedule="cosine"),
    "128-128-300-cosine": ModelSettings(hidden_units=(128, 128), epochs=300, schedule="cosine"),
    "128-128-300-cosine-z3": ModelSettings(latent_dim=3, hidden_units=(128, 128), epochs=300, schedule="cosine"),
    "128-128-1000-cosine": NORMAL_PRIOR_1000,
    "128-128-300-cosine-mixture": replace(MIXTURE_PRIOR, epochs=300),
    "128-128-1000-cosine-mixture": MIXTURE_PRIOR,
    "128-128-1000-cosine-mixture-k32": replace(MIXTURE_PRIOR, prior_components=32),
    "128-128-1000-cosine-mixture-refit10": replace(MIXTURE_PRIOR, prior_refit=10),
}
#: The default: chosen by ``gmm-vae tune`` on mixture seeds 100-104 (apps/gmm_vae/preset_sweep.md),
#: never on the mixtures the run reports.
TUNED = SWEEP["128-128-1000-cosine-mixture-k32"]
PRESETS = {"report-mse": REPORT_MSE, "report": REPORT, "tuned": TUNED}
SWEEP_MIXTURE_SEEDS = (100, 101, 102, 103, 104)
QUICK_EPOCHS = 20
QUICK_MIXTURES = 2
QUICK_SAMPLES = 500


def quick_settings(s: ModelSettings) -> ModelSettings:
    """``--quick``'s version of a model: at most :data:`QUICK_EPOCHS` epochs, and a KL warm-up
    cut in the same proportion (a warm-up longer than training would never reach beta)."""
    epochs = min(s.epochs, QUICK_EPOCHS)
    return replace(s, epochs=epochs, kl_warmup=s.kl_warmup * epochs // s.epochs)


def describe(s: ModelSettings) -> str:
    """A model's settings in one line (``--help`` of ``--preset``)."""
    sigma = "learned" if s.sigma is None else f"{s.sigma:g}"
    prior = (
        f"mixture prior of {s.prior_components} refitted every {s.prior_refit} epochs"
        if s.prior == "mixture"
        else "N(0, I) prior"
    )
    warmup = f", KL warm-up {s.kl_warmup} epochs" if s.kl_warmup else ""
    return (
        f"latent {s.latent_dim}, hidden {','.join(map(str, s.hidden_units))}, beta {s.beta:g}, {s.epochs} epochs, "
        f"batch {s.batch_size}, lr {s.learning_rate:g} {s.schedule}, {s.recon_loss} (sigma {sigma}), {prior}{warmup}"
    )


def _from_version_2(values: dict) -> dict:
    """A version-2 config: its model had the N(0, I) prior and no KL warm-up, its mixtures unit
    covariances."""
    model = {**values["model"], "prior": "normal", "prior_components": 16, "prior_refit": 25, "kl_warmup": 0}
    return {**values, "model": model, "component_sd": 1.0}


def _from_version_3(values: dict) -> dict:
    """A version-3 config scored modes with a fixed share of the samples only; it is re-scored
    with today's weighted count at its own number of draws."""
    return {**values, "mode_share": 0.25}


DATA = "data"
MODEL = "model (defaults: --preset; each model option overrides it)"
SCORING = "scoring"


@dataclass
class Config:
    """Every setting of a ``gmm-vae run`` (stored as ``config.json``).

    ``model`` has no option of its own: it is ``--preset``'s :class:`ModelSettings` with the
    model options given on the command line over it (:func:`model_settings`).

    Version 2 added the mixture seeds, the reconstruction loss and the chi-square radius;
    version-1 runs (one mixture, mean MSE only, other metrics) are not migrated: re-run them.
    Version 3 added the prior, its refits and the KL warm-up to the model settings,
    made ``tuned`` (now with a mixture prior) the default preset and added ``component_sd``; a
    version-2 model had the N(0, I) prior and no warm-up, its mixtures unit covariances.
    Version 4 (this one) added ``mode_share``, the headline mode count weighed against the
    mixture's weights, and raised the prior draws from 1,000 to 10,000.
    """

    CONFIG_VERSION: ClassVar[int] = 4
    MIGRATIONS: ClassVar[dict] = {2: _from_version_2, 3: _from_version_3}

    dim: int = setting(3, "dimension d of the mixture", type=positive_int, group=DATA)
    components: int = setting(10, "components K", type=positive_int, group=DATA)
    samples: int = setting(
        1000,
        "training samples N per mixture, and as many held-out ones",
        type=positive_int,
        quick=QUICK_SAMPLES,
        group=DATA,
    )
    box: float = setting(10.0, "means uniform in [-box, box]^d", type=positive_float, group=DATA)
    component_sd: float = setting(
        1.0,
        "standard deviation of every component along every axis (narrow modes: e.g. 0.2 with --box 10)",
        type=positive_float,
        group=DATA,
    )
    mixture_seeds: tuple[int, ...] = setting(
        (0, 1, 2, 3, 4),
        "random mixtures to train and score on, by seed; the report gives each row's mean and spread over them "
        f"(--quick: the first {QUICK_MIXTURES})",
        type=seed_list,
        group=DATA,
    )
    mixture_file: str | None = path_setting(
        "JSON or NPZ with means (K x d), weights (K) and optionally covariances (K x d x d); replaces "
        "--dim/--components/--box/--mixture-seeds",
        flag="--mixture",
        metavar="FILE",
        default_text="none",
        group=DATA,
    )
    model: ModelSettings = field(default_factory=lambda: TUNED)
    preset: str = setting(
        "tuned",
        f"report: the write-up's settings with the Gaussian ELBO: {describe(REPORT)}; report-mse: the same with "
        "the write-up's exact objective (mean MSE + KL); tuned (chosen on mixture seeds 100-104 by 'gmm-vae "
        f"tune'): {describe(TUNED)}; the model options override it",
        choices=tuple(PRESETS),
        group=MODEL,
    )
    comparison: bool = setting(
        True,
        "train only this run's settings (by default every preset is trained beside them); the run's own row is "
        "the one exported",
        flag="--no-comparison",
        group=MODEL,
    )
    # 10,000: with 1,000 even the mixtures' own samples miss their lightest modes (weights down to
    # 0.1 %) under any count; chosen on the design mixtures 200-204 and 300-304 (docs/gmm-vae.md)
    generated: int = setting(10000, "prior draws", type=positive_int, quick=QUICK_SAMPLES, group=SCORING)
    threshold: float = setting(
        3.0,
        "headline high-quality radius in standard deviations (Mahalanobis)",
        type=positive_float,
        group=SCORING,
    )
    # a quarter: the largest of 1/2 and 1/4 under which the mixtures' own samples score 10 of 10 in
    # >= 99 % of draws on the design mixtures 200-204 and 300-304 (docs/gmm-vae.md)
    mode_share: float = setting(
        0.25,
        "headline mode count: a mode is captured when its high-quality samples reach this share of those the "
        "mixture's own samples give it (draws x weight x the 3-sd radius's share), and at least one",
        type=share_up_to_one,
        group=SCORING,
    )
    min_share: float = setting(0.01, "share of all samples a mode needs in the second count", type=share, group=SCORING)
    chi2_quantile: float = setting(
        0.99, "the second radius holds this share of a component's own samples", type=fraction, group=SCORING
    )
    elbo_draws: int = setting(10, "latent draws per held-out sample for the ELBO", type=positive_int, group=SCORING)
    k_max: int = setting(10, "KMeans k from 2 to this", type=positive_int, group=SCORING)
    perplexity: float = setting(5.0, "t-SNE perplexity", type=positive_float, group=SCORING)
    quick: bool = quick_setting()
    seed: int = seed_setting()
    export: bool = export_setting()
    models_dir: str = models_dir_setting()

    def preset_settings(self, name: str) -> ModelSettings:
        """A preset as this run trains it (``--quick`` caps its epochs)."""
        s = PRESETS[name]
        return quick_settings(s) if self.quick else s

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

    @staticmethod
    def option_defaults(cfg: Config) -> dict:
        """The options that repeat ``cfg`` (``--config``): its declared settings, and a model
        option for each setting of ``cfg.model`` that differs from its ``--preset``'s."""
        values = config_defaults(Config, asdict(cfg))
        preset = cfg.preset_settings(cfg.preset)
        for f, _ in declarations(ModelSettings):
            value = getattr(cfg.model, f.name)
            if value != getattr(preset, f.name):
                values[f.name] = "learned" if f.name == "sigma" and value is None else value
        return values


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


def model_settings(args: argparse.Namespace) -> ModelSettings:
    """``--preset``'s settings with each model option given (not None) over them."""
    overrides = {f.name: getattr(args, f.name) for f, _ in declarations(ModelSettings)}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "sigma" in overrides:
        overrides["sigma"] = None if overrides["sigma"] == "learned" else overrides["sigma"]
    model = replace(PRESETS[args.preset], **overrides)
    if model.recon_loss == "mean-mse" and model.sigma is not None:
        raise UsageError("--sigma applies to --recon-loss gaussian; mean-mse has its fixed variance beta*d/2")
    if model.kl_warmup and model.prior != "mixture":
        if "kl_warmup" in overrides:
            raise UsageError("--kl-warmup applies to --prior mixture (the N(0, I) prior's KL weight is fixed)")
        model = replace(model, kl_warmup=0)  # --prior normal over a preset with a warm-up
    if model.kl_warmup >= model.epochs:
        raise UsageError(
            f"--kl-warmup {model.kl_warmup} must be below the epochs ({model.epochs}): the KL would never reach beta"
        )
    return model


def run_config(args: argparse.Namespace) -> Config:
    """The config of a ``gmm-vae run`` command line: the declared settings, the model of
    :func:`model_settings`, and what no declaration says (a mixture file replaces the mixture
    seeds; ``--quick`` also caps the model's epochs and keeps the first mixtures)."""
    cfg = config_from_args(Config, args, model=model_settings(args))
    if cfg.mixture_file:
        cfg.mixture_seeds = ()
    if cfg.quick:
        cfg.model = quick_settings(cfg.model)
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
        mixture = random_mixture(cfg.dim, cfg.components, cfg.box, cfg.component_sd**2, seed=mixture_seed)
        key, data_seed = f"m{mixture_seed}", mixture_seed
        source = (
            f"random, seed {mixture_seed}: means uniform in [-{cfg.box:g}, {cfg.box:g}]^{cfg.dim}, covariances "
            f"{cfg.component_sd:g}^2 I, flat-Dirichlet weights"
        )
    x, labels = sample_mixture(mixture, cfg.samples, seed=data_seed)
    heldout, _ = sample_mixture(mixture, cfg.samples, seed=model_seed(data_seed, "held-out"))
    reference, _ = sample_mixture(mixture, cfg.generated, seed=model_seed(data_seed, "reference"))
    return MixtureData(key, mixture_seed, source, mixture, x, labels, heldout, reference)


def run_mixtures(cfg: Config) -> list[int | None]:
    """The mixtures a run trains on: its mixture seeds, or ``[None]`` for ``--mixture``."""
    return [None] if cfg.mixture_file else list(cfg.mixture_seeds)


def data_note(cfg: Config) -> str:
    """Where a run's (or a sweep's) mixtures come from, for ``metrics.json`` and the report."""
    if cfg.mixture_file:
        return f"{cfg.mixture_file} (mixture file)"
    seeds = ",".join(map(str, cfg.mixture_seeds))
    return (
        f"random {cfg.dim}-D mixtures of {cfg.components} Gaussians (sd {cfg.component_sd:g}, means in "
        f"[-{cfg.box:g}, {cfg.box:g}]), seeds {seeds}, {cfg.samples} training and held-out samples each"
    )
