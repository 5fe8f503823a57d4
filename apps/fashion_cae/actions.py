"""``fashion-cae run``, ``evaluate`` and ``export``.

``run`` is built on :mod:`keras_clust.experiment`: :data:`SPEC` declares the config, the
steps and the exported models; the skeleton seeds, writes the run folder and exports.
"""

from __future__ import annotations

import argparse
import logging

from keras_clust.app import action, add_export_arguments, add_saved_run_arguments, config_arguments
from keras_clust.apps.fashion_cae.config import (
    NAME,
    QUICK_RUN_SIZES,
    CaeOptions,
    RunConfig,
    prepare_data,
    run_config,
)
from keras_clust.apps.fashion_cae.pipeline import (
    analyse_latents,
    deep_clustering,
    train_cae,
    train_classifiers,
    train_vae,
    vae_test_terms,
)
from keras_clust.apps.fashion_cae.report import render_run_report, summary_rows
from keras_clust.cluster import evaluate_kmeans
from keras_clust.cluster.evaluate import k_options
from keras_clust.data.splits import Split
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_from_args,
    run_from_args,
    run_to_evaluate,
    warn_if_data_differs,
    write_evaluation,
)
from keras_clust.markdown import markdown_table
from keras_clust.models import probability_model
from keras_clust.run_folder import load_run_models
from keras_clust.settings import add_settings

log = logging.getLogger("keras_clust.apps.fashion_cae")

#: The SavedModels of a run: encoders, the VAE decoder, the fine-tuned classifier.
EXPORTS = (
    Export("fashion_cae_encoder", "cae_encoder.keras", "images", ("embedding",)),
    Export("fashion_vae_encoder", "vae_encoder.keras", "images", ("z_mean",)),
    Export("fashion_vae_decoder", "vae_decoder.keras", "latent", ("images",)),
    Export(
        "fashion_classifier",
        "classifier_finetuned.keras",
        "images",
        ("probabilities", "log_probabilities"),
        wrap=probability_model,
    ),
)


def _cae_options(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, CaeOptions)


#: The options of ``run``: --out, the run options, every setting of :class:`RunConfig` and the CAE's
#: hyper-parameters (:class:`CaeOptions`).
add_run_arguments = config_arguments(RunConfig, _cae_options)


def _prepare(cfg: RunConfig) -> Split:
    return prepare_data(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed, QUICK_RUN_SIZES if cfg.quick else None)


def steps(cfg: RunConfig, run: Run) -> None:
    """CAE, VAE, latent analysis and transfer learning, each model re-seeded before it is built."""
    prep = _prepare(cfg)
    run.set_data(prep.data.source)
    m = run.metrics
    m.update(n_train=len(prep.x_train), n_val=len(prep.x_val), n_test=len(prep.x_test))
    cae, m["cae"], run.history = train_cae(cfg, prep, run)
    vae, m["vae"], rows = train_vae(cfg, prep, run)
    run.history += rows
    m["analysis"] = analyse_latents(cfg, prep, run, cae, vae)
    m["kmeans"] = m["analysis"].pop("kmeans")
    if cfg.cluster != "kmeans":
        m["deep_cluster"] = deep_clustering(cfg, prep, run, cae)
    m["transfer"], rows = train_classifiers(cfg, prep, run, cae)
    run.history += rows
    sample = prep.x_test[:32]
    run.export_samples = {"images": sample, "latent": vae.mean_encoder.predict(sample, verbose=0)}


SPEC = ExperimentSpec(
    name=NAME,
    config=RunConfig,
    steps=steps,
    report=render_run_report,
    summary=lambda cfg, m: markdown_table(summary_rows(m)),
    exports=lambda cfg: EXPORTS,
)


@action("evaluate", add_saved_run_arguments)
def evaluate(args: argparse.Namespace) -> int:
    """re-score a saved run's models on its test data"""
    saved = run_to_evaluate(SPEC, args)
    path, cfg, stored = saved.path, saved.config, saved.metrics
    prep = _prepare(cfg)
    warn_if_data_differs(stored, prep.data.source)
    m = load_run_models(
        path,
        [
            "cae.keras",
            "cae_encoder.keras",
            "vae.keras",
            "vae_encoder.keras",
            "classifier_frozen.keras",
            "classifier_finetuned.keras",
        ],
    )
    now = {
        "cae_test_mse": float(m["cae.keras"].evaluate(prep.x_test, prep.x_test, batch_size=1024, verbose=0)),
        "vae_test_neg_elbo": vae_test_terms(m["vae.keras"], prep.x_test)["neg_elbo"],
    }
    for key, file in (("cae", "cae_encoder.keras"), ("vae", "vae_encoder.keras")):
        enc = m[file]
        ev = evaluate_kmeans(
            enc.predict(prep.x_train, batch_size=1024, verbose=0),
            prep.y_train,
            enc.predict(prep.x_test, batch_size=1024, verbose=0),
            prep.y_test,
            n_init=cfg.kmeans_n_init,
            random_state=cfg.seed,
            **k_options(cfg),
        )
        now[f"kmeans_acc_{key}"] = ev.test.acc
    for mode in ("frozen", "finetuned"):
        clf = m[f"classifier_{mode}.keras"]
        now[f"accuracy_{mode}"] = float(clf.evaluate(prep.x_test, prep.y_test, batch_size=1024, verbose=0)[1])
    before = {
        "cae_test_mse": stored["cae"]["test_mse"],
        "vae_test_neg_elbo": stored["vae"]["test"]["neg_elbo"],
        "kmeans_acc_cae": stored["kmeans"]["cae"]["test"]["acc"],
        "kmeans_acc_vae": stored["kmeans"]["vae"]["test"]["acc"],
        "accuracy_frozen": stored["transfer"]["frozen"]["test_accuracy"],
        "accuracy_finetuned": stored["transfer"]["finetuned"]["test_accuracy"],
    }
    rows = [{"metric": k, "now": v, "stored": before[k], "difference": v - before[k]} for k, v in now.items()]
    return write_evaluation(
        path,
        {"run": str(path), "data": prep.data.source.to_dict(), "rows": rows},
        rows,
        floatfmt=".5g",
        note="(the VAE's -ELBO draws one z per image, so it varies slightly between evaluations)",
    )


@action("run", add_run_arguments, RunConfig)
def run(args: argparse.Namespace) -> int:
    """train the CAE, the VAE and the classifiers; analyse, plot and export"""
    return run_from_args(SPEC, args, run_config)


@action("export", add_export_arguments)
def export(args: argparse.Namespace) -> int:
    """export a saved run's encoders, VAE decoder and classifier as SavedModels"""
    return export_from_args(SPEC, args)
