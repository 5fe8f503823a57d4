"""``gmm-vae run``, ``evaluate`` and ``export``, and the options of every action."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from keras_clust.app import (
    add_common_arguments,
    add_export_arguments,
    add_models_dir_argument,
    add_run_options,
    add_saved_run_arguments,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    run_options,
    seed_list,
    share,
)
from keras_clust.apps.gmm_vae.config import (
    NAME,
    PRESETS,
    RECON_LOSSES,
    REPORT,
    TUNED,
    Config,
    ModelSettings,
    config_from_args,
    mixture_data,
    run_mixtures,
    sigma_option,
)
from keras_clust.apps.gmm_vae.pipeline import coverage, draw_figures, generate, score, train_vae, true_nll
from keras_clust.apps.gmm_vae.report import render_report, summary, summary_rows
from keras_clust.cluster import min_share_count
from keras_clust.data.gmm import load_mixture, save_mixture
from keras_clust.errors import UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_models,
    load_run,
    run_experiment,
    write_evaluation,
)
from keras_clust.generation import prior_samples
from keras_clust.runs import load_run_models, markdown_table

log = logging.getLogger("keras_clust.apps.gmm_vae")


def steps(cfg: Config, run: Run) -> None:
    """Per mixture: sample it, train every row's VAE, score it; figures and models of the first mixture."""
    prior_seed = cfg.seed + 1
    seeds = ",".join(map(str, cfg.mixture_seeds))
    run.set_data(
        note=f"{cfg.mixture_file} (mixture file)"
        if cfg.mixture_file
        else f"random {cfg.dim}-D mixtures of {cfg.components} Gaussians, seeds {seeds}, {cfg.samples} "
        "training and held-out samples each"
    )
    m = run.metrics
    m.update(
        {
            "primary": cfg.primary,
            "rows": list(cfg.models()),
            "prior_seed": prior_seed,
            "min_share_samples": min_share_count(cfg.generated, cfg.min_share),
            "mixtures": {},
        }
    )
    for i, mixture_seed in enumerate(run_mixtures(cfg)):
        data = mixture_data(cfg, mixture_seed)
        save_mixture(data.mixture, run.file(f"mixtures/{data.key}.json"))
        mix = {
            "mixture_seed": mixture_seed,
            "source": data.source,
            "dim": data.mixture.dim,
            "n_components": data.mixture.n_components,
            "weights": data.mixture.weights.tolist(),
            "true_nll": true_nll(data),
            "models": {},
            "reference": {"modes": coverage(data.x_reference, data.mixture, cfg).to_dict()},
        }
        for key, settings in cfg.models().items():
            trained = train_vae(key, settings, data, run.seed_model)
            row, generated = score(key, settings, trained, data, cfg, prior_seed)
            run.history += trained.fit.rows(mixture=data.key, model=key)
            if i == 0:  # figures and models of the first mixture only
                row["tsne_seconds"] = round(draw_figures(key, settings, trained, data, generated, cfg, run), 2)
                run.save_model(trained.encoder, f"{key}_encoder.keras")
                run.save_model(trained.decoder, f"{key}_decoder.keras")
                np.save(run.file(f"generated_{key}.npy"), generated)
                if key == cfg.primary:  # real inputs to verify the exports on
                    run.export_samples = {
                        "samples": data.x[:16],
                        "latent": prior_samples(16, settings.latent_dim, prior_seed),
                    }
            mix["models"][key] = row
        m["mixtures"][data.key] = mix
    m["summary"] = summary(m)


def exports(cfg: Config, row: str | None = None) -> list[Export]:
    """The encoder (``samples -> z_mean``) and decoder (``latent -> samples``) of ``row``
    (default: the run's own settings), trained on the run's first mixture."""
    row = row or cfg.primary
    return [
        Export("gmm_vae_encoder", f"{row}_encoder.keras", "samples", ("z_mean",)),
        Export("gmm_vae_decoder", f"{row}_decoder.keras", "latent", ("samples",)),
    ]


SPEC = ExperimentSpec(
    name=NAME,
    config=Config,
    steps=steps,
    report=render_report,
    summary=lambda cfg, metrics: markdown_table(summary_rows(metrics)),
    exports=exports,
)


def run(args: argparse.Namespace) -> int:
    run_experiment(SPEC, config_from_args(args), args.out, **run_options(args))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Re-generate each row's samples of the first mixture from its saved decoder and the
    run's prior seed (they must match the stored ones), and score fresh prior draws."""
    loaded = load_run(SPEC, args.out, args.run)
    path, cfg, stored = loaded.path, loaded.config, loaded.metrics
    first = next(iter(stored["mixtures"]))
    mixture = load_mixture(path / "mixtures" / f"{first}.json")
    rows, result = [], {}
    for key, m in stored["mixtures"][first]["models"].items():
        decoder = load_run_models(path, [f"{key}_decoder.keras"])[f"{key}_decoder.keras"]
        latent = m["settings"]["latent_dim"]
        again = generate(decoder, cfg.generated, latent, stored["prior_seed"])
        diff = float(np.max(np.abs(again - np.load(path / f"generated_{key}.npy"))))
        regenerated = coverage(again, mixture, cfg)
        fresh = coverage(generate(decoder, cfg.generated, latent, args.draw_seed), mixture, cfg)
        result[key] = {"regenerated": regenerated.to_dict(), "max_abs_diff": diff, "fresh_draws": fresh.to_dict()}
        for label, cov in (
            (f"regenerated (seed {stored['prior_seed']})", regenerated),
            (f"fresh draws (seed {args.draw_seed})", fresh),
        ):
            rows.append(
                {
                    "row": key,
                    "samples": label,
                    "modes >= min share": cov.modes_captured_min_share,
                    "modes >= 1 sample": cov.modes_captured,
                    "HQ % (3 sd)": 100 * cov.high_quality_fraction,
                    "HQ % (chi2)": 100 * cov.high_quality_fraction_chi2,
                    "reverse KL": cov.reverse_kl,
                }
            )
        if diff > 1e-4:
            log.warning("[%s] the saved decoder gives samples %.3g away from the stored ones", key, diff)
    return write_evaluation(path, {"run": str(path), "mixture": first, "models": result}, rows)


def export(args: argparse.Namespace) -> int:
    """Export one row's encoder and decoder (default: the run's own settings)."""
    loaded = load_run(SPEC, args.out, args.run)
    first = loaded.metrics["mixtures"][next(iter(loaded.metrics["mixtures"]))]
    row = args.row or loaded.metrics["primary"]
    if row not in first["models"]:
        raise UsageError(f"--row {row}: {loaded.path} has rows {', '.join(first['models'])}; pick one of them")
    rows = export_models(exports(loaded.config, row), loaded.path, args.models_dir, None, loaded.config.seed)
    print(f"exported row '{row}' of {loaded.path}")
    print(markdown_table(rows, floatfmt=".2e"), end="")
    print(f"TF Serving config: {Path(args.models_dir) / 'models.config'}")
    return 0


def _describe(s: ModelSettings) -> str:
    sigma = "learned" if s.sigma is None else f"{s.sigma:g}"
    return (
        f"latent {s.latent_dim}, hidden {','.join(map(str, s.hidden_units))}, beta {s.beta:g}, {s.epochs} epochs, "
        f"batch {s.batch_size}, lr {s.learning_rate:g} {s.schedule}, {s.recon_loss} (sigma {sigma})"
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    add_run_options(p)
    add_models_dir_argument(p)
    d = Config()
    g = p.add_argument_group("data")
    g.add_argument("--dim", type=positive_int, default=d.dim, help="dimension d of the mixture (default: 3)")
    g.add_argument("--components", type=positive_int, default=d.components, help="components K (default: 10)")
    g.add_argument(
        "--samples",
        type=positive_int,
        default=d.samples,
        help="training samples N per mixture, and as many held-out ones (default: 1000)",
    )
    g.add_argument("--box", type=positive_float, default=d.box, help="means uniform in [-box, box]^d (default: 10)")
    g.add_argument(
        "--mixture-seeds",
        type=seed_list,
        default=d.mixture_seeds,
        help="random mixtures to train and score on, by seed; the report gives each row's mean and "
        "spread over them (default: 0,1,2,3,4; --quick: the first two)",
    )
    g.add_argument(
        "--mixture",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON or NPZ with means (K x d), weights (K) and optionally covariances (K x d x d); "
        "replaces --dim/--components/--box/--mixture-seeds",
    )
    g = p.add_argument_group("model (defaults: --preset; each option overrides it)")
    g.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="report",
        help=f"report (default): the write-up's settings with the Gaussian ELBO: {_describe(REPORT)}; "
        "report-mse: the same with the write-up's exact objective (mean MSE + KL); tuned (chosen "
        f"on mixture seeds 100-104 by 'gmm-vae tune'): {_describe(TUNED)}",
    )
    g.add_argument(
        "--recon-loss",
        choices=RECON_LOSSES,
        default=None,
        help="gaussian: -log N(x; decoder(z), sigma^2) summed over features (beta 1 = the ELBO); "
        "mean-mse: Keras 'mse' (mean over features), the write-up's objective",
    )
    g.add_argument(
        "--sigma",
        type=sigma_option,
        default=None,
        metavar="learned|S",
        help="gaussian only: 'learned' (one sigma per standardised feature) or a fixed sigma > 0",
    )
    g.add_argument("--latent-dim", type=positive_int, default=None, help="latent size dimz")
    g.add_argument("--hidden-units", type=positive_int_list, default=None, help="hidden widths, e.g. 128,128")
    g.add_argument("--beta", type=positive_float, default=None, help="weight of the KL term")
    g.add_argument("--epochs", type=positive_int, default=None, help="training epochs")
    g.add_argument("--batch-size", type=positive_int, default=None, help="batch size")
    g.add_argument("--learning-rate", type=positive_float, default=None, help="Adam learning rate")
    g.add_argument("--schedule", choices=("constant", "cosine"), default=None, help="learning-rate schedule")
    g.add_argument(
        "--no-comparison",
        action="store_true",
        help="train only this run's settings (by default every preset is trained beside them); the "
        "run's own row is the one exported",
    )
    g = p.add_argument_group("scoring")
    g.add_argument("--generated", type=positive_int, default=d.generated, help="prior draws (default: 1000)")
    g.add_argument(
        "--threshold",
        type=positive_float,
        default=d.threshold,
        help="headline high-quality radius in standard deviations (Mahalanobis; default: 3)",
    )
    g.add_argument(
        "--chi2-quantile",
        type=fraction,
        default=d.chi2_quantile,
        help="the second radius holds this share of a component's own samples (default: 0.99)",
    )
    g.add_argument(
        "--min-share",
        type=share,
        default=d.min_share,
        help="share of samples a mode needs in the headline count (default: 0.01)",
    )
    g.add_argument(
        "--elbo-draws",
        type=positive_int,
        default=d.elbo_draws,
        help="latent draws per held-out sample for the ELBO (default: 10)",
    )
    g.add_argument("--k-max", type=positive_int, default=d.k_max, help="KMeans k from 2 to this (default: 10)")
    g.add_argument("--perplexity", type=positive_float, default=d.perplexity, help="t-SNE perplexity (default: 5)")
    p.add_argument("--no-export", action="store_true", help="do not export SavedModels")


def add_gmm_export_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p)
    p.add_argument(
        "--row",
        default=None,
        help="which row's models to export: report-mse, report, tuned or this_run (default: the run's own settings)",
    )


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_run_arguments(p)
    p.add_argument(
        "--draw-seed", type=non_negative_int, default=12345, help="seed of the fresh prior draws (default: 12345)"
    )
