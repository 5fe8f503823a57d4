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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar

import keras

from keras_clust.app import action, add_tensorboard_argument, config_arguments
from keras_clust.apps.lj_fluid.config import (
    NAME,
    Config,
    SourceSettings,
    samples_setting,
)
from keras_clust.apps.lj_fluid.data import acquire, dataset_config, dataset_file, dataset_settings, split_data
from keras_clust.apps.lj_fluid.steps import data_note, doubly_occupied_share
from keras_clust.errors import DataError, UsageError
from keras_clust.experiment import ExperimentSpec, Run, run_experiment
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.representations import GRID_BLOCKS, grid_cells, grid_dataset
from keras_clust.lj.vae import build_grid_vae
from keras_clust.markdown import markdown_table
from keras_clust.option_types import non_negative_int, positive_int
from keras_clust.seeding import set_seed
from keras_clust.settings import config_from_args, kerastuner_dir_setting, setting
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
#: ``--quick``: at most this many configurations, from preliminary runs of this many sweeps with this many replicas.
QUICK_SAMPLES, QUICK_SWEEPS, QUICK_REPLICAS = 300, 300, 4
#: File-name prefix of the search's figures.
FIGURE_PREFIX = "hyperband_"


def grid_space(box: float, cells: tuple[int, ...] = TUNE_CELLS) -> SearchSpace:
    """The search space: filters of the first block (doubled per block), kernel size, the blocks'
    design (``build_grid_vae``'s ``blocks``), latent size, beta, and h as ``L / cells`` (whole
    multiples of 8 only)."""
    return SearchSpace(
        (
            choice_param("filters", (4, 8, 16)),
            choice_param("kernel_size", (3, 5)),
            choice_param("blocks", GRID_BLOCKS),
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
    blocks: str,
    seed: int | None = None,
) -> keras.Model:
    """The grid VAE of one configuration, compiled (its loss lives in its layers; ``seed``
    seeds its latent sampling). ``blocks`` has no default here: the search space always gives it."""
    m = build_grid_vae(
        grid_cells(box, h),
        dim,
        (filters, 2 * filters, 4 * filters),
        kernel_size,
        latent_dim,
        beta,
        seed=seed,
        blocks=blocks,
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


def epochs_option(text: str) -> int:
    """argparse type: Hyperband's largest budget, at least 2 epochs."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"Hyperband needs a budget of at least 2 epochs, got {value}")
    return value


#: The settings a search shares with a run's data pipeline (the simulation and its record).
DATA_SETTINGS = (*(f.name for f in fields(SourceSettings)), "samples", "seed", "quick")


@dataclass
class TuneConfig(SourceSettings):
    """Every setting of an ``lj-fluid tune`` (``config.json``), and what the search records about
    itself: the command that repeats it, the search space, the objective and whether it was
    distributed (chief and workers).

    Version 1 (before the settings were declared once) kept neither the physical settings nor the
    replicas, kick and threshold, so its folders are not read back.
    """

    CONFIG_VERSION: ClassVar[int] = 2

    samples: int = samples_setting(
        2000,
        "configurations simulated for the search, split evenly between the gammas (whole chains: ~80 %% train it)",
        quick=QUICK_SAMPLES,
    )
    epochs: int = setting(9, "Hyperband's largest epoch budget", type=epochs_option, quick=2)
    kerastuner_dir: str | None = kerastuner_dir_setting("--dataset")
    workers: int = setting(
        1,
        "train the trials in N processes on this machine: this one serves KerasTuner's oracle on a free loopback "
        "port (the chief) and starts N workers on the same data",
        type=positive_int,
    )
    quick: bool = setting(
        False,
        f"smoke run: {QUICK_SAMPLES} configurations, grids of {'/'.join(map(str, QUICK_TUNE_CELLS))} cells, 2 epochs",
    )
    seed: int = setting(0, "seed of the simulation and the search", type=non_negative_int)
    # what the search records (no options)
    command: str = ""
    space: list = field(default_factory=list)
    objective: str = OBJECTIVE
    distributed: bool = False

    def __post_init__(self):
        self.gammas = tuple(self.gammas)

    @property
    def cells(self) -> tuple[int, ...]:
        """Grid sizes searched (cells per side)."""
        return QUICK_TUNE_CELLS if self.quick else TUNE_CELLS

    def data_config(self) -> Config:
        """The run config the data pipeline reads: these settings, every gamma trained on, the
        run's defaults for the rest (batch size, learning rate, splits)."""
        return Config(**{name: getattr(self, name) for name in DATA_SETTINGS}, holdout_gamma=None, export=False)


def tune_config(args: argparse.Namespace, role: str | None) -> TuneConfig:
    """The search's config: its options, ``--quick`` (which caps the samples and epochs and sets the
    preliminary sweeps and replicas), a dataset's physical settings, and the search's record."""
    cfg = config_from_args(TuneConfig, args)
    if cfg.quick:  # set, not capped, as they always were
        cfg.preliminary_sweeps, cfg.replicas = QUICK_SWEEPS, QUICK_REPLICAS
    if cfg.dataset is not None:
        cfg = replace(cfg, **dataset_settings(cfg.data_config(), load_lj_dataset(dataset_file(cfg.dataset))))
    else:
        cfg.system().validate()
    cfg.space = [dict(p.__dict__) for p in grid_space(cfg.box, cfg.cells).params]
    cfg.distributed = role == "chief" or cfg.workers > 1
    cfg.command = (
        f"keras-clust {NAME} tune --epochs {cfg.epochs} --samples {cfg.samples} --seed {cfg.seed}"
        + (
            f" --dataset {cfg.dataset}"
            if cfg.dataset
            else f" --particles {cfg.particles} --box {cfg.box:g} --dim {cfg.dim} --temperature {cfg.temperature:g} "
            f"--gamma {','.join(f'{g:g}' for g in cfg.gammas)}"
        )
        + (" --quick" if cfg.quick else "")
    )
    return cfg


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


@action("tune", config_arguments(TuneConfig, add_tensorboard_argument, run=False), TuneConfig)
def tune(args: argparse.Namespace) -> int:
    """Hyperband search (KerasTuner) over the density-grid VAE

    A search with its run folder, or, in a worker of a distributed search, trials without one."""
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
    cfg = tune_config(args, role)
    if role == "worker":
        return work_on_search(cfg, args.tensorboard)
    run_experiment(TUNE_SPEC, cfg, args.out, tensorboard=args.tensorboard)
    return 0


def work_on_search(cfg: TuneConfig, tensorboard: bool) -> int:
    """A worker of a distributed search: train the trials the chief hands out; no run folder."""
    set_seed(cfg.seed)
    sim, data_cfg = acquire(cfg.data_config(), progress=False)
    data = split_data(sim, data_cfg)
    hypermodel, tuner = _tuner(data_cfg, grid_space(data_cfg.box, cfg.cells), cfg.epochs, cfg.kerastuner_dir)
    logs = Path(cfg.kerastuner_dir) / "tensorboard" if tensorboard else None
    print(
        run_as_worker(
            tuner,
            hypermodel,
            data.train.positions,
            validation_data=data.val.positions,
            epochs=cfg.epochs,
            tensorboard=logs,
        )
    )
    return 0


def tune_steps(cfg: TuneConfig, run: Run) -> None:
    """The chief's (or a single process's) search: data, Hyperband over the grid VAE (the trials
    on local workers with ``--workers``), the record of every trial and its figures."""
    with fit_context(tensorboard=run.tensorboard) as fits:  # a trial is not resumed: no backups
        sim, data_cfg = acquire(cfg.data_config(), progress=not cfg.quick)
        run.set_data({"note": data_note(sim, cfg.dataset or "simulated by this search"), "full": True})
        if cfg.workers > 1 and cfg.dataset is None:  # the workers read the simulation from the run folder
            shared = save_lj_dataset(sim, run.file("dataset.npz"))
            data_cfg = dataset_config(
                replace(data_cfg, dataset=str(shared)), sim
            )  # the config they read: the same split
            run.folder.keep_on_abort("dataset.npz")
        data = split_data(sim, data_cfg)
        space = grid_space(data_cfg.box, cfg.cells)
        directory = Path(cfg.kerastuner_dir) if cfg.kerastuner_dir else run.file("kerastuner")
        local = cfg.workers > 1
        worker = [
            sys.executable,
            "-m",
            "keras_clust.cli",
            NAME,
            "tune",
            "--dataset",
            str(data_cfg.dataset),
            "--kerastuner-dir",
            str(directory),
            "--epochs",
            str(cfg.epochs),
            "--seed",
            str(cfg.seed),
            *(["--quick"] if cfg.quick else []),
            *(["--tensorboard"] if run.tensorboard else []),
        ]
        serving = local_workers(worker, cfg.workers, run.file("workers")) if local else contextlib.nullcontext([])
        with serving as reports:
            hypermodel, tuner = _tuner(data_cfg, space, cfg.epochs, directory)  # the chief's, inside local_workers
            if cfg.distributed:
                log.info(
                    "KerasTuner chief: serving the search at %s:%s to the workers",
                    os.environ["KERASTUNER_ORACLE_IP"],
                    os.environ["KERASTUNER_ORACLE_PORT"],
                )
            searched, before = time.perf_counter(), len(tuner.oracle.trials)  # a shared folder may hold trials
            callbacks = search_callbacks(fits.tensorboard)
            tuner.search(
                data.train.positions,
                validation_data=data.val.positions,
                epochs=cfg.epochs,
                verbose=0,
                callbacks=callbacks,
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
    figures = plot_search(result, to_optuna_study(result, space), run.figures, prefix=FIGURE_PREFIX)
    run.history = [
        {"trial": t.number, "state": t.state, "epoch": i + 1, OBJECTIVE: v}
        for t in result.trials
        for i, v in enumerate(t.curve)
    ]
    p = best.params
    use = (
        f"keras-clust {NAME} run --grid-h {p['h']:.10g} --grid-filters {p['filters']},{2 * p['filters']},"
        f"{4 * p['filters']} --grid-kernel {p['kernel_size']} --grid-blocks {p['blocks']} "
        f"--grid-latent {p['latent_dim']} "
        f"--beta {p['beta']:.3g} --grid-smoothing 0"  # the search trains occupancy grids (Bernoulli) only
    )
    occupancy = {
        f"{h:.6g}": doubly_occupied_share(sim.positions, data_cfg.box, grid_cells(data_cfg.box, h))
        for h in space.params[-1].choices
    }
    run.metrics.update(
        {
            **result.to_dict(),
            "trial_rows": result.trial_rows(),
            "use_best": use,
            "n_train": len(data.train),
            "n_val": len(data.val),
            "figures": sorted(figures),
            "doubly_occupied_share": occupancy,
            "worker_reports": reports,
        }
    )


def render_tune_report(cfg: TuneConfig, metrics: dict) -> str:
    s = metrics["summary"]
    best = "none" if s["best_value"] is None else f"{s['best_value']:.2f}"
    share = ", ".join(f"h = {h}: {100 * v:.2f} %" for h, v in metrics["doubly_occupied_share"].items())
    lines = [
        f"# lj-fluid search `{metrics['run_id']}`",
        "",
        f"Command: `{cfg.command}` ({metrics['total_seconds']} s wall). KerasTuner Hyperband (factor 3) over the "
        f"density-grid VAE, {metrics['n_train']} training and {metrics['n_val']} validation configurations.",
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
    for name in metrics["figures"]:
        lines += [f"![{name}](figures/{FIGURE_PREFIX}{name}.png)", ""]
    return "\n".join(lines)


def tune_summary(cfg: TuneConfig, metrics: dict) -> str:
    s = metrics["summary"]
    return (
        markdown_table(metrics["trial_rows"], floatfmt=".2f")
        + f"best: trial {s['best_trial']}, {OBJECTIVE} {s['best_value']:.2f} nats; use it: {metrics['use_best']}"
    )


TUNE_SPEC = ExperimentSpec(
    name=NAME, config=TuneConfig, steps=tune_steps, report=render_tune_report, summary=tune_summary, action="tune"
)
