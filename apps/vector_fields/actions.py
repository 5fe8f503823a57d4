"""``vector-fields generate``, ``run``, ``cluster``, ``evaluate`` and ``export``, and their options."""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from keras_clust.app import (
    add_cluster_argument,
    add_models_dir_argument,
    add_run_options,
    add_saved_run_arguments,
    fraction,
    names_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_options,
)
from keras_clust.apps.vector_fields.clustering import cluster_codes
from keras_clust.apps.vector_fields.config import (
    CHOICES,
    CLUSTER_ALGORITHMS,
    DEFAULT_LATENT,
    NAME,
    OBJECTIVES,
    ClusterSettings,
    Config,
    check_cluster_settings,
    quick_config,
)
from keras_clust.apps.vector_fields.data import split_fields
from keras_clust.apps.vector_fields.pipeline import check_architecture, reconstruction_scores
from keras_clust.apps.vector_fields.report import clustering_section, render_report, score_rows, summary
from keras_clust.apps.vector_fields.steps import load_data, steps
from keras_clust.errors import DataError, UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    load_run,
    run_experiment,
    warn_if_data_differs,
    write_evaluation,
)
from keras_clust.fields.autoencoder import REPORT, UPSAMPLING, FieldAEConfig
from keras_clust.fields.generator import CHANNELS, FLOW_TYPES
from keras_clust.runs import RunFolder, load_run_models, markdown_table, read_json, set_seed

log = logging.getLogger("keras_clust.apps.vector_fields")


def exports(cfg: Config) -> list[Export]:
    """The deterministic encoder (``fields`` -> ``embedding``) and the decoder (``embedding`` -> ``fields``)."""
    return [
        Export("vector_fields_encoder", "encoder.keras", "fields", ("embedding",)),
        Export("vector_fields_decoder", "decoder.keras", "embedding", ("fields",)),
    ]


SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=render_report, summary=summary, exports=exports)


# --- generate ------------------------------------------------------------------------------


def generate(args: argparse.Namespace) -> int:
    """Write the synthetic fields and their labels to one ``.npz`` (atomically)."""
    from keras_clust.fields.dataset import save_fields
    from keras_clust.fields.generator import generate_fields

    out = Path(args.output)
    if out.suffix != ".npz":
        raise UsageError(f"--output {out}: the fields are written as .npz; give a name ending in .npz")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist; create it first")
    fs = generate_fields(
        args.per_class,
        size=args.size,
        channels=args.channels,
        noise=args.noise,
        max_rotation=args.max_rotation,
        seed=args.seed,
    )
    save_fields(fs, out)
    counts = np.bincount(fs.labels, minlength=len(fs.class_names))
    print(
        markdown_table([{"flow type": n, "fields": int(c)} for n, c in zip(fs.class_names, counts, strict=True)]),
        end="",
    )
    print(f"{fs.note}\nwritten: {out} (fields {fs.fields.shape}, labels, class_names, channels, parameters)")
    return 0


# --- run -----------------------------------------------------------------------------------


def architecture_from(args: argparse.Namespace) -> tuple[dict, str | None]:
    """The autoencoder of a run: ``--params-from`` a tune folder, else the preset; ``--latent`` overrides."""
    if args.params_from is not None:
        path = Path(args.params_from)
        metrics = path / "metrics.json" if path.is_dir() else path
        if not metrics.is_file():
            raise UsageError(f"--params-from {path}: no metrics.json there; pass a 'vector-fields tune' run folder")
        saved = read_json(metrics)
        best = saved.get("best_architecture") if isinstance(saved, dict) else None
        if not best:
            raise UsageError(
                f"--params-from {path} holds no best_architecture; pass a finished 'vector-fields tune' run folder"
            )
        arch = FieldAEConfig.from_dict(best)
        source = str(path)
    else:
        arch, source = replace(REPORT, latent=DEFAULT_LATENT), None
    if args.latent is not None:
        arch = replace(arch, latent=args.latent)
    return arch.to_dict(), source


def cluster_settings(args: argparse.Namespace) -> ClusterSettings:
    s = ClusterSettings(
        algorithms=args.algorithms,
        objectives=args.objectives,
        trials=args.cluster_trials,
        k_max=args.k_max,
        choose=args.choose,
        n_init=args.n_init,
    )
    check_cluster_settings(s)
    return s


def config_from_args(args: argparse.Namespace) -> Config:
    arch, source = architecture_from(args)
    cfg = Config(
        dataset=str(args.dataset) if args.dataset else None,
        per_class=args.per_class,
        size=args.size,
        channels=args.channels,
        noise=args.noise,
        max_rotation=args.max_rotation,
        architecture=arch,
        params_from=source,
        loss=args.loss,
        weight_floor=args.weight_floor,
        vae=args.vae,
        beta=args.beta,
        upsampling=args.upsampling,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        cluster=cluster_settings(args),
        deep_cluster=args.deep_cluster,
        quick=args.quick,
        seed=args.seed,
        export=not args.no_export,
        models_dir=str(args.models_dir),
    )
    if cfg.quick:
        cfg = quick_config(cfg)
    if cfg.vae and cfg.loss != "mse":
        raise UsageError("--vae trains on the negative ELBO; --loss applies to the plain autoencoder only")
    arch = FieldAEConfig.from_dict(cfg.architecture).check()
    if cfg.dataset is None:
        check_architecture(arch, cfg.size)
        n = cfg.per_class * len(FLOW_TYPES)
        if n <= cfg.cluster.k_max:
            raise UsageError(
                f"{n} fields are too few for --k-max {cfg.cluster.k_max}; raise --per-class or lower --k-max"
            )
    return cfg.check()


def run(args: argparse.Namespace) -> int:
    run_experiment(SPEC, config_from_args(args), args.out, **run_options(args))
    return 0


# --- cluster, evaluate, export -----------------------------------------------------------------


def _run_codes(loaded, dataset: str | None):
    """A finished run's fields (its own, regenerated from its settings, or ``dataset``) and their codes."""
    cfg = loaded.config if dataset is None else replace(loaded.config, dataset=str(dataset))
    fs = load_data(cfg)
    encoder = load_run_models(loaded.path, ["encoder.keras"])["encoder.keras"]
    want = tuple(int(d) for d in encoder.inputs[0].shape[1:])
    if fs.fields.shape[1:] != want:
        raise DataError(
            f"{dataset or 'the data'} has fields of shape {fs.fields.shape[1:]}; the run's encoder takes {want}"
        )
    return cfg, fs, encoder.predict(fs.fields, batch_size=256, verbose=0)


def cluster(args: argparse.Namespace) -> int:
    """Cluster a finished run's codes again with other study settings; writes a ``cluster`` folder."""
    from keras_clust.fields.dataset import fields_source

    loaded = load_run(SPEC, args.out, args.run)
    settings = cluster_settings(args)
    set_seed(args.seed)
    start = time.perf_counter()
    with RunFolder(args.out, NAME, args.seed) as rf:
        cfg, fs, codes = _run_codes(loaded, args.dataset)
        metrics, chosen = cluster_codes(codes, fs.fields, fs.labels, fs.class_names, settings, args.seed, rf.figures)
        np.savez_compressed(
            rf.file("clusters.npz"),
            codes=codes,
            cluster=chosen,
            **({"labels": fs.labels} if fs.labels is not None else {}),
        )
        source = fields_source(fs, cfg.dataset).to_dict()
        rf.write_config(
            {
                "experiment": NAME,
                "action": "cluster",
                "run": str(loaded.path),
                "dataset": cfg.dataset,
                "cluster": asdict(settings),
                "seed": args.seed,
                "data": source,
            }
        )
        rf.write_metrics(
            {
                "run_id": rf.run_id,
                "run": str(loaded.path),
                "data": source,
                "clustering": metrics,
                "total_seconds": round(time.perf_counter() - start, 1),
            }
        )
        rf.write_history([])
        rf.write_report(
            "\n".join(
                [
                    f"# vector-fields cluster `{rf.run_id}`",
                    "",
                    f"Codes of run `{loaded.path}` ({source['note']}).",
                    "",
                    *clustering_section(metrics),
                ]
            )
            + "\n"
        )
    ch = metrics["chosen"]
    print(
        f"chosen clustering: {ch['algorithm']} {ch['params']}: {ch['n_clusters']} clusters, silhouette "
        f"{ch['silhouette']:.3f}, noise {ch['noise']}"
    )
    if "scores" in metrics:
        print(markdown_table(score_rows(metrics), floatfmt=".3f"), end="")
    print(f"run folder: {rf.path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Re-score a run's test fields with its saved models, against the stored numbers."""
    loaded = load_run(SPEC, args.out, args.run)
    cfg = loaded.config
    fs = load_data(cfg)
    from keras_clust.fields.dataset import fields_source

    warn_if_data_differs(loaded.metrics, fields_source(fs, cfg.dataset))
    splits = split_fields(fs.fields, fs.labels, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    models = load_run_models(loaded.path, ["encoder.keras", "decoder.keras"])
    codes = models["encoder.keras"].predict(fs.fields, batch_size=256, verbose=0)  # every field once, as the run did
    recon = models["decoder.keras"].predict(codes[splits.idx_test], batch_size=256, verbose=0)
    scores = reconstruction_scores(splits.x_test, recon, fs.channels, cfg.weight_floor)
    stored = loaded.metrics["model"]["test"]
    rows = [
        {"score": k, "now": scores[k], "stored in the run": stored[k], "difference": scores[k] - stored[k]}
        for k in ("mse", "weighted_mse")
    ]
    result = {"run": str(loaded.path), "test": scores, "stored": stored}
    clusters = loaded.path / "clusters.npz"
    if clusters.is_file():  # the codes of every field, encoded again, against the ones the run clustered
        saved = np.load(clusters)
        if codes.shape == saved["codes"].shape:
            result["codes_max_abs_difference"] = float(np.max(np.abs(codes - saved["codes"])))
            rows.append(
                {
                    "score": "codes: largest |difference|",
                    "now": result["codes_max_abs_difference"],
                    "stored in the run": 0.0,
                    "difference": result["codes_max_abs_difference"],
                }
            )
    return write_evaluation(loaded.path, result, rows, floatfmt=".6g")


def export(args: argparse.Namespace) -> int:
    from keras_clust.experiment import export_action

    return export_action(SPEC)(args)


# --- options -------------------------------------------------------------------------------------


def add_data_arguments(p: argparse.ArgumentParser, per_class_default: int = 300) -> None:
    d = Config()
    g = p.add_argument_group("synthetic fields")
    g.add_argument(
        "--per-class",
        type=positive_int,
        default=per_class_default,
        help=f"fields per flow type (11 types; default: {per_class_default}; --quick: 24)",
    )
    g.add_argument("--size", type=positive_int, default=d.size, help="side of the square fields in cells (default: 80)")
    g.add_argument(
        "--channels",
        type=names_list(CHANNELS),
        default=d.channels,
        help="channels, from u,v,magnitude (default: u,v,magnitude)",
    )
    g.add_argument(
        "--noise",
        type=non_negative_float,
        default=d.noise,
        help="Gaussian noise on u and v, relative to the field's strength (default: 0.05)",
    )
    g.add_argument(
        "--max-rotation",
        type=non_negative_float,
        default=d.max_rotation,
        help="largest rotation of a pattern in degrees, drawn uniformly in +-this (default: 45)",
    )


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    c = ClusterSettings()
    g = p.add_argument_group("clustering study")
    g.add_argument(
        "--algorithms",
        type=names_list(CLUSTER_ALGORITHMS),
        default=c.algorithms,
        help="clustering algorithms the study chooses from (default: kmeans,dbscan)",
    )
    g.add_argument(
        "--objectives",
        type=names_list(OBJECTIVES),
        default=c.objectives,
        help="2 or 3 of silhouette (max), knives (max: share of clusters cutting the mean silhouette), "
        "knife_count (max: their number, the slides' wording), spacing (min: spread of the centroid "
        "distances over their mean) (default: silhouette,knives)",
    )
    g.add_argument(
        "--cluster-trials",
        type=positive_int,
        default=c.trials,
        help=f"trials of the clustering study (default: {c.trials}; --quick: 12)",
    )
    g.add_argument("--k-max", type=positive_int, default=c.k_max, help="largest KMeans k tried (default: 15)")
    g.add_argument(
        "--choose",
        choices=CHOICES,
        default=c.choose,
        help="which Pareto solution is chosen: knee (closest to the ideal point), silhouette or knives (default: knee)",
    )
    g.add_argument("--n-init", type=positive_int, default=c.n_init, help="KMeans restarts (default: 10)")


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, required=True, metavar="FILE.npz", help="where the fields go")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the generator (default: 0)")
    add_data_arguments(p)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every random choice (default: 0)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    p.add_argument("--quick", action="store_true", help="smoke run: 24 fields per type, 2 epochs, 12 clustering trials")
    add_run_options(p)
    add_models_dir_argument(p)
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPY|NPZ",
        help="your fields (N, H, W, C) in .npy/.npz (labels optional) instead of synthetic ones",
    )
    add_data_arguments(p)
    add_cluster_argument(p, dest="deep_cluster")
    d = Config()
    g = p.add_argument_group("autoencoder")
    g.add_argument(
        "--params-from",
        type=Path,
        default=None,
        metavar="TUNE_RUN",
        help="train the best architecture of a 'vector-fields tune' folder (default: the slides' winner)",
    )
    g.add_argument(
        "--latent",
        type=positive_int,
        default=None,
        help=f"embedding size (default: {DEFAULT_LATENT}, or the tune's with --params-from; the slides "
        "used 3: --latent 3 gives their network exactly)",
    )
    g.add_argument(
        "--loss",
        choices=("mse", "weighted_mse"),
        default=d.loss,
        help="mse, or weighted_mse: squared errors weighted by the local field magnitude (default: mse)",
    )
    g.add_argument(
        "--weight-floor",
        type=non_negative_float,
        default=d.weight_floor,
        help="added to the magnitude in the weighted MSE's weights (default: 0.1)",
    )
    g.add_argument("--vae", action="store_true", help="a VAE: z_mean/z_log_var heads, trained on the -ELBO")
    g.add_argument("--beta", type=positive_float, default=d.beta, help="KL weight of the VAE (default: 1)")
    g.add_argument(
        "--upsampling", choices=UPSAMPLING, default=d.upsampling, help="decoder upsampling (default: bilinear)"
    )
    g.add_argument("--epochs", type=positive_int, default=d.epochs, help="epochs (default: 40; --quick: 2)")
    g.add_argument(
        "--patience",
        type=non_negative_int,
        default=d.patience,
        help="epochs without validation improvement before stopping, best epoch kept; 0: never (default: 8)",
    )
    g.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="batch size (default: 32)")
    g.add_argument("--learning-rate", type=positive_float, default=d.learning_rate, help="Adam (default: 0.001)")
    g.add_argument("--val-fraction", type=fraction, default=d.val_fraction, help="validation share (default: 0.15)")
    g.add_argument("--test-fraction", type=fraction, default=d.test_fraction, help="test share (default: 0.15)")
    add_cluster_arguments(p)
    p.add_argument("--no-export", action="store_true", help="do not export SavedModels")


def add_cluster_action_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_run_arguments(p)
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the study (default: 0)")
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPY|NPZ",
        help="cluster these fields with the run's encoder instead of the run's own fields",
    )
    add_cluster_arguments(p)
