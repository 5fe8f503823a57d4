"""``fashion-cae run``, ``evaluate`` and ``export``, and the options of every action.

``run`` is built on :mod:`keras_clust.experiment`: :data:`SPEC` declares the config, the
steps and the exported models; the skeleton seeds, writes the run folder and exports.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from keras_clust.app import (
    add_cluster_argument,
    add_common_arguments,
    add_models_dir_argument,
    add_run_options,
    add_study_arguments,
    add_tensorboard_argument,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    run_options,
)
from keras_clust.apps.fashion_cae.config import (
    NAME,
    QUICK_RUN_SIZES,
    Prepared,
    RunConfig,
    cae_params_from_args,
    prepare_data,
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
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_action,
    load_run,
    run_experiment,
    warn_if_data_differs,
    write_evaluation,
)
from keras_clust.models import probability_model
from keras_clust.models.classifier import SCHEDULES
from keras_clust.runs import load_run_models, markdown_table, set_seed
from keras_clust.training import OPTIMIZERS
from keras_clust.tuning import TUNERS

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


def config_from_args(args: argparse.Namespace) -> RunConfig:
    cae, source = cae_params_from_args(args, args.out)
    cfg = RunConfig(
        dataset=args.dataset,
        data_dir=str(args.data_dir) if args.data_dir else None,
        cae=cae,
        params_from=source,
        cae_epochs=args.cae_epochs,
        batch_size=args.batch_size,
        val_fraction=args.val_fraction,
        vae_latent=args.vae_latent,
        vae_channels=args.vae_channels,
        vae_epochs=args.vae_epochs,
        vae_learning_rate=args.vae_learning_rate,
        beta=args.beta,
        clf_epochs=args.clf_epochs,
        clf_learning_rate=args.clf_learning_rate,
        clf_encoder_lr_factor=args.clf_encoder_lr_factor,
        clf_schedule=args.clf_schedule,
        clf_patience=args.clf_patience,
        kmeans_n_init=args.kmeans_n_init,
        cluster=args.cluster,
        tsne_points=args.tsne_points,
        quick=args.quick,
        seed=args.seed,
        export=not args.no_export,
        models_dir=str(args.models_dir),
    )
    if cfg.quick:
        cfg.cae_epochs = cfg.vae_epochs = cfg.clf_epochs = 2
        cfg.batch_size, cfg.vae_batch_size = min(cfg.batch_size, 64), min(cfg.vae_batch_size, 64)
        cfg.tsne_points = min(cfg.tsne_points, 500)
    return cfg


def _prepare(cfg: RunConfig) -> Prepared:
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

export = export_action(SPEC)


def run(args: argparse.Namespace) -> int:
    run_experiment(SPEC, config_from_args(args), args.out, **run_options(args))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    saved = load_run(SPEC, args.out, args.run)
    path, cfg, stored = saved.path, saved.config, saved.metrics
    set_seed(cfg.seed)
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
            n_clusters=cfg.n_clusters,
            n_init=cfg.kmeans_n_init,
            random_state=cfg.seed,
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


def _factor(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 1, got {value}")
    return value


def _data_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    p.add_argument(
        "--dataset",
        default="fashion_mnist",
        choices=("fashion_mnist", "mnist"),
        help="dataset of 28x28 images (default: fashion_mnist, from Debian's dataset-fashion-mnist)",
    )
    p.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.1,
        help="share of the training set held out for validation (default: 0.1)",
    )
    p.add_argument("--batch-size", type=positive_int, default=256, help="CAE batch size (default: 256)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    add_run_options(p)
    add_models_dir_argument(p)
    d = RunConfig()
    g = p.add_argument_group("CAE (default: the report's best, latent 14, 8 channels, Adam 1e-3, decay 1e-5)")
    g.add_argument(
        "--params-from",
        default=None,
        metavar="RUN",
        help="use the best hyper-parameters of a 'fashion-cae tune' run (folder or run id)",
    )
    g.add_argument("--encoded-space-dim", type=positive_int, default=None, help="latent size")
    g.add_argument("--n-channels", type=positive_int, default=None, help="channels of the first conv layer")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="adam or sgd (with momentum)")
    g.add_argument("--learning-rate", type=positive_float, default=None, help="learning rate")
    g.add_argument("--weight-decay", type=positive_float, default=None, help="decoupled weight decay")
    g.add_argument("--momentum", type=fraction, default=None, help="SGD momentum (default 0.9)")
    g.add_argument("--cae-epochs", type=positive_int, default=d.cae_epochs, help="CAE epochs (default: 30)")
    g = p.add_argument_group("VAE")
    g.add_argument(
        "--vae-latent",
        type=positive_int,
        default=None,
        help="VAE latent size (default: the CAE's; 2 adds a latent traversal figure)",
    )
    g.add_argument("--vae-channels", type=positive_int, default=d.vae_channels, help="VAE conv channels (default: 32)")
    g.add_argument("--vae-epochs", type=positive_int, default=d.vae_epochs, help="VAE epochs (default: 30)")
    g.add_argument(
        "--vae-learning-rate",
        type=positive_float,
        default=d.vae_learning_rate,
        help="VAE Adam learning rate (default: 1e-3)",
    )
    g.add_argument("--beta", type=positive_float, default=d.beta, help="weight of the KL term (default: 1)")
    g = p.add_argument_group("analysis and transfer learning")
    g.add_argument(
        "--tsne-points",
        type=positive_int,
        default=d.tsne_points,
        help="test codes in the PCA/t-SNE maps (default: 5000)",
    )
    g.add_argument(
        "--kmeans-n-init",
        type=positive_int,
        default=d.kmeans_n_init,
        help="KMeans restarts, the same for the codes and the raw pixels (default: 10)",
    )
    add_cluster_argument(g)
    g.add_argument(
        "--clf-epochs",
        type=positive_int,
        default=d.clf_epochs,
        help="most epochs of each classifier (default: 20; fewer with --clf-patience)",
    )
    g.add_argument(
        "--clf-learning-rate",
        type=positive_float,
        default=d.clf_learning_rate,
        help="classifier Adam learning rate of the head; the start of the schedule (default: 1e-3)",
    )
    g.add_argument(
        "--clf-encoder-lr-factor",
        type=_factor,
        default=d.clf_encoder_lr_factor,
        help="fine-tuning: the encoder's learning rate as a share of the head's (default: 1, chosen on "
        "validation accuracy over 0.1 and 0.3; lower values are there to try)",
    )
    g.add_argument(
        "--clf-schedule",
        choices=SCHEDULES,
        default=d.clf_schedule,
        help="classifier learning-rate schedule: cosine decay to 0 over --clf-epochs, or constant (default: cosine)",
    )
    g.add_argument(
        "--clf-patience",
        type=non_negative_int,
        default=d.clf_patience,
        help="stop a classifier this many epochs after its best validation accuracy and keep that epoch's "
        "weights; 0: train every epoch, keep the last (default: 4)",
    )
    p.add_argument("--no-export", action="store_true", help="do not export SavedModels at the end of the run")


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    add_tensorboard_argument(p)
    p.add_argument(
        "--engine",
        choices=("optuna", "kerastuner", "both"),
        default="optuna",
        help="search engine (default: optuna; both: one after the other, compared in the report)",
    )
    p.add_argument(
        "--tuner",
        choices=TUNERS,
        default="bayesian",
        help="KerasTuner algorithm (default: bayesian; hyperband sizes its own trials from --epochs)",
    )
    p.add_argument(
        "--trials",
        type=positive_int,
        default=None,
        help="finished trials wanted; a resumed study only runs the missing ones (default: 20; --quick: 2)",
    )
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs per trial (default: 10)")
    p.add_argument(
        "--final-epochs",
        type=non_negative_int,
        default=30,
        help="retrain the best configuration this long and score it on the test set; 0 scores the "
        "best trial's own model (default: 30)",
    )
    p.add_argument(
        "--timeout", type=positive_float, default=None, help="Optuna: start no new trial after this many seconds"
    )
    add_study_arguments(p, "fashion-cae", "study (Optuna) or project (KerasTuner) name")
    p.add_argument(
        "--kerastuner-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="KerasTuner's folder (trials, checkpoints, oracle); the chief and every worker of a "
        "distributed search (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) "
        "need the same one (default: kerastuner/ in the run folder)",
    )
