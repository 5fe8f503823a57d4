"""``fashion-cae tune``: search the CAE's hyper-parameters with Optuna and/or KerasTuner.

A search is its own action on the skeleton (:mod:`keras_clust.experiment`): :func:`tune_spec`
declares its config, steps, report and summary, and the skeleton seeds, opens the run folder and
writes ``config.json``, ``metrics.json``, ``history.csv`` and ``report.md``. A worker of a
distributed KerasTuner search trains the trials its chief hands out and writes no run folder (the
chief does), so :func:`tune` runs it outside the skeleton.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import keras

from keras_clust.app import action, add_tensorboard_argument, config_arguments
from keras_clust.apps.fashion_cae.config import NAME, QUICK_TUNE_SIZES, TuneConfig, prepare_data, tune_config
from keras_clust.apps.fashion_cae.report import engine_rows, engine_table, render_tune_report
from keras_clust.data.splits import Split
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, Run, run_experiment
from keras_clust.files import read_json
from keras_clust.seeding import set_seed
from keras_clust.training import fit_autoencoder, fit_context
from keras_clust.tuning import (
    CAE_SPACE,
    build_compiled_cae,
    run_kerastuner_search,
    run_optuna_search,
    to_optuna_study,
    work_on_kerastuner_search,
)
from keras_clust.tuning.distributed import distributed_role
from keras_clust.viz import pick_examples, plot_image_rows
from keras_clust.viz.search import plot_search

log = logging.getLogger("keras_clust.apps.fashion_cae")

#: The options of ``tune``: --out, --tensorboard and every setting of :class:`TuneConfig`.
add_tune_arguments = config_arguments(TuneConfig, add_tensorboard_argument, run=False)


def _test_mse(model, prep: Split) -> float:
    return float(model.evaluate(prep.x_test, prep.x_test, batch_size=1024, verbose=0))


def _train_val(prep: Split) -> tuple[tuple, tuple]:
    """A search's training and validation data: the images as inputs and targets."""
    return (prep.x_train, prep.x_train), (prep.x_val, prep.x_val)


def _budget(cfg: TuneConfig) -> dict:
    """The search options both engines, their chiefs and their workers share."""
    return {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "n_trials": cfg.trials, "seed": cfg.seed}


def _search(engine: str, cfg: TuneConfig, prep: Split, run: Run):
    """One engine's search; returns its result, its Optuna study and the best trial's model (or None)."""
    train, val = _train_val(prep)
    budget = _budget(cfg)
    if engine == "optuna":
        storage = cfg.storage or f"sqlite:///{run.file('study.db')}"
        if cfg.storage is None:
            run.folder.keep_on_abort("study.db")
        result, study = run_optuna_search(
            CAE_SPACE,
            build_compiled_cae,
            train,
            val,
            **budget,
            storage=storage,
            study_name=cfg.study_name,
            timeout=cfg.timeout,
            checkpoint=run.file("models/optuna_best_trial.keras"),
            workers=cfg.workers,
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            tensorboard=None if run.tensorboard is None else run.tensorboard / "optuna",
        )
        if cfg.storage is None:
            result.storage = f"sqlite:///{run.folder.path.resolve() / 'study.db'}"
        best = result.best
        checkpoint = None
        if best is not None and result.checkpoint_trial == best.number:
            checkpoint = keras.models.load_model(run.file("models/optuna_best_trial.keras"))
        return result, study, checkpoint
    result, tuner = run_kerastuner_search(
        CAE_SPACE,
        build_compiled_cae,
        train,
        val,
        tuner=cfg.tuner,
        **budget,
        directory=cfg.kerastuner_dir or run.file("kerastuner"),
        project_name=cfg.study_name,
        tensorboard=None if run.tensorboard is None else run.tensorboard / "kerastuner",
    )
    checkpoint = None
    if result.best is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the saved optimizer state is not restored
            checkpoint = tuner.get_best_models(1)[0]
        checkpoint.compile(loss="mse")
    return result, to_optuna_study(result, CAE_SPACE), checkpoint


def _earlier_runs(out: Path, this_run: str) -> list[dict]:
    rows = []
    for path in sorted((Path(out) / NAME).glob("*/metrics.json")):
        if path.parent.name == this_run or path.parent.name.startswith("."):
            continue
        m = read_json(path)
        if "engines" not in m:
            continue
        for row in engine_rows(m):
            rows.append({"run": path.parent.name, **row})
    return rows[-10:]


def _kerastuner_worker(cfg: TuneConfig, tensorboard: bool) -> int:
    """A worker of a distributed KerasTuner search: train the trials the chief hands out, then stop
    (the chief writes the run folder)."""
    prep = prepare_data(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed, QUICK_TUNE_SIZES if cfg.quick else None)
    line = work_on_kerastuner_search(
        CAE_SPACE,
        build_compiled_cae,
        *_train_val(prep),
        tuner=cfg.tuner,
        **_budget(cfg),
        directory=cfg.kerastuner_dir,
        project_name=cfg.study_name,
        tensorboard=Path(cfg.kerastuner_dir) / "tensorboard" if tensorboard else None,
    )
    print(line)
    return 0


def search_engine(engine: str, cfg: TuneConfig, prep: Split, run: Run) -> dict:
    """Search with ``engine``, then retrain its best configuration (``final_epochs``), score it on the
    test set and draw its reconstructions; returns the engine's entry of ``metrics.json``."""
    log.info("%s search: up to %d trials x %d epochs on %d images", engine, cfg.trials, cfg.epochs, len(prep.x_train))
    result, study, checkpoint = _search(engine, cfg, prep, run)
    figures = plot_search(result, study, run.figures, prefix=f"{engine}_")
    entry = {**result.to_dict(), "trial_rows": result.trial_rows(), "figures": list(figures), "test": {}}
    for t in result.trials:
        run.history += [
            {"engine": engine, "trial": t.number, "state": t.state, "epoch": i + 1, "val_loss": v}
            for i, v in enumerate(t.curve)
        ]
    best = result.best
    if best is None:
        log.warning("%s: no trial completed", engine)
        return entry
    if checkpoint is not None:
        entry["test"]["checkpoint_test_mse"] = _test_mse(checkpoint, prep)
    final, retrain = checkpoint, cfg.final_epochs
    if not retrain and checkpoint is None:
        retrain = cfg.epochs  # the best trial ran in an earlier process: train its configuration again
    if retrain:
        log.info("%s: retraining the best configuration for %d epochs", engine, retrain)
        run.seed_model(f"{engine}_best")  # the same start whatever ran before it
        final = build_compiled_cae(**CAE_SPACE.builder_kwargs(best.params))
        fit = fit_autoencoder(final, prep, epochs=retrain, batch_size=cfg.batch_size)
        entry["test"].update(
            final_test_mse=_test_mse(final, prep), final_epochs=fit.epochs_run, final_seconds=round(fit.seconds, 1)
        )
        run.history += [{**r, "engine": engine, "trial": "retrained"} for r in fit.rows()]
    final.save(run.file(f"models/{engine}_best.keras"))
    idx = pick_examples(len(prep.x_test), 10, cfg.seed)
    plot_image_rows(
        [prep.x_test[idx], final.predict(prep.x_test[idx], verbose=0)],
        run.figures / f"reconstructions_{engine}.png",
        row_titles=["original", "reconstruction"],
        title=f"{engine}: best configuration, test reconstructions",
    )
    log.info("%s: best val MSE %.5f (trial %d), test %s", engine, best.value, best.number, entry["test"])
    return entry


def steps(cfg: TuneConfig, run: Run) -> None:
    """Every engine of ``cfg.engine`` in turn; the best configuration of them all is ``best_params``."""
    prep = prepare_data(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed, QUICK_TUNE_SIZES if cfg.quick else None)
    run.set_data(prep.data.source)
    m = run.metrics
    m.update(n_train=len(prep.x_train), n_val=len(prep.x_val), n_test=len(prep.x_test), engines={})
    # Trials and the retraining are not backed up for --resume (tune has none): an interrupted search
    # goes on from its Optuna study, which an aborted run keeps (keep_on_abort) for --storage.
    with fit_context(tensorboard=run.tensorboard):
        for engine in ("optuna", "kerastuner") if cfg.engine == "both" else (cfg.engine,):
            m["engines"][engine] = search_engine(engine, cfg, prep, run)
    done = {k: e for k, e in m["engines"].items() if e["summary"]["best_value"] is not None}
    if done:
        name = min(done, key=lambda k: done[k]["summary"]["best_value"])
        m["best_engine"], m["best_params"] = name, done[name]["best_params"]
    else:
        m["best_engine"], m["best_params"] = None, None


def summary(cfg: TuneConfig, metrics: dict, path: Path) -> str:
    """The engines' table, the best configuration and how to go on (``path``: the run folder)."""
    lines = [engine_table(metrics).rstrip("\n"), f"best: {metrics['best_params']}"]
    if "optuna" in metrics["engines"]:
        e = metrics["engines"]["optuna"]
        lines.append(
            f"resume or extend the study: keras-clust {NAME} tune --storage {e['storage']} "
            f"--study-name {e['study_name']} --trials N"
        )
    lines.append(f"use the best: keras-clust {NAME} run --params-from {path}")
    return "\n".join(lines) + "\n"


def tune_spec(out: str | Path) -> ExperimentSpec:
    """The ``tune`` action of the runs under ``out``: its report lists the earlier searches there."""
    return ExperimentSpec(
        name=NAME,
        config=TuneConfig,
        steps=steps,
        report=lambda cfg, m: render_tune_report(cfg, m, _earlier_runs(out, m["run_id"])),
        summary=lambda cfg, m: summary(cfg, m, Path(out) / NAME / m["run_id"]),
        action="tune",
    )


@action("tune", add_tune_arguments, TuneConfig)
def tune(args: argparse.Namespace) -> int:
    """search the CAE's hyper-parameters (Optuna or KerasTuner)"""
    cfg = tune_config(args)
    role = distributed_role()
    if role is not None and (cfg.engine != "kerastuner" or cfg.kerastuner_dir is None):
        raise UsageError(
            "a distributed KerasTuner search (KERASTUNER_* set) needs --engine kerastuner and the "
            "same --kerastuner-dir on the chief and every worker"
        )
    if cfg.workers > 1 and cfg.engine != "optuna":
        raise UsageError(
            "--workers runs Optuna workers; with --engine kerastuner use KerasTuner's chief and "
            "workers (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)"
        )
    if role == "worker":
        set_seed(cfg.seed)
        return _kerastuner_worker(cfg, args.tensorboard)
    finished = run_experiment(tune_spec(args.out), cfg, args.out, tensorboard=args.tensorboard)
    if not finished.metrics["best_params"]:
        print(
            "keras-clust: error: no trial completed (all pruned or diverged); lower the learning-rate "
            "range or add trials",
            file=sys.stderr,
        )
        return 1
    return 0
