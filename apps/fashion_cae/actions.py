"""``fashion-cae run``, ``evaluate`` and ``export``, and the options of every action."""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from apps.fashion_cae.config import NAME, QUICK_RUN_SIZES, RunConfig, cae_params_from_args, prepare_data
from apps.fashion_cae.pipeline import analyse_latents, train_cae, train_classifiers, train_vae, vae_test_terms
from apps.fashion_cae.report import render_run_report, summary_rows
from keras_clust.app import (
    add_common_arguments,
    add_models_dir_argument,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)
from keras_clust.cluster import evaluate_kmeans
from keras_clust.errors import DataError
from keras_clust.export import export_verified
from keras_clust.models import probability_model
from keras_clust.runs import RunFolder, find_run, load_run_models, markdown_table, read_json, set_seed, write_json
from keras_clust.training import OPTIMIZERS
from keras_clust.tuning import TUNERS

log = logging.getLogger("apps.fashion_cae")

#: SavedModel name -> (file in the run's models/, input key, output keys)
EXPORTS = {
    "fashion_cae_encoder": ("cae_encoder.keras", "images", ("embedding",)),
    "fashion_vae_encoder": ("vae_encoder.keras", "images", ("z_mean",)),
    "fashion_vae_decoder": ("vae_decoder.keras", "latent", ("images",)),
    "fashion_classifier": ("classifier_finetuned.keras", "images", ("probabilities", "log_probabilities")),
}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    cae, source = cae_params_from_args(args, args.out)
    cfg = RunConfig(
        dataset=args.dataset, data_dir=str(args.data_dir) if args.data_dir else None, cae=cae, params_from=source,
        cae_epochs=args.cae_epochs, batch_size=args.batch_size, val_fraction=args.val_fraction,
        vae_latent=args.vae_latent, vae_channels=args.vae_channels, vae_epochs=args.vae_epochs,
        vae_learning_rate=args.vae_learning_rate, beta=args.beta, clf_epochs=args.clf_epochs,
        clf_learning_rate=args.clf_learning_rate, tsne_points=args.tsne_points, quick=args.quick, seed=args.seed,
        export=not args.no_export, models_dir=str(args.models_dir),
    )  # fmt: skip
    if cfg.quick:
        cfg.cae_epochs = cfg.vae_epochs = cfg.clf_epochs = 2
        cfg.batch_size, cfg.vae_batch_size = min(cfg.batch_size, 64), min(cfg.vae_batch_size, 64)
        cfg.tsne_points = min(cfg.tsne_points, 500)
    return cfg


def export_models(models_dir: str | Path, models: dict[str, keras.Model], sample: np.ndarray) -> list[dict]:
    """Export every model of :data:`EXPORTS` found in ``models`` (verified on ``sample`` images)."""
    rows = []
    latent = None
    for name, (file, inp, outs) in EXPORTS.items():
        model = models[file]
        if file.startswith("classifier"):
            model = probability_model(model)
        x = sample
        if inp == "latent":
            x = latent if latent is not None else np.zeros((len(sample), model.input_shape[-1]), np.float32)
        rows.append(export_verified(model, name, models_dir, inp, outs, x))
        if name == "fashion_vae_encoder":
            latent = np.asarray(model.predict(sample, verbose=0), np.float32)
    return rows


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    set_seed(cfg.seed)
    start = time.perf_counter()
    with RunFolder(args.out, NAME, cfg.seed) as rf:
        prep = prepare_data(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed,
                            QUICK_RUN_SIZES if cfg.quick else None)  # fmt: skip
        source = prep.data.source
        rf.write_config({"experiment": NAME, "action": "run", **asdict(cfg), "data": source.to_dict()})
        metrics = {"run_id": rf.run_id, "data": source.to_dict(), "n_train": len(prep.x_train),
                   "n_val": len(prep.x_val), "n_test": len(prep.x_test)}  # fmt: skip
        cae, metrics["cae"], history = train_cae(cfg, prep, rf)
        vae, metrics["vae"], rows = train_vae(cfg, prep, rf)
        history += rows
        metrics["analysis"] = analyse_latents(cfg, prep, rf, cae, vae)
        metrics["kmeans"] = metrics["analysis"].pop("kmeans")
        metrics["transfer"], rows = train_classifiers(cfg, prep, rf, cae)
        history += rows
        exports = []
        if cfg.export:
            saved = load_run_models(rf.work, [f for f, _, _ in EXPORTS.values()])
            exports = export_models(cfg.models_dir, saved, prep.x_test[:32])
        metrics["exports"] = exports
        metrics["total_seconds"] = round(time.perf_counter() - start, 1)
        rf.write_metrics(metrics)
        rf.write_history(history)
        rf.write_report(render_run_report(cfg, metrics))
    print(markdown_table(summary_rows(metrics)), end="")
    print(f"data: {source.note}")
    print(f"run folder: {rf.path}")
    return 0


def _newest_run_folder(out: Path) -> Path:
    """The newest complete folder written by ``run`` (tune folders live beside them)."""
    find_run(out, NAME, None)  # a clear error when there is no complete folder at all
    folders = [p for p in (Path(out) / NAME).iterdir() if not p.name.startswith(".") and (p / "metrics.json").is_file()
               and read_json(p / "config.json").get("action") == "run"]  # fmt: skip
    if not folders:
        raise DataError(f"no complete 'run' folder under {Path(out) / NAME} (only tune runs); run "
                        f"'keras-clust {NAME} run' first")  # fmt: skip
    return max(folders, key=lambda p: p.stat().st_mtime)


def _load_run(args) -> tuple[Path, RunConfig, dict]:
    path = find_run(args.out, NAME, args.run) if args.run else _newest_run_folder(args.out)
    raw = read_json(path / "config.json")
    if raw.get("action") != "run":
        raise DataError(f"{path} is a '{raw.get('action')}' folder; pass a folder written by '{NAME} run'")
    cfg = RunConfig(**{k: v for k, v in raw.items() if k in RunConfig.__dataclass_fields__})
    return path, cfg, read_json(path / "metrics.json")


def evaluate(args: argparse.Namespace) -> int:
    path, cfg, stored = _load_run(args)
    set_seed(cfg.seed)
    prep = prepare_data(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed, QUICK_RUN_SIZES if cfg.quick else None)
    if prep.data.source.to_dict() != stored["data"]:
        log.warning("data differs from the run's: %s (run used: %s)", prep.data.source.note, stored["data"]["note"])
    m = load_run_models(path, ["cae.keras", "cae_encoder.keras", "vae.keras", "vae_encoder.keras",
                               "classifier_frozen.keras", "classifier_finetuned.keras"])  # fmt: skip
    now = {"cae_test_mse": float(m["cae.keras"].evaluate(prep.x_test, prep.x_test, batch_size=1024, verbose=0)),
           "vae_test_neg_elbo": vae_test_terms(m["vae.keras"], prep.x_test)["neg_elbo"]}  # fmt: skip
    for key, file in (("cae", "cae_encoder.keras"), ("vae", "vae_encoder.keras")):
        enc = m[file]
        ev = evaluate_kmeans(enc.predict(prep.x_train, batch_size=1024, verbose=0), prep.y_train,
                             enc.predict(prep.x_test, batch_size=1024, verbose=0), prep.y_test,
                             n_clusters=cfg.n_clusters, random_state=cfg.seed)  # fmt: skip
        now[f"kmeans_acc_{key}"] = ev.test.acc
    for mode in ("frozen", "finetuned"):
        clf = m[f"classifier_{mode}.keras"]
        now[f"accuracy_{mode}"] = float(clf.evaluate(prep.x_test, prep.y_test, batch_size=1024, verbose=0)[1])
    before = {"cae_test_mse": stored["cae"]["test_mse"], "vae_test_neg_elbo": stored["vae"]["test"]["neg_elbo"],
              "kmeans_acc_cae": stored["kmeans"]["cae"]["test"]["acc"],
              "kmeans_acc_vae": stored["kmeans"]["vae"]["test"]["acc"],
              "accuracy_frozen": stored["transfer"]["frozen"]["test_accuracy"],
              "accuracy_finetuned": stored["transfer"]["finetuned"]["test_accuracy"]}  # fmt: skip
    rows = [{"metric": k, "now": v, "stored": before[k], "difference": v - before[k]} for k, v in now.items()]
    write_json(path / "evaluation.json", {"run": str(path), "data": prep.data.source.to_dict(), "rows": rows})
    print(markdown_table(rows, floatfmt=".5g"), end="")
    print("(the VAE's -ELBO draws one z per image, so it varies slightly between evaluations)")
    print(f"written: {path / 'evaluation.json'}")
    return 0


def export(args: argparse.Namespace) -> int:
    path, cfg, _ = _load_run(args)
    models = load_run_models(path, [f for f, _, _ in EXPORTS.values()])
    sample = np.random.default_rng(cfg.seed).random((16, 28, 28, 1), dtype=np.float32)
    rows = export_models(args.models_dir, models, sample)
    print(markdown_table(rows, floatfmt=".2e"), end="")
    print(f"TF Serving config: {Path(args.models_dir) / 'models.config'}")
    return 0


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
        "--clf-epochs", type=positive_int, default=d.clf_epochs, help="epochs of each classifier (default: 10)"
    )
    g.add_argument(
        "--clf-learning-rate",
        type=positive_float,
        default=d.clf_learning_rate,
        help="classifier Adam learning rate (default: 1e-3)",
    )
    p.add_argument("--no-export", action="store_true", help="do not export SavedModels at the end of the run")


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
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
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL, e.g. sqlite:///study.db (default: study.db in the run folder)",
    )
    p.add_argument(
        "--study-name",
        default="fashion-cae",
        help="study (Optuna) or project (KerasTuner) name; an existing Optuna study of this name in "
        "--storage is resumed (default: fashion-cae)",
    )
