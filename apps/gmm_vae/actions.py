"""``gmm-vae run``, ``evaluate`` and ``export``, and the options of every action."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from keras_clust.app import (
    CommonSettings,
    action,
    add_export_arguments,
    add_saved_run_arguments,
    config_arguments,
)
from keras_clust.apps.gmm_vae.config import (
    NAME,
    Config,
    ModelSettings,
    data_note,
    mixture_data,
    run_config,
    run_mixtures,
)
from keras_clust.apps.gmm_vae.pipeline import (
    coverage,
    draw_figures,
    generate,
    latent_draws,
    score,
    train_vae,
    true_nll,
)
from keras_clust.apps.gmm_vae.report import render_report, summary, summary_rows
from keras_clust.cluster import KSelection, min_share_count
from keras_clust.data.gmm import load_mixture, save_mixture
from keras_clust.errors import UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_models,
    load_run,
    run_from_args,
    write_evaluation,
)
from keras_clust.markdown import markdown_table
from keras_clust.option_types import non_negative_int
from keras_clust.run_folder import load_run_models
from keras_clust.settings import add_settings, declarations

log = logging.getLogger("keras_clust.apps.gmm_vae")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The model options: each setting of :class:`ModelSettings`, None unless given (then it
    overrides the ``--preset``'s value)."""
    group = p.add_argument_group("model options")
    add_settings(group, ModelSettings)
    p.set_defaults(**{f.name: None for f, _ in declarations(ModelSettings)})


def add_data_dir_argument(p: argparse.ArgumentParser) -> None:
    """``--data-dir``, which every run has always taken (the mixtures need no dataset)."""
    add_settings(p, CommonSettings, only=("data_dir",))


add_run_arguments = config_arguments(Config, add_model_arguments, add_data_dir_argument)


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


def steps(cfg: Config, run: Run) -> None:
    """Per mixture: sample it, train every row's VAE, score it; figures and models of the first mixture."""
    prior_seed = cfg.seed + 1
    run.set_data(note=data_note(cfg))
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
                k_scaled = KSelection.from_dict(row["kmeans_minmax"])
                row["tsne_seconds"] = round(
                    draw_figures(key, settings, trained, data, generated, k_scaled, cfg, run), 2
                )
                run.save_model(trained.encoder, f"{key}_encoder.keras")
                run.save_model(trained.decoder, f"{key}_decoder.keras")
                np.save(run.file(f"generated_{key}.npy"), generated)
                if key == cfg.primary:  # real inputs to verify the exports on
                    run.export_samples = {
                        "samples": data.x[:16],
                        "latent": trained.latent_draws(16, prior_seed),
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


SPEC = ExperimentSpec(NAME, Config, steps, render_report, lambda cfg, m: markdown_table(summary_rows(m)), exports)


@action("run", add_run_arguments, Config)
def run(args: argparse.Namespace) -> int:
    """sample mixtures, train the VAEs, score the modes and the ELBO, plot, export"""
    return run_from_args(SPEC, args, run_config)


@action("evaluate", add_evaluate_arguments)
def evaluate(args: argparse.Namespace) -> int:
    """re-generate a run's samples from its saved decoders; score fresh prior draws

    Re-generate each row's samples of the first mixture from its saved decoder and the
    run's prior seed (they must match the stored ones), and score fresh prior draws."""
    loaded = load_run(SPEC, args.out, args.run)
    path, cfg, stored = loaded.path, loaded.config, loaded.metrics
    first = next(iter(stored["mixtures"]))
    mixture = load_mixture(path / "mixtures" / f"{first}.json")
    rows, result = [], {}
    for key, m in stored["mixtures"][first]["models"].items():
        decoder = load_run_models(path, [f"{key}_decoder.keras"])[f"{key}_decoder.keras"]

        def draws(seed, m=m):
            return latent_draws(m.get("prior"), m["settings"]["latent_dim"], cfg.generated, seed)

        again = generate(decoder, draws(stored["prior_seed"]))
        diff = float(np.max(np.abs(again - np.load(path / f"generated_{key}.npy"))))
        regenerated = coverage(again, mixture, cfg)
        fresh = coverage(generate(decoder, draws(args.draw_seed)), mixture, cfg)
        result[key] = {"regenerated": regenerated.to_dict(), "max_abs_diff": diff, "fresh_draws": fresh.to_dict()}
        for label, cov in (
            (f"regenerated (seed {stored['prior_seed']})", regenerated),
            (f"fresh draws (seed {args.draw_seed})", fresh),
        ):
            rows.append(
                {
                    "row": key,
                    "samples": label,
                    "modes": cov.modes_captured_weighted,
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


@action("export", add_gmm_export_arguments)
def export(args: argparse.Namespace) -> int:
    """export a run's encoder (z_mean) and decoder as SavedModels

    Export one row's encoder and decoder (default: the run's own settings)."""
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
