"""``vector-fields generate``, ``run``, ``cluster``, ``evaluate`` and ``export``, and their options."""

from __future__ import annotations

import argparse
import functools
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from keras_clust.app import action, add_export_arguments, add_saved_run_arguments, config_arguments
from keras_clust.apps.vector_fields.clustering import cluster_codes
from keras_clust.apps.vector_fields.config import (
    DEFAULT_LATENT,
    NAME,
    ArchitectureOptions,
    ClusterConfig,
    ClusterSettings,
    Config,
    GenerateSettings,
    quick_cluster,
)
from keras_clust.apps.vector_fields.data import split_fields
from keras_clust.apps.vector_fields.pipeline import check_architecture, reconstruction_scores
from keras_clust.apps.vector_fields.report import clustering_section, render_report, score_rows, summary
from keras_clust.apps.vector_fields.steps import load_data, steps
from keras_clust.errors import DataError, UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    LoadedRun,
    Run,
    export_from_args,
    load_run,
    run_experiment,
    run_from_args,
    warn_if_data_differs,
    write_evaluation,
)
from keras_clust.fields.autoencoder import REPORT, FieldAEConfig
from keras_clust.fields.generator import FLOW_TYPES
from keras_clust.files import read_json
from keras_clust.markdown import markdown_table
from keras_clust.run_folder import load_run_models
from keras_clust.settings import add_settings, config_from_args

log = logging.getLogger("keras_clust.apps.vector_fields")


#: The SavedModels of a run: the deterministic encoder (``fields`` -> ``embedding``) and the
#: decoder (``embedding`` -> ``fields``).
EXPORTS = (
    Export("vector_fields_encoder", "encoder.keras", "fields", ("embedding",)),
    Export("vector_fields_decoder", "decoder.keras", "embedding", ("fields",)),
)
SPEC = ExperimentSpec(NAME, Config, steps, render_report, summary, exports=lambda cfg: EXPORTS)


# --- options -------------------------------------------------------------------------------------


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, required=True, metavar="FILE.npz", help="where the fields go")
    add_settings(p, GenerateSettings)


def add_run_extras(p: argparse.ArgumentParser) -> None:
    """The options of ``run`` besides its config's own: ``--latent`` and the study's."""
    add_settings(p, ArchitectureOptions)
    add_settings(p, ClusterSettings)


def add_cluster_action_arguments(p: argparse.ArgumentParser) -> None:
    """``--run`` and ``--dataset`` pick the codes; the study's settings say how they are clustered."""
    add_settings(p, ClusterSettings)


# --- generate ------------------------------------------------------------------------------


@action("generate", add_generate_arguments)
def generate(args: argparse.Namespace) -> int:
    """write synthetic fields of eleven flow types with their labels (.npz)

    Write the synthetic fields and their labels to one ``.npz`` (atomically)."""
    from keras_clust.fields.dataset import save_fields
    from keras_clust.fields.generator import generate_fields

    out = Path(args.output)
    if out.suffix != ".npz":
        raise UsageError(f"--output {out}: the fields are written as .npz; give a name ending in .npz")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist; create it first")
    g = config_from_args(GenerateSettings, args)
    fs = generate_fields(
        g.per_class, size=g.size, channels=g.channels, noise=g.noise, max_rotation=g.max_rotation, seed=g.seed
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


def architecture_from(params_from: Path | None, latent: int | None) -> tuple[dict, str | None]:
    """The autoencoder of a run: ``--params-from`` a tune folder, else the preset; ``--latent`` overrides."""
    if params_from is not None:
        path = Path(params_from)
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
    if latent is not None:
        arch = replace(arch, latent=latent)
    return arch.to_dict(), source


def run_config(args: argparse.Namespace) -> Config:
    """The config of ``vector-fields run``: its options (the architecture from ``--params-from`` and
    ``--latent``), capped by ``--quick`` and checked before any folder is opened."""
    arch, source = architecture_from(args.params_from, args.latent)
    cluster = config_from_args(ClusterSettings, args).check()
    cfg = config_from_args(Config, args, architecture=arch, params_from=source, cluster=cluster)
    if cfg.quick:
        cfg.cluster = quick_cluster(cfg.cluster)
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


@action("run", config_arguments(Config, add_run_extras), Config)
def run(args: argparse.Namespace) -> int:
    """generate or read fields, train the autoencoder, cluster its codes, report, export"""
    return run_from_args(SPEC, args, run_config)


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


def cluster_config(args: argparse.Namespace, loaded: LoadedRun) -> ClusterConfig:
    """The config of ``cluster``: the finished run's folder, the fields (its own unless ``--dataset``)
    and the study's settings."""
    settings = config_from_args(ClusterSettings, args).check()
    dataset = str(args.dataset) if args.dataset is not None else loaded.config.dataset
    return ClusterConfig(run=str(loaded.path), dataset=dataset, cluster=settings, seed=args.seed)


def cluster_steps(cfg: ClusterConfig, run: Run, loaded: LoadedRun) -> None:
    """Encode the run's fields with its encoder, run the study on the codes, score and draw it."""
    from keras_clust.fields.dataset import fields_source

    data_cfg, fs, codes = _run_codes(loaded, cfg.dataset)
    metrics, chosen = cluster_codes(codes, fs.fields, fs.labels, fs.class_names, cfg.cluster, cfg.seed, run.figures)
    np.savez_compressed(
        run.file("clusters.npz"),
        codes=codes,
        cluster=chosen,
        **({"labels": fs.labels} if fs.labels is not None else {}),
    )
    run.set_data(fields_source(fs, data_cfg.dataset))
    run.metrics.update(run=str(loaded.path), clustering=metrics)


def render_cluster_report(cfg: ClusterConfig, metrics: dict) -> str:
    return "\n".join(
        [
            f"# vector-fields cluster `{metrics['run_id']}`",
            "",
            f"Codes of run `{metrics['run']}` ({metrics['data']['note']}).",
            "",
            *clustering_section(metrics["clustering"]),
        ]
    )


def cluster_summary(cfg: ClusterConfig, metrics: dict) -> str:
    clustering = metrics["clustering"]
    ch = clustering["chosen"]
    text = (
        f"chosen clustering: {ch['algorithm']} {ch['params']}: {ch['n_clusters']} clusters, silhouette "
        f"{ch['silhouette']:.3f}, noise {ch['noise']}\n"
    )
    if "scores" in clustering:
        text += markdown_table(score_rows(clustering), floatfmt=".3f")
    return text


CLUSTER_SPEC = ExperimentSpec(
    NAME, ClusterConfig, cluster_steps, render_cluster_report, cluster_summary, action="cluster"
)


@action("cluster", config_arguments(ClusterConfig, add_cluster_action_arguments, run=False), ClusterConfig)
def cluster(args: argparse.Namespace) -> int:
    """cluster a finished run's codes again (multi-objective study)

    Cluster a finished run's codes again with other study settings; writes a ``cluster`` folder."""
    loaded = load_run(SPEC, args.out, args.run)
    cfg = cluster_config(args, loaded)
    spec = replace(CLUSTER_SPEC, steps=functools.partial(cluster_steps, loaded=loaded))
    run_experiment(spec, cfg, args.out)
    return 0


@action("evaluate", add_saved_run_arguments)
def evaluate(args: argparse.Namespace) -> int:
    """re-score a run's test fields with its saved models

    Re-score a run's test fields with its saved models, against the stored numbers."""
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


@action("export", add_export_arguments)
def export(args: argparse.Namespace) -> int:
    """export a run's encoder (fields -> embedding) and decoder as SavedModels"""
    return export_from_args(SPEC, args)
