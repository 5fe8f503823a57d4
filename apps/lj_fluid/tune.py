"""``lj-fluid tune``: KerasTuner's Hyperband over the density-grid VAE (filters, kernel, latent
size, beta and the grid cell h).

Objective. Neither the training loss (it weighs the KL by beta) nor the grid's -ELBO (its
scale depends on how many cells there are) compares trials with different beta or h. Each
trial is scored by the validation -ELBO at beta = 1 turned into nats of the continuous
(unordered) configuration: a grid of cells of side h with at most one particle per cell
gives ``-log p(x) = -log P(grid) + N dim log h``, since every particle is spread uniformly
over its cell's volume ``h^dim``. That number, ``val_neg_elbo``, is comparable across h.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import keras

from keras_clust.app import add_tensorboard_argument, non_negative_int, positive_int, tensorboard_dir
from keras_clust.apps.lj_fluid.config import NAME, Config
from keras_clust.apps.lj_fluid.data import acquire, dataset_config, dataset_file, split_data
from keras_clust.apps.lj_fluid.steps import doubly_occupied_share
from keras_clust.errors import DataError, UsageError
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.monte_carlo import LJSystem
from keras_clust.lj.representations import grid_cells, grid_dataset
from keras_clust.lj.vae import build_grid_vae
from keras_clust.runs import RunFolder, markdown_table, set_seed
from keras_clust.training import fit_context
from keras_clust.tuning import SearchSpace, choice_param, float_param, make_tuner, suggest_kerastuner, to_optuna_study
from keras_clust.tuning.callbacks import search_callbacks
from keras_clust.tuning.distributed import distributed_role, local_workers, run_as_worker
from keras_clust.tuning.kerastuner_search import record_trials
from keras_clust.tuning.results import SearchResult
from keras_clust.viz.search import plot_search

log = logging.getLogger("keras_clust.apps.lj_fluid")

OBJECTIVE = "val_neg_elbo"
#: Grid sizes the search tries (cells per side; h = L / cells): every cell diagonal is below 0.6 sigma.
TUNE_CELLS, QUICK_TUNE_CELLS = (16, 24, 32), (16, 32)


def grid_space(box: float, cells: tuple[int, ...] = TUNE_CELLS) -> SearchSpace:
    """The search space: filters of the first block (doubled per block), kernel size, latent
    size, beta, and h as ``L / cells`` (whole multiples of 8 only)."""
    return SearchSpace(
        (
            choice_param("filters", (4, 8, 16)),
            choice_param("kernel_size", (3, 5)),
            choice_param("latent_dim", (4, 8, 16, 32)),
            float_param("beta", 0.25, 4.0, log=True),
            choice_param("h", tuple(round(box / c, 10) for c in cells)),
        )
    )


def build_compiled_grid_vae(
    filters: int,
    kernel_size: int,
    latent_dim: int,
    beta: float,
    h: float,
    box: float,
    dim: int,
    learning_rate: float,
    seed: int | None = None,
) -> keras.Model:
    """The grid VAE of one configuration, compiled (its loss lives in its layers; ``seed``
    seeds its latent sampling)."""
    m = build_grid_vae(
        grid_cells(box, h), dim, (filters, 2 * filters, 4 * filters), kernel_size, latent_dim, beta, seed=seed
    )
    m.vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return m.vae


class ContinuousELBO(keras.callbacks.Callback):
    """Adds ``val_neg_elbo`` = val recon + val KL (beta = 1) + ``N dim log h`` to the epoch's logs."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = float(shift)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_recon" in logs:
            logs[OBJECTIVE] = float(logs["val_recon"]) + float(logs["val_kl"]) + self.shift


def make_grid_hypermodel(
    space: SearchSpace, box: float, dim: int, particles: int, batch_size: int, learning_rate: float, seed: int
):
    """A HyperModel whose ``build`` only translates ``hp`` and whose ``fit`` builds the grid
    pipeline at the trial's h (the data depends on a hyper-parameter)."""
    import keras_tuner

    class GridHyperModel(keras_tuner.HyperModel):
        def __init__(self):
            super().__init__(name="lj_grid_vae", tunable=True)
            self.builds = 0
            self.curves: list[list[float]] = []
            self.seconds: list[float] = []

        def build(self, hp):
            values = suggest_kerastuner(space, hp)
            build_seed = seed + self.builds
            keras.utils.set_random_seed(build_seed)
            self.builds += 1
            return build_compiled_grid_vae(
                **space.builder_kwargs(values), box=box, dim=dim, learning_rate=learning_rate, seed=build_seed
            )

        def fit(self, hp, model, x, *args, validation_data=None, callbacks=None, **kwargs):
            h = hp.get("h")
            cells = grid_cells(box, h)
            train = grid_dataset(x, box, cells, batch_size, shuffle=True, seed=seed)
            val = grid_dataset(validation_data, box, cells, batch_size)
            curve: list[float] = []
            self.curves.append(curve)
            record = keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: curve.append(float((logs or {}).get(OBJECTIVE, math.nan)))
            )
            kwargs.pop("batch_size", None)
            start = time.perf_counter()
            try:
                shift = ContinuousELBO(particles * dim * math.log(h))
                return model.fit(train, validation_data=val, callbacks=[shift, record, *(callbacks or [])], **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - start)

    return GridHyperModel()


def _search_config(args: argparse.Namespace) -> tuple[Config, int, tuple[int, ...]]:
    """The run's config, Hyperband's epoch budget and the grid sizes searched."""
    cfg = Config(
        dataset=str(args.dataset) if args.dataset else None,
        particles=args.particles,
        box=args.box,
        dim=args.dim,
        temperature=args.temperature,
        gammas=args.gamma,
        holdout_gamma=None,
        samples=args.samples,
        replicas=args.replicas,
        kick=args.kick,
        preliminary_sweeps=args.preliminary_sweeps,
        threshold=args.threshold,
        seed=args.seed,
        quick=args.quick,
        export=False,
    )
    epochs, cells = args.epochs, TUNE_CELLS
    if args.quick:
        cfg = replace(cfg, samples=min(cfg.samples, 300), preliminary_sweeps=300, replicas=4)
        epochs, cells = 2, QUICK_TUNE_CELLS
    if cfg.dataset is not None:
        cfg = dataset_config(cfg, load_lj_dataset(dataset_file(cfg.dataset)))
    else:
        LJSystem(cfg.particles, cfg.box, cfg.dim, cfg.temperature).validate()
    return cfg, epochs, cells


def _tuner(cfg: Config, space: SearchSpace, epochs: int, directory: str | Path):
    """The grid hypermodel over ``space`` and its Hyperband tuner (in ``directory``)."""
    hypermodel = make_grid_hypermodel(
        space, cfg.box, cfg.dim, cfg.particles, cfg.batch_size, cfg.learning_rate, cfg.seed
    )
    tuner = make_tuner(
        "hyperband",
        hypermodel,
        max_trials=0,
        epochs=epochs,
        seed=cfg.seed,
        directory=directory,
        project_name="lj_grid_vae",
        objective=OBJECTIVE,
    )
    return hypermodel, tuner


def tune(args: argparse.Namespace) -> int:
    role = distributed_role()
    if role is not None and (args.kerastuner_dir is None or args.dataset is None):
        raise UsageError(
            "a distributed search (KERASTUNER_* set) needs the same --kerastuner-dir and --dataset on "
            "the chief and every worker: simulate the dataset once with 'keras-clust lj-fluid "
            "simulate' and share both folders"
        )
    if role is not None and args.workers > 1:
        raise UsageError(
            "--workers starts a chief and its workers on this machine; with KERASTUNER_* set, start "
            "each process yourself, without --workers"
        )
    cfg, epochs, cells = _search_config(args)
    set_seed(cfg.seed)
    if role == "worker":
        sim, cfg = acquire(cfg, progress=False)
        data = split_data(sim, cfg)
        hypermodel, tuner = _tuner(cfg, grid_space(cfg.box, cells), epochs, args.kerastuner_dir)
        logs = args.kerastuner_dir / "tensorboard" if args.tensorboard else None
        print(
            run_as_worker(
                tuner,
                hypermodel,
                data.train.positions,
                validation_data=data.val.positions,
                epochs=epochs,
                tensorboard=logs,
            )
        )
        return 0
    command = (
        f"keras-clust {NAME} tune --epochs {epochs} --samples {cfg.samples} --seed {cfg.seed}"
        + (
            f" --dataset {cfg.dataset}"
            if cfg.dataset
            else f" --particles {cfg.particles} --box {cfg.box:g} --dim {cfg.dim} --temperature {cfg.temperature:g} "
            f"--gamma {','.join(f'{g:g}' for g in cfg.gammas)}"
        )
        + (" --quick" if cfg.quick else "")
    )
    start = time.perf_counter()
    with RunFolder(args.out, NAME, cfg.seed) as rf, fit_context(tensorboard=tensorboard_dir(args, rf)) as fits:
        recorded = cfg.dataset
        sim, cfg = acquire(cfg, progress=not cfg.quick)
        if args.workers > 1 and recorded is None:  # the workers read the simulation from the run folder
            shared = save_lj_dataset(sim, rf.file("dataset.npz"))
            cfg = dataset_config(replace(cfg, dataset=str(shared)), sim)  # the config they read: the same split
            rf.keep_on_abort("dataset.npz")
            recorded = "dataset.npz (simulated by this search, in its run folder)"
        data = split_data(sim, cfg)
        space = grid_space(cfg.box, cells)
        directory = Path(args.kerastuner_dir or rf.file("kerastuner"))
        local = args.workers > 1
        rf.write_config(
            {
                "experiment": NAME,
                "action": "tune",
                "command": command,
                "dataset": recorded,
                "samples": cfg.samples,
                "epochs": epochs,
                "seed": cfg.seed,
                "quick": cfg.quick,
                "space": [p.__dict__ for p in space.params],
                "objective": OBJECTIVE,
                "kerastuner_dir": str(directory),
                "distributed": role == "chief" or local,
                "workers": args.workers if local else None,
            }
        )
        worker = [
            sys.executable,
            "-m",
            "keras_clust.cli",
            NAME,
            "tune",
            "--dataset",
            str(cfg.dataset),
            "--kerastuner-dir",
            str(directory),
            "--epochs",
            str(args.epochs),
            "--seed",
            str(cfg.seed),
            *(["--quick"] if cfg.quick else []),
            *(["--tensorboard"] if args.tensorboard else []),
        ]
        serving = local_workers(worker, args.workers, rf.file("workers")) if local else contextlib.nullcontext([])
        with serving as reports:
            hypermodel, tuner = _tuner(cfg, space, epochs, directory)  # the chief's, inside local_workers
            if role == "chief" or local:
                log.info(
                    "KerasTuner chief: serving the search at %s:%s to the workers",
                    os.environ["KERASTUNER_ORACLE_IP"],
                    os.environ["KERASTUNER_ORACLE_PORT"],
                )
            searched, before = time.perf_counter(), len(tuner.oracle.trials)  # a shared folder may hold trials
            callbacks = search_callbacks(fits.tensorboard)
            tuner.search(
                data.train.positions, validation_data=data.val.positions, epochs=epochs, verbose=0, callbacks=callbacks
            )
        for line in reports:
            log.info("%s", line)
        trials = record_trials(tuner, space, hypermodel.curves, hypermodel.seconds, before, objective=OBJECTIVE)
        result = SearchResult(
            "kerastuner",
            "Hyperband",
            OBJECTIVE,
            trials,
            time.perf_counter() - searched,
            "lj_grid_vae",
            str(directory),
            resumed_trials=before,
        )
        best = result.best
        if best is None:
            raise DataError(
                f"no trial of the search completed ({len(trials)} failed or diverged); lower "
                "--learning-rate or add --epochs"
            )
        figures = plot_search(result, to_optuna_study(result, space), rf.figures, prefix="hyperband_")
        history = [
            {"trial": t.number, "state": t.state, "epoch": i + 1, OBJECTIVE: v}
            for t in result.trials
            for i, v in enumerate(t.curve)
        ]
        seconds = round(time.perf_counter() - start, 1)
        p = best.params
        use = (
            f"keras-clust {NAME} run --grid-h {p['h']:.10g} --grid-filters {p['filters']},{2 * p['filters']},"
            f"{4 * p['filters']} --grid-kernel {p['kernel_size']} --grid-latent {p['latent_dim']} "
            f"--beta {p['beta']:.3g}"
        )
        occupancy = {
            f"{h:.6g}": doubly_occupied_share(sim.positions, cfg.box, grid_cells(cfg.box, h))
            for h in space.params[-1].choices
        }
        metrics = {
            "run_id": rf.run_id,
            **result.to_dict(),
            "trial_rows": result.trial_rows(),
            "use_best": use,
            "n_train": len(data.train),
            "n_val": len(data.val),
            "figures": sorted(figures),
            "doubly_occupied_share": occupancy,
            "worker_reports": reports,
            "total_seconds": seconds,
        }
        rf.write_metrics(metrics)
        rf.write_history(history)
        rf.write_report(render_tune_report(command, metrics, figures, seconds))
    print(markdown_table(result.trial_rows(), floatfmt=".2f"), end="")
    print(f"best: trial {best.number}, {OBJECTIVE} {best.value:.2f} nats; use it: {use}")
    print(f"run folder: {rf.path}")
    return 0


def render_tune_report(command: str, metrics: dict, figures: dict, seconds: float) -> str:
    s = metrics["summary"]
    best = "none" if s["best_value"] is None else f"{s['best_value']:.2f}"
    share = ", ".join(f"h = {h}: {100 * v:.2f} %" for h, v in metrics["doubly_occupied_share"].items())
    lines = [
        f"# lj-fluid search `{metrics['run_id']}`",
        "",
        f"Command: `{command}` ({seconds} s wall). KerasTuner Hyperband (factor 3) over the density-grid VAE, "
        f"{metrics['n_train']} training and {metrics['n_val']} validation configurations.",
        "",
        __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "",
        f"Configurations with a cell holding two particles (where the shift above is not exact): {share}.",
        "",
        f"Trials: {s['trials']} ({s['complete']} complete, {s['failed']} failed); best {OBJECTIVE} "
        f"{best} nats (trial "
        f"{s['best_trial']}).",
        "",
        f"Use the best: `{metrics['use_best']}`",
        "",
        markdown_table(metrics["trial_rows"], floatfmt=".3g"),
        "",
    ]
    for name, path in figures.items():
        lines += [f"![{name}](figures/{Path(path).name})", ""]
    return "\n".join(lines)


def epochs_option(text: str) -> int:
    """argparse type: Hyperband's largest budget, at least 2 epochs."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"Hyperband needs a budget of at least 2 epochs, got {value}")
    return value


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    from keras_clust.apps.lj_fluid.actions import add_physics_arguments

    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the simulation and the search")
    p.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    add_tensorboard_argument(p)
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="train the trials in N processes on this machine: this one serves KerasTuner's oracle "
        "on a free loopback port (the chief) and starts N workers on the same data (default: 1)",
    )
    p.add_argument(
        "--kerastuner-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="KerasTuner's folder (default: inside the run folder); a search across processes or "
        "machines (KERASTUNER_TUNER_ID=chief|tuner0|..., KERASTUNER_ORACLE_IP, "
        "KERASTUNER_ORACLE_PORT) needs one shared folder and --dataset, the same on the chief and "
        "every worker",
    )
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPZ|RUN",
        help="search on this dataset (every gamma of it) instead of simulating one",
    )
    p.add_argument("--epochs", type=epochs_option, default=9, help="Hyperband's largest epoch budget (default: 9)")
    p.add_argument("--quick", action="store_true", help="smoke run: 300 configurations, grids of 16/32 cells, 2 epochs")
    add_physics_arguments(
        p,
        "configurations simulated for the search, split evenly between the gammas (default: "
        "2000; whole chains: ~80 %% train it)",
        samples_default=2000,
    )
