"""``vector-fields tune``: the two-stage Optuna search over the field autoencoder's architecture.

Stage 1 searches the shape (depth, channels, pooling) with kernel 3, dilation 1 and one
activation; stage 2 fixes stage 1's best shape and searches kernels, dilations and
activations per layer. Each stage is one Optuna study (``<study-name>-stage1``,
``-stage2``) in one storage, so a killed or extended search resumes where it stopped.
Configurations whose estimated training memory or compute exceed the budgets are pruned
before they are built. The search draws its own synthetic fields (seed + 1000), so what it
chooses is not chosen on the fields a ``run`` reports on.
"""

from __future__ import annotations

import argparse
import functools
import logging
from dataclasses import dataclass, replace

import numpy as np

from keras_clust.app import action, add_tensorboard_argument, config_arguments
from keras_clust.apps.vector_fields.config import (
    DEFAULT_LATENT,
    LOSSES,
    NAME,
    channels_setting,
    dataset_setting,
    max_rotation_setting,
    noise_setting,
    per_class_setting,
    size_setting,
)
from keras_clust.apps.vector_fields.data import TUNE_DATA_OFFSET, acquire, split_fields
from keras_clust.apps.vector_fields.pipeline import reconstruction_scores
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, Run, run_experiment
from keras_clust.fields.autoencoder import ACTIVATIONS, REPORT, build_field_ae, estimate_cost
from keras_clust.markdown import markdown_table
from keras_clust.option_types import non_negative_float, non_negative_int, positive_float, positive_int
from keras_clust.settings import (
    config_from_args,
    grace_period_setting,
    heartbeat_interval_setting,
    optional_setting,
    setting,
    storage_setting,
    study_name_setting,
    workers_setting,
)
from keras_clust.training import fit_autoencoder, fit_context

log = logging.getLogger("keras_clust.apps.vector_fields")
GIB = 2**30


SEARCH = "search"
#: Trials per stage (``--quick``: QUICK_TRIALS), unless ``--stage1-trials``/``--stage2-trials`` say otherwise.
TRIALS, QUICK_TRIALS = 14, 2


def stage_trials_setting(what: str):
    return setting(
        None,
        f"total trials of stage {what}",
        type=positive_int,
        default_text=f"{TRIALS}; --quick: {QUICK_TRIALS}",
        group=SEARCH,
    )


@dataclass
class TuneConfig:
    """Every setting of a ``vector-fields tune`` (stored as ``config.json``). A stage's trials
    not given are :data:`TRIALS` (:data:`QUICK_TRIALS` with ``--quick``); given, they are kept."""

    dataset: str | None = dataset_setting("search on your fields instead of synthetic ones")
    per_class: int = per_class_setting(100, quick=12)
    size: int = size_setting()
    channels: tuple[str, ...] = channels_setting()
    noise: float = noise_setting()
    max_rotation: float = max_rotation_setting()
    latent: int = setting(DEFAULT_LATENT, "embedding size (the slides used 3)", type=positive_int, group=SEARCH)
    activation: str = setting("selu", "the one activation of stage 1", choices=ACTIVATIONS, group=SEARCH)
    loss: str = setting("mse", "objective's loss", choices=LOSSES, group=SEARCH)
    weight_floor: float = setting(
        0.1, "added to the magnitude in weighted_mse's weights", type=non_negative_float, group=SEARCH
    )
    stage1_trials: int = stage_trials_setting("1 (depth, channels, pooling)")
    stage2_trials: int = stage_trials_setting("2 (kernels, dilations, activations)")
    epochs: int = setting(8, "epochs per trial", type=positive_int, quick=1, group=SEARCH)
    batch_size: int = setting(32, "batch size", type=positive_int, group=SEARCH)
    learning_rate: float = setting(1e-3, "Adam", type=positive_float, group=SEARCH)
    max_memory_gib: float = setting(
        4.0,
        "prune configurations whose estimated training memory exceeds this many GiB",
        type=positive_float,
        flag="--max-memory",
        metavar="GIB",
        group=SEARCH,
    )
    max_gmacs: float = setting(
        1.0,
        "prune configurations costing more than this many 10^9 multiply-adds per field per training step (the "
        "slides' winner: 0.26)",
        type=positive_float,
        group=SEARCH,
    )
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    storage: str | None = storage_setting()
    study_name: str = study_name_setting(NAME, "base name of the two studies (<name>-stage1, <name>-stage2)")
    timeout: float | None = optional_setting(
        "stop starting trials after S seconds per stage",
        type=non_negative_float,
        default_text="no limit",
        group=SEARCH,
    )
    workers: int = workers_setting()
    heartbeat_interval: int = heartbeat_interval_setting()
    grace_period: int = grace_period_setting()
    quick: bool = setting(False, "smoke run: 12 fields per type, 2 trials per stage, 1 epoch")
    seed: int = setting(
        0, "seed of the samplers and weights; the fields are drawn with seed + 1000", type=non_negative_int
    )

    def __post_init__(self):
        self.channels = tuple(self.channels)
        for stage in ("stage1", "stage2"):
            if getattr(self, f"{stage}_trials") is None:
                setattr(self, f"{stage}_trials", QUICK_TRIALS if self.quick else TRIALS)

    @property
    def data_seed(self) -> int:
        return self.seed + TUNE_DATA_OFFSET


def build_for_search(shape, loss: str, weight_floor: float, learning_rate: float, scale: float, **kwargs):
    """The search's builder: flat parameters -> a compiled autoencoder (the ``autoencoder`` model)."""
    from keras_clust.fields.search_space import space_config

    return build_field_ae(
        space_config(kwargs), shape, loss=loss, weight_floor=weight_floor, learning_rate=learning_rate, scale=scale
    ).autoencoder


def shape_tag(config) -> str:
    """A stage-1 shape as part of a study name: ``L5-c11.10.12.10-p2x2x2x2x5``."""
    from keras_clust.fields.pooling import pools_key

    return f"L{config.num_layers}-c{'.'.join(map(str, config.channels))}-p{pools_key(config.pools)}"


def check_study_data(storage: str, study_name: str, fingerprint: str) -> None:
    """A study searched on fields of one shape cannot be resumed on fields of another: its pooling
    choices would differ. The first run records the shape in the study; later runs must match."""
    import optuna

    from keras_clust.tuning import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage)
    study = optuna.create_study(study_name=study_name, storage=store, direction="minimize", load_if_exists=True)
    had = study.user_attrs.get("fields")
    if had is None:
        study.set_user_attr("fields", fingerprint)
    elif had != fingerprint:
        raise UsageError(
            f"study {study_name!r} in {storage} searched fields {had}, these are {fingerprint}; "
            "use another --study-name or storage"
        )


def over_budget(kwargs: dict, shape, batch_size: int, max_memory_gib: float, max_gmacs: float) -> str | None:
    """Why a configuration is too big to train here (estimated memory or compute), or None."""
    from keras_clust.fields.search_space import space_config

    cost = estimate_cost(space_config(kwargs), shape, batch_size)
    if cost.total_bytes > max_memory_gib * GIB:
        return f"estimated {cost.total_bytes / GIB:.2f} GiB at batch {batch_size} > --max-memory {max_memory_gib:g} GiB"
    if cost.train_gmacs_per_field > max_gmacs:
        return f"{cost.train_gmacs_per_field:.2f} GMAC per field per step > --max-gmacs {max_gmacs:g}"
    return None


def _pruned_reasons(study) -> dict[int, str]:
    return {
        t.number: t.user_attrs["pruned_reason"]
        for t in study.get_trials(deepcopy=False)
        if "pruned_reason" in t.user_attrs
    }


def _stage(name, space, build, splits, cfg, storage, run, enqueue, prune_if, study_name, tensorboard=None):
    from keras_clust.tuning import run_optuna_search
    from keras_clust.viz.search import plot_search

    result, study = run_optuna_search(
        space,
        build,
        (splits.x_train, splits.x_train),
        (splits.x_val, splits.x_val),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        n_trials=getattr(cfg, f"{name}_trials"),
        storage=storage,
        study_name=study_name,
        seed=cfg.seed,
        timeout=cfg.timeout,
        n_warmup_steps=2,
        workers=cfg.workers,
        heartbeat_interval=cfg.heartbeat_interval,
        grace_period=cfg.grace_period,
        tensorboard=tensorboard,
        checkpoint=run.file(f"models/{name}_best_trial.keras"),
        enqueue=enqueue,
        prune_if=prune_if,
    )
    figures = plot_search(result, study, run.figures, prefix=f"{name}_")
    over = _pruned_reasons(study)
    rows = result.trial_rows()
    keys = list(dict.fromkeys(k for r in rows for k in r))  # conditional parameters: every column, in order
    rows = [{**{k: r.get(k, "") for k in keys}, "pruned because": over.get(r["trial"], "")} for r in rows]
    entry = {**result.to_dict(), "trial_rows": rows, "figures": sorted(figures), "pruned_for_budget": len(over)}
    return result, entry


def tune_steps(cfg: TuneConfig, run: Run) -> None:
    """Both stages, the best configuration's test scores and its reconstructions."""
    import keras

    from keras_clust.fields.dataset import fields_source
    from keras_clust.fields.figures import plot_field_pairs
    from keras_clust.fields.search_space import (
        space_config,
        stage1_params,
        stage1_space,
        stage2_params,
        stage2_space,
    )

    with fit_context(tensorboard=run.tensorboard) as fits:  # a trial is not resumed: no backups
        fs = acquire(cfg, cfg.data_seed)
        run.set_data(fields_source(fs, cfg.dataset))
        shape = tuple(int(d) for d in fs.fields.shape[1:])
        splits = split_fields(fs.fields, fs.labels, cfg.val_fraction, cfg.test_fraction, cfg.data_seed)
        storage = cfg.storage or f"sqlite:///{run.file('study.db')}"
        if cfg.storage is None:
            run.folder.keep_on_abort("study.db")
        build = functools.partial(build_for_search, shape, cfg.loss, cfg.weight_floor, cfg.learning_rate, splits.scale)
        fingerprint = "x".join(map(str, shape)) + f" ({', '.join(fs.channels)})"
        check_study_data(storage, f"{cfg.study_name}-stage1", fingerprint)
        prune_if = functools.partial(
            over_budget,
            shape=shape,
            batch_size=cfg.batch_size,
            max_memory_gib=cfg.max_memory_gib,
            max_gmacs=cfg.max_gmacs,
        )
        metrics = run.metrics
        metrics.update(split=splits.sizes, stages={})

        space1 = stage1_space(shape[0], cfg.latent, cfg.activation)
        slides_shape = [stage1_params(REPORT)] if shape[0] == 80 else []
        log.info(
            "stage 1: depth, channels, pooling; %d trials x %d epochs on %d fields",
            cfg.stage1_trials,
            cfg.epochs,
            len(splits.x_train),
        )
        result1, metrics["stages"]["stage1"] = _stage(
            "stage1",
            space1,
            build,
            splits,
            cfg,
            storage,
            run,
            slides_shape,
            prune_if,
            f"{cfg.study_name}-stage1",
            fits.tensorboard and fits.tensorboard / "stage1",
        )
        if result1.best is None:
            raise UsageError(
                "stage 1 finished no trial (all pruned or diverged); raise --max-memory/--max-gmacs or add trials"
            )
        shape_params = result1.best.params
        space2 = stage2_space(shape_params, cfg.latent)
        stage1_cfg = space_config(space1.builder_kwargs(shape_params))
        enqueue = [stage2_params(stage1_cfg)]  # stage 2 starts from stage 1's best as it was
        if stage1_cfg.pools == REPORT.pools and stage1_cfg.channels == REPORT.channels:
            enqueue.append(stage2_params(REPORT))
        log.info("stage 2: kernels, dilations, activations of %s", stage1_cfg.describe())
        # one stage-2 study per stage-1 shape: a resumed search whose stage-1 best changed starts a new one
        name2 = f"{cfg.study_name}-stage2-{shape_tag(stage1_cfg)}"
        logs2 = fits.tensorboard and fits.tensorboard / "stage2"
        result2, metrics["stages"]["stage2"] = _stage(
            "stage2", space2, build, splits, cfg, storage, run, enqueue, prune_if, name2, logs2
        )
        if cfg.storage is None:  # the run folder's final name, not its .partial one
            for entry in metrics["stages"].values():
                entry["storage"] = f"sqlite:///{run.folder.path.resolve() / 'study.db'}"
        baseline = next((t for t in result2.trials if t.number == 0 and t.state == "complete"), None)
        metrics["stage2_baseline"] = baseline.value if baseline is not None and result2.resumed_trials == 0 else None
        candidates = [
            (r.best.value, name, space.builder_kwargs(r.best.params), r)
            for name, r, space in (("stage1", result1, space1), ("stage2", result2, space2))
            if r.best is not None
        ]
        value, stage, kwargs, result = min(candidates, key=lambda c: c[0])
        best = replace(space_config(kwargs), latent=cfg.latent)
        metrics.update(
            best_architecture=best.to_dict(),
            best_describe=best.describe(),
            best_stage=stage,
            best_val_loss=value,
            stage1_best=result1.best.value,
            stage2_best=result2.best.value if result2.best else None,
        )
        checkpoint = run.file(f"models/{stage}_best_trial.keras")
        if result.checkpoint_trial == result.best.number and checkpoint.is_file():
            model = keras.models.load_model(checkpoint)
        else:  # the best trial ran in an earlier process: train its configuration again
            log.info("retraining the best configuration (%s) for %d epochs", stage, cfg.epochs)
            run.seed_model(f"{stage}_best")
            model = build(**kwargs)
            fit_autoencoder(model, splits, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0)
            metrics["best_retrained"] = True
        recon = model.predict(splits.x_test, batch_size=256, verbose=0)
        metrics["best_test"] = reconstruction_scores(splits.x_test, recon, fs.channels, cfg.weight_floor)
        idx = np.random.default_rng(cfg.seed).choice(len(splits.x_test), min(6, len(splits.x_test)), replace=False)
        titles = [fs.class_names[fs.labels[splits.idx_test[i]]] for i in idx] if fs.labels is not None else None
        plot_field_pairs(splits.x_test[idx], recon[idx], run.figures / "reconstructions.png", titles=titles)
        run.history = [
            {"stage": s, "trial": t["number"], "state": t["state"], "epoch": i + 1, "val_loss": v}
            for s, e in metrics["stages"].items()
            for t in e["trials"]
            for i, v in enumerate(t["curve"])
        ]


def tune_summary(cfg: TuneConfig, metrics: dict) -> str:
    return (
        markdown_table(stage_rows(metrics), floatfmt=".4g")
        + f"best ({metrics['best_stage']}): {metrics['best_describe']}, latent "
        f"{metrics['best_architecture']['latent']}: validation loss {metrics['best_val_loss']:.4g}\n"
        f"resume or extend: keras-clust {NAME} tune --storage {metrics['stages']['stage1']['storage']} "
        f"--study-name {cfg.study_name} --stage1-trials N --stage2-trials M"
    )


def stage_rows(metrics: dict) -> list[dict]:
    rows = []
    for name, e in metrics["stages"].items():
        s = e["summary"]
        rows.append(
            {
                "stage": name,
                "best val loss": s["best_value"],
                "best trial": s["best_trial"],
                "trials": s["trials"],
                "complete": s["complete"],
                "pruned": s["pruned"],
                "pruned for budget": e["pruned_for_budget"],
                "failed": s["failed"],
                "search s": round(s["seconds"]),
            }
        )
    return rows


def render_tune_report(cfg: TuneConfig, metrics: dict) -> str:
    s1, s2 = metrics["stage1_best"], metrics["stage2_best"]
    moved = (
        f"stage 2 lowered stage 1's best validation loss by {100 * (s1 - s2) / s1:.1f} %"
        if s2 is not None and s2 < s1
        else "stage 2 did not improve on stage 1's best: the shape carries the result"
    )
    if metrics.get("stage2_baseline") is not None:
        moved += (
            f" (stage 2's first trial trains stage 1's best again from another initial seed: "
            f"{metrics['stage2_baseline']:.4g} against {s1:.4g}, the size of seed-to-seed noise)"
        )
    lines = [
        f"# vector-fields tune `{metrics['run_id']}`",
        "",
        f"**Data:** {metrics['data']['note']}"
        + ("" if cfg.dataset else f" (seed {cfg.data_seed}: not the fields a run with seed {cfg.seed} reports on)")
        + f"; train {metrics['split']['train']}, validation {metrics['split']['val']}, test "
        f"{metrics['split']['test']}.",
        "",
        f"**Search:** validation {cfg.loss} after {cfg.epochs} epochs per trial (batch {cfg.batch_size}, Adam "
        f"{cfg.learning_rate:g}), median pruning per epoch, TPE seeded with {cfg.seed}; latent {cfg.latent}; "
        f"budgets: {cfg.max_memory_gib:g} GiB estimated training memory, {cfg.max_gmacs:g} GMAC per field per "
        f"step. Stage 1 starts with the slides' shape (kernel 3), stage 2 with stage 1's best as it was.",
        "",
        markdown_table(stage_rows(metrics), floatfmt=".4g"),
        f"**Best** ({metrics['best_stage']}): {metrics['best_describe']}, latent {cfg.latent}: validation loss "
        f"{metrics['best_val_loss']:.4g}; {moved}.",
        "",
    ]
    if "best_test" in metrics:
        t = metrics["best_test"]
        lines += [
            f"Its trained model on the test fields: MSE {t['mse']:.4g} (field variance {t['variance']:.4g}); "
            "the slides reached 0.007 (DBSCAN solution) and 0.013 (KMeans solution) on their own fields with "
            "an unpooling decoder.",
            "",
            "![reconstructions](figures/reconstructions.png)",
            "",
        ]
    for name, e in metrics["stages"].items():
        lines += [
            f"## {name}",
            "",
            f"Study `{e['study_name']}` in `{e['storage']}`"
            + (f"; resumed with {e['resumed_trials']} earlier trials" if e["resumed_trials"] else "")
            + ".",
            "",
            markdown_table(e["trial_rows"], floatfmt=".4g"),
            "",
        ]
        lines += [f"![{name} {fig}](figures/{name}_{fig}.png)" for fig in e["figures"]] + [""]
    return "\n".join(lines) + "\n"


def tune_config(args: argparse.Namespace) -> TuneConfig:
    """The search's config, its storage checked before any data or folder."""
    cfg = config_from_args(TuneConfig, args)
    if cfg.storage is not None:
        from keras_clust.tuning import open_storage

        open_storage(cfg.storage)  # a bad URL fails now, before any data or folder
    return cfg


TUNE_SPEC = ExperimentSpec(
    name=NAME, config=TuneConfig, steps=tune_steps, report=render_tune_report, summary=tune_summary, action="tune"
)


@action("tune", config_arguments(TuneConfig, add_tensorboard_argument, run=False), TuneConfig)
def tune(args: argparse.Namespace) -> int:
    """two-stage Optuna search over the autoencoder's architecture"""
    done = run_experiment(TUNE_SPEC, tune_config(args), args.out, tensorboard=args.tensorboard)
    print(f"use the best: keras-clust {NAME} run --params-from {done.path}")
    return 0
