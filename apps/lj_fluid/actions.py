"""``lj-fluid simulate``, ``run``, ``evaluate`` and ``export``, and their options."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path

from keras_clust.app import CommonSettings, action, add_export_arguments, add_saved_run_arguments, config_arguments
from keras_clust.apps.lj_fluid import pair
from keras_clust.apps.lj_fluid.config import (
    NAME,
    QUICK_SIMULATION,
    Config,
    SimulateConfig,
    SimulateOptions,
)
from keras_clust.apps.lj_fluid.data import acquire, dataset_config, dataset_file, split_data
from keras_clust.apps.lj_fluid.pipeline import VIEW_NAMES, VIEWS, likelihood_log_var, neg_elbo_terms
from keras_clust.apps.lj_fluid.report import render_report, summary
from keras_clust.apps.lj_fluid.simulation import (
    simulation_figures,
    simulation_metrics,
    simulation_report,
    simulation_table,
)
from keras_clust.apps.lj_fluid.steps import data_note, steps
from keras_clust.errors import DataError, UsageError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    Run,
    export_from_args,
    load_run,
    run_experiment,
    run_from_args,
    saved_config,
    write_evaluation,
)
from keras_clust.files import read_json, to_jsonable
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.monte_carlo import LJSystem, check_kick
from keras_clust.lj.pair_decoder import negative_elbo_terms
from keras_clust.option_types import non_negative_float
from keras_clust.run_folder import RunFolder, load_run_models
from keras_clust.settings import RunOptions, add_settings, config_from_args, path_setting, setting

log = logging.getLogger("keras_clust.apps.lj_fluid")


def exports(cfg: Config) -> tuple[Export, ...]:
    """The SavedModels of a run: each view's deterministic encoder (``z_mean``), the grid and
    distance-matrix decoders (the grid decoder gives ``occupancy`` probabilities, or with
    ``--grid-smoothing`` the smooth grid's mean ``density``)."""
    grid_out = "density" if cfg.grid_likelihood == "gaussian" else "occupancy"
    return (
        Export("lj_fluid_coords_encoder", "coords_encoder.keras", "coordinates", ("z_mean",)),
        Export("lj_fluid_grid_encoder", "grid_encoder.keras", "density_grid", ("z_mean",)),
        Export("lj_fluid_grid_decoder", "grid_decoder.keras", "latent", (grid_out,)),
        Export("lj_fluid_distance_encoder", "distance_encoder.keras", "distance_matrix", ("z_mean",)),
        Export("lj_fluid_distance_decoder", "distance_decoder.keras", "latent", ("distance_matrix",)),
    )


SPEC = ExperimentSpec(NAME, Config, steps, render_report, summary, exports=exports)


# --- simulate ------------------------------------------------------------------------------


#: Options of ``simulate`` that decide the chains: ``--resume`` takes them from the interrupted run.
SIMULATE_OPTIONS = tuple(f.name for f in fields(SimulateOptions) if f.name != "output")

#: The chains' checkpoint in a simulation's run folder (under the backups removed when it completes).
CHECKPOINT = f"{RunFolder.BACKUP}/simulation.npz"
#: Seconds between checkpoints unless ``--checkpoint-every`` says otherwise.
CHECKPOINT_EVERY = 60.0


def add_data_dir_argument(p: argparse.ArgumentParser) -> None:
    """``--data-dir``, which every run takes (lj-fluid reads no dataset folder: it simulates or reads --dataset)."""
    add_settings(p, CommonSettings, only=("data_dir",))


# --- options -------------------------------------------------------------------------------------


@dataclass
class SimulateRunOptions:
    """How a ``simulate`` runs rather than what it computes."""

    resume: Path | None = path_setting(
        "continue the simulation killed in this .<run-id>.partial folder from its last checkpoint, with its "
        "options (one given that differs is refused); the dataset is bitwise that of an uninterrupted run",
        metavar="RUN_FOLDER",
        default_text="start a new simulation",
    )
    checkpoint_every: float = setting(
        CHECKPOINT_EVERY,
        "seconds between checkpoints of the chains in the run folder, which --resume continues (0: after every "
        "kernel call)",
        type=non_negative_float,
        metavar="SECONDS",
    )


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    add_settings(p, RunOptions, only=("out",))
    add_settings(p, SimulateRunOptions)
    add_settings(p, SimulateOptions)
    # None marks an option not given, which --resume takes from the interrupted run
    p.set_defaults(**dict.fromkeys(SIMULATE_OPTIONS), _option_defaults={k: p.get_default(k) for k in SIMULATE_OPTIONS})


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_run_arguments(p)
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPZ|RUN",
        help="score this dataset's test split instead of the run's own (default: the run's dataset.npz)",
    )


def simulate_options(args: argparse.Namespace) -> dict:
    """The simulation's options: those given, the others from the interrupted run (``--resume``) or the
    defaults; JSON-ready, as ``config.json`` keeps them under ``options``.

    Raises:
        UsageError: an option given with ``--resume`` differs from the interrupted run's.
    """
    given = {k: getattr(args, k) for k in SIMULATE_OPTIONS if getattr(args, k) is not None}
    if args.output is not None:
        given["output"] = args.output.resolve()  # the same file when resumed from another folder
    given = json.loads(json.dumps(to_jsonable(given)))
    if args.resume is None:
        return {**json.loads(json.dumps(to_jsonable(args._option_defaults))), "output": None, **given}
    saved = read_json(args.resume / "config.json")
    options = saved.get("options") if isinstance(saved, dict) and saved.get("action") == "simulate" else None
    if not isinstance(options, dict) or any(k not in options for k in SIMULATE_OPTIONS):
        raise UsageError(
            f"--resume {args.resume}: not an interrupted 'lj-fluid simulate' (no simulation options in "
            "its config.json); an interrupted training continues with 'keras-clust lj-fluid run "
            "--resume'"
        )
    differ = [k for k, v in given.items() if k != "output" and v != options[k]]
    if differ:
        raise UsageError(
            f"--resume {args.resume}: the interrupted simulation ran with "
            f"{' '.join(_typed(k, options[k]) for k in differ)}, not "
            f"{' '.join(_typed(k, given[k]) for k in differ)}; drop these options to continue it, or "
            "start a new simulation without --resume"
        )
    return {**options, **given}


def _typed(key: str, value) -> str:
    """An option as typed: ``--gamma 1,2``, ``--quick``, ``(no --quick)``."""
    flag = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"(no {flag})"
    if isinstance(value, list):
        value = ",".join(f"{v:g}" for v in value)
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def simulate_config(args: argparse.Namespace) -> SimulateConfig:
    """The simulation's config (its options and the command that repeats it), checked before
    any folder is opened."""
    o = simulate_options(args)
    LJSystem(o["particles"], o["box"], o["dim"], o["temperature"]).validate()
    check_kick(o["kick"], o["box"])
    if o["output"] is not None:
        check_output(Path(o["output"]))
    command = "keras-clust lj-fluid simulate " + " ".join(
        _typed(k, o[k]) for k in SIMULATE_OPTIONS if o[k] is not False
    )
    return SimulateConfig(SimulateOptions(**o), command)


def simulate_steps(cfg: SimulateConfig, run: Run, checkpoint_every: float = CHECKPOINT_EVERY) -> None:
    """Simulate (from the run folder's checkpoint when there is one), write the dataset atomically
    (the run folder's ``dataset.npz`` and ``--output``), measure and draw the simulation."""
    o = cfg.options
    run.folder.keep_resumable_on_error = True  # a checkpoint can be continued whatever stopped the simulation
    dataset, checkpoint = run.file("dataset.npz"), run.work / CHECKPOINT
    if dataset.is_file():  # resumed: killed after the simulation, before the report
        log.info("the simulation had finished; writing its figures and report")
        sim = load_lj_dataset(dataset)
    else:
        samples = min(o.samples, QUICK_SIMULATION) if o.quick else o.samples
        if o.quick:
            o = replace(o, preliminary_sweeps=QUICK_SIMULATION)
        sim = o.simulate(
            o.gamma,
            -(-samples // len(o.gamma)),
            o.seed,
            progress=True,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
        )
        save_lj_dataset(sim, dataset)
    run.folder.keep_on_abort("dataset.npz")  # a failure in the figures does not lose the simulation
    run.set_data({"note": data_note(sim, "simulated by this run"), "full": True})
    if o.output is not None:
        save_lj_dataset(sim, Path(o.output))
    shutil.rmtree(run.work / RunFolder.BACKUP, ignore_errors=True)  # the dataset is written: no checkpoint
    run.metrics.update(simulation_metrics(sim))
    run.metrics["figures"] = sorted(p.name for p in simulation_figures(sim, run.figures).values())


def render_simulate_report(cfg: SimulateConfig, metrics: dict, resumed: bool = False) -> str:
    note = " (this process: the simulation was resumed)" if resumed else ""
    return (
        f"# lj-fluid simulation `{metrics['run_id']}`\n\nCommand: `{cfg.command}` ({metrics['total_seconds']} s "
        f"wall{note}).\n\n" + simulation_report(metrics)
    )


def simulate_summary(cfg: SimulateConfig, metrics: dict) -> str:
    output = cfg.options.output
    return simulation_table(metrics) + ("" if output is None else f"\ndataset: {output}")


SIMULATE_SPEC = ExperimentSpec(
    NAME, SimulateConfig, simulate_steps, render_simulate_report, simulate_summary, action="simulate"
)


@action("simulate", add_simulate_arguments, SimulateConfig)
def simulate_action(args: argparse.Namespace) -> int:
    """sample configurations with parallel Metropolis chains; write a dataset and its figures

    Simulate, write the dataset, draw the figures and write the report. The chains are
    checkpointed in the run folder, so a killed simulation continues with ``--resume <run folder>``."""
    folder = None
    if args.resume is not None:
        folder = RunFolder.reopen(args.resume, NAME)
        args.resume = folder.work
    cfg = simulate_config(args)
    if folder is not None:  # what the skeleton resumes: the saved options, a new --output replacing the saved one
        folder.write_config(saved_config(SIMULATE_SPEC, cfg, None))
    spec = replace(
        SIMULATE_SPEC,
        steps=functools.partial(simulate_steps, checkpoint_every=args.checkpoint_every),
        report=functools.partial(render_simulate_report, resumed=folder is not None),
    )
    done = run_experiment(spec, cfg, args.out, resume=args.resume)
    print(f"dataset.npz inside; train on it with 'keras-clust lj-fluid run --dataset {done.path}'")
    return 0


def check_output(path: Path) -> None:
    """``--output`` must be a writable file path: checked before the simulation runs."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; give a file name such as {path / 'lj_fluid.npz'}")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"--output {path}: cannot write to {path.parent}; choose another folder")


# --- run, evaluate, export ---------------------------------------------------------------------


def run_config(args: argparse.Namespace) -> Config:
    """The config of ``lj-fluid run``: its options, capped by ``--quick``, checked, and with
    ``--dataset`` the dataset's physical settings, so that config.json says what the run trained on."""
    cfg = config_from_args(Config, args)
    if cfg.dataset is None:
        LJSystem(cfg.particles, cfg.box, cfg.dim, cfg.temperature).validate()
        check_kick(cfg.kick, cfg.box)
    else:
        cfg = dataset_config(cfg, load_lj_dataset(dataset_file(cfg.dataset)))
    return cfg.check()


@action("run", config_arguments(Config, add_data_dir_argument), Config)
def run(args: argparse.Namespace) -> int:
    """simulate (or read a dataset), train the three VAEs, analyse, plot, export"""
    return run_from_args(SPEC, args, run_config)


@action("evaluate", add_evaluate_arguments)
def evaluate(args: argparse.Namespace) -> int:
    """re-score a run's test configurations with its saved models

    Re-score a run's test configurations (or those of ``--dataset``) with its saved models:
    -ELBO per view with the run's draws and seed, against the stored numbers when the data
    is the run's own."""
    loaded = load_run(SPEC, args.out, args.run)
    own = args.dataset is None
    cfg = loaded.config
    if own:
        cfg = replace(cfg, dataset=str(loaded.path / "dataset.npz"))
    else:  # another dataset: it must fit the run's models; every gamma of it is scored
        cfg = replace(cfg, dataset=str(args.dataset), holdout_gamma=None)
        check_compatible(loaded.config, load_lj_dataset(dataset_file(args.dataset)), args.dataset)
    sim, cfg = acquire(cfg, progress=False)
    data = split_data(sim, cfg)
    files = [f"{v}_{part}.keras" for v in VIEWS for part in ("posterior", "scoring_decoder")]
    models = load_run_models(loaded.path, files)
    seed = loaded.metrics.get("elbo_seed", 0)
    lattice = pair.load_lattice(loaded.path) if loaded.config.coords_decoder == "pair" else None
    rows, result = [], {}
    for view in VIEWS:
        posterior, decoder = models[f"{view}_posterior.keras"], models[f"{view}_scoring_decoder.keras"]
        if view == "coords" and lattice is not None:
            terms = negative_elbo_terms(posterior, decoder, lattice, data.test.coords, cfg.elbo_draws, seed)
        else:
            terms = neg_elbo_terms(
                view, posterior, decoder, likelihood_log_var(loaded.path, view), data.test, cfg, cfg.elbo_draws, seed
            )
        value = float(terms["neg_elbo"].mean())
        entry = {
            "test_neg_elbo": value,
            "test_recon": float(terms["recon"].mean()),
            "test_kl": float(terms["kl"].mean()),
            "configurations": len(data.test),
        }
        row = {"view": VIEW_NAMES[view], "test -ELBO": value, "recon": entry["test_recon"], "KL": entry["test_kl"]}
        if own:
            stored = loaded.metrics["models"][view]["test_neg_elbo"]
            entry.update(stored=stored, difference=value - stored)
            row.update({"stored in the run": stored, "difference": value - stored})
        result[view] = entry
        rows.append(row)
    note = (
        None
        if own
        else (
            f"data: {args.dataset}, test split ({len(data.test)} configurations; the run's "
            "stored numbers are for its own data)"
        )
    )
    return write_evaluation(
        loaded.path, {"run": str(loaded.path), "dataset": cfg.dataset, "models": result}, rows, note=note
    )


def check_compatible(cfg: Config, sim, where) -> None:
    """A dataset scored by a run's models needs the run's N, dimension and box (the grid's cells)."""
    s = sim.settings
    mine = (cfg.particles, cfg.dim, cfg.box)
    theirs = (int(s["n_particles"]), int(s["dim"]), float(s["box"]))
    if mine != theirs:
        raise DataError(
            f"{where} has N = {theirs[0]}, dim {theirs[1]}, box {theirs[2]:g}; the run's models need "
            f"N = {mine[0]}, dim {mine[1]}, box {mine[2]:g}: simulate such a dataset with "
            f"'keras-clust lj-fluid simulate --particles {mine[0]} --dim {mine[1]} "
            f"--box {mine[2]:g}'"
        )


@action("export", add_export_arguments)
def export(args: argparse.Namespace) -> int:
    """export a run's encoders (z_mean) and grid/distance decoders as SavedModels"""
    return export_from_args(SPEC, args)
