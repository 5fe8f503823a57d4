"""``fashion-cae tune``: search the CAE's hyper-parameters with Optuna and/or KerasTuner."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras

from keras_clust.app import tensorboard_dir
from keras_clust.apps.fashion_cae.config import NAME, QUICK_TUNE_SIZES, Prepared, TuneConfig, prepare_data
from keras_clust.apps.fashion_cae.report import engine_rows, engine_table, render_tune_report
from keras_clust.errors import UsageError
from keras_clust.runs import RunFolder, read_json, seed_model, set_seed
from keras_clust.training import fit_context, fit_model
from keras_clust.tuning import (
    CAE_SPACE,
    build_compiled_cae,
    make_hypermodel,
    make_tuner,
    run_kerastuner_search,
    run_optuna_search,
    to_optuna_study,
)
from keras_clust.tuning.distributed import distributed_role, run_as_worker
from keras_clust.viz import pick_examples, plot_image_rows
from keras_clust.viz.search import plot_search

log = logging.getLogger("keras_clust.apps.fashion_cae")


def config_from_args(args: argparse.Namespace) -> TuneConfig:
    cfg = TuneConfig(
        dataset=args.dataset,
        data_dir=str(args.data_dir) if args.data_dir else None,
        engine=args.engine,
        tuner=args.tuner,
        trials=args.trials or (2 if args.quick else 20),
        epochs=args.epochs,
        final_epochs=args.final_epochs,
        batch_size=args.batch_size,
        val_fraction=args.val_fraction,
        timeout=args.timeout,
        storage=args.storage,
        study_name=args.study_name,
        quick=args.quick,
        seed=args.seed,
        workers=args.workers,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        kerastuner_dir=str(args.kerastuner_dir) if args.kerastuner_dir else None,
    )
    if cfg.quick:
        cfg.epochs, cfg.final_epochs = 1, min(cfg.final_epochs, 1)
        cfg.batch_size = min(cfg.batch_size, 64)
    return cfg


def _test_mse(model, prep: Prepared) -> float:
    return float(model.evaluate(prep.x_test, prep.x_test, batch_size=1024, verbose=0))


def _search(engine: str, cfg: TuneConfig, prep: Prepared, run: RunFolder, tensorboard):
    train, val = (prep.x_train, prep.x_train), (prep.x_val, prep.x_val)
    if engine == "optuna":
        storage = cfg.storage or f"sqlite:///{run.file('study.db')}"
        if cfg.storage is None:
            run.keep_on_abort("study.db")
        result, study = run_optuna_search(
            CAE_SPACE,
            build_compiled_cae,
            train,
            val,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            n_trials=cfg.trials,
            storage=storage,
            study_name=cfg.study_name,
            seed=cfg.seed,
            timeout=cfg.timeout,
            checkpoint=run.file("models/optuna_best_trial.keras"),
            workers=cfg.workers,
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            tensorboard=None if tensorboard is None else tensorboard / "optuna",
        )
        if cfg.storage is None:
            result.storage = f"sqlite:///{run.path.resolve() / 'study.db'}"
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
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        n_trials=cfg.trials,
        directory=cfg.kerastuner_dir or run.file("kerastuner"),
        project_name=cfg.study_name,
        seed=cfg.seed,
        tensorboard=None if tensorboard is None else tensorboard / "kerastuner",
    )
    checkpoint = None
    if result.best is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the saved optimizer state is not restored
            checkpoint = tuner.get_best_models(1)[0]
        checkpoint.compile(loss="mse")
    return result, to_optuna_study(result, CAE_SPACE), checkpoint


def _earlier_runs(cfg: TuneConfig, out, this_run: str) -> list[dict]:
    rows = []
    for path in sorted((out / NAME).glob("*/metrics.json")):
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
    hypermodel = make_hypermodel(CAE_SPACE, build_compiled_cae, cfg.seed)
    tuner = make_tuner(
        cfg.tuner,
        hypermodel,
        max_trials=cfg.trials,
        epochs=cfg.epochs,
        seed=cfg.seed,
        directory=cfg.kerastuner_dir,
        project_name=cfg.study_name,
    )
    print(
        run_as_worker(
            tuner,
            hypermodel,
            prep.x_train,
            prep.x_train,
            validation_data=(prep.x_val, prep.x_val),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            tensorboard=Path(cfg.kerastuner_dir) / "tensorboard" if tensorboard else None,
        )
    )
    return 0


def tune(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
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
    set_seed(cfg.seed)
    if role == "worker":
        return _kerastuner_worker(cfg, args.tensorboard)
    start = time.perf_counter()
    engines = ("optuna", "kerastuner") if cfg.engine == "both" else (cfg.engine,)
    with RunFolder(args.out, NAME, cfg.seed) as run, fit_context(tensorboard=tensorboard_dir(args, run)) as fits:
        prep = prepare_data(
            cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.seed, QUICK_TUNE_SIZES if cfg.quick else None
        )
        run.write_config(
            {
                "experiment": NAME,
                "action": "tune",
                **asdict(cfg),
                "data": prep.data.source.to_dict(),
                "space": [asdict(p) for p in CAE_SPACE.params],
            }
        )
        metrics = {
            "run_id": run.run_id,
            "data": prep.data.source.to_dict(),
            "n_train": len(prep.x_train),
            "n_val": len(prep.x_val),
            "n_test": len(prep.x_test),
            "engines": {},
        }
        history = []
        for engine in engines:
            log.info(
                "%s search: up to %d trials x %d epochs on %d images", engine, cfg.trials, cfg.epochs, len(prep.x_train)
            )
            result, study, checkpoint = _search(engine, cfg, prep, run, fits.tensorboard)
            figures = plot_search(result, study, run.figures, prefix=f"{engine}_")
            entry = {**result.to_dict(), "trial_rows": result.trial_rows(), "figures": list(figures), "test": {}}
            for t in result.trials:
                history += [
                    {"engine": engine, "trial": t.number, "state": t.state, "epoch": i + 1, "val_loss": v}
                    for i, v in enumerate(t.curve)
                ]
            best = result.best
            if best is None:
                log.warning("%s: no trial completed", engine)
                metrics["engines"][engine] = entry
                continue
            if checkpoint is not None:
                entry["test"]["checkpoint_test_mse"] = _test_mse(checkpoint, prep)
            final, retrain = checkpoint, cfg.final_epochs
            if not retrain and checkpoint is None:
                retrain = cfg.epochs  # the best trial ran in an earlier process: train its configuration again
            if retrain:
                log.info("%s: retraining the best configuration for %d epochs", engine, retrain)
                seed_model(cfg.seed, f"{engine}_best")  # the same start whatever ran before it
                final = build_compiled_cae(**CAE_SPACE.builder_kwargs(best.params))
                fit = fit_model(
                    final,
                    prep.x_train,
                    prep.x_train,
                    (prep.x_val, prep.x_val),
                    epochs=retrain,
                    batch_size=cfg.batch_size,
                )
                entry["test"].update(
                    final_test_mse=_test_mse(final, prep),
                    final_epochs=fit.epochs_run,
                    final_seconds=round(fit.seconds, 1),
                )
                history += [{**r, "engine": engine, "trial": "retrained"} for r in fit.rows()]
            final.save(run.file(f"models/{engine}_best.keras"))
            idx = pick_examples(len(prep.x_test), 10, cfg.seed)
            plot_image_rows(
                [prep.x_test[idx], final.predict(prep.x_test[idx], verbose=0)],
                run.figures / f"reconstructions_{engine}.png",
                row_titles=["original", "reconstruction"],
                title=f"{engine}: best configuration, test reconstructions",
            )
            log.info("%s: best val MSE %.5f (trial %d), test %s", engine, best.value, best.number, entry["test"])
            metrics["engines"][engine] = entry
        done = {k: e for k, e in metrics["engines"].items() if e["summary"]["best_value"] is not None}
        if done:
            name = min(done, key=lambda k: done[k]["summary"]["best_value"])
            metrics["best_engine"], metrics["best_params"] = name, done[name]["best_params"]
        else:
            metrics["best_engine"], metrics["best_params"] = None, None
        metrics["total_seconds"] = round(time.perf_counter() - start, 1)
        run.write_metrics(metrics)
        run.write_history(history)
        run.write_report(render_tune_report(cfg, metrics, _earlier_runs(cfg, args.out, run.run_id)))
    print(engine_table(metrics), end="")
    print(f"best: {metrics['best_params']}")
    if "optuna" in metrics["engines"]:
        e = metrics["engines"]["optuna"]
        print(
            f"resume or extend the study: keras-clust {NAME} tune --storage {e['storage']} "
            f"--study-name {e['study_name']} --trials N"
        )
    print(f"use the best: keras-clust {NAME} run --params-from {run.path}")
    print(f"run folder: {run.path}")
    if not metrics["best_params"]:
        print(
            "keras-clust: error: no trial completed (all pruned or diverged); lower the learning-rate "
            "range or add trials",
            file=sys.stderr,
        )
        return 1
    return 0
