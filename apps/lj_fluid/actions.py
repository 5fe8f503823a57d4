"""``lj-fluid simulate``, ``run``, ``evaluate`` and ``export``, and their options."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from keras_clust.app import (
    add_cluster_argument,
    add_common_arguments,
    add_models_dir_argument,
    add_run_options,
    add_saved_run_arguments,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_options,
)
from keras_clust.apps.lj_fluid.config import GAMMAS, NAME, Config, gamma_list, optional_gamma, quick_config
from keras_clust.apps.lj_fluid.data import acquire, dataset_config, dataset_file, split_data
from keras_clust.apps.lj_fluid.pipeline import VIEW_NAMES, VIEWS, likelihood_log_var, neg_elbo_terms
from keras_clust.apps.lj_fluid.report import render_report, summary
from keras_clust.apps.lj_fluid.simulation import (
    simulation_figures,
    simulation_metrics,
    simulation_report,
    simulation_table,
)
from keras_clust.apps.lj_fluid.steps import steps
from keras_clust.errors import KerasClustError, UsageError
from keras_clust.experiment import ExperimentSpec, Export, load_run, run_experiment, write_evaluation
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.monte_carlo import LJSystem, check_kick
from keras_clust.lj.sampling import simulate
from keras_clust.runs import RunFolder, _jsonable, load_run_models, read_json, set_seed

log = logging.getLogger("keras_clust.apps.lj_fluid")


def exports(cfg: Config) -> list[Export]:
    """Each view's deterministic encoder (``z_mean``) and the grid and distance-matrix decoders."""
    return [
        Export("lj_fluid_coords_encoder", "coords_encoder.keras", "coordinates", ("z_mean",)),
        Export("lj_fluid_grid_encoder", "grid_encoder.keras", "density_grid", ("z_mean",)),
        Export("lj_fluid_grid_decoder", "grid_decoder.keras", "latent", ("occupancy",)),
        Export("lj_fluid_distance_encoder", "distance_encoder.keras", "distance_matrix", ("z_mean",)),
        Export("lj_fluid_distance_decoder", "distance_decoder.keras", "latent", ("distance_matrix",)),
    ]


SPEC = ExperimentSpec(name=NAME, config=Config, steps=steps, report=render_report, summary=summary, exports=exports)


# --- simulate ------------------------------------------------------------------------------


#: Options of ``simulate`` that decide the chains: ``--resume`` takes them from the interrupted run.
SIMULATE_OPTIONS = (
    "particles",
    "box",
    "dim",
    "temperature",
    "gamma",
    "samples",
    "replicas",
    "kick",
    "threshold",
    "preliminary_sweeps",
    "seed",
    "quick",
)

#: The chains' checkpoint in a simulation's run folder (under the backups removed when it completes).
CHECKPOINT = f"{RunFolder.BACKUP}/simulation.npz"


def simulate_options(args: argparse.Namespace) -> dict:
    """The simulation's options: those given, the others from the interrupted run (``--resume``) or the
    defaults; JSON-ready, as ``config.json`` keeps them under ``options``.

    Raises:
        UsageError: an option given with ``--resume`` differs from the interrupted run's.
    """
    given = {k: getattr(args, k) for k in SIMULATE_OPTIONS if getattr(args, k) is not None}
    if args.output is not None:
        given["output"] = args.output.resolve()  # the same file when resumed from another folder
    given = json.loads(json.dumps(_jsonable(given)))
    if args.resume is None:
        return {**json.loads(json.dumps(_jsonable(args._option_defaults))), "output": None, **given}
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


def simulate_action(args: argparse.Namespace) -> int:
    """Simulate, write the dataset atomically (``--output`` and the run folder's ``dataset.npz``),
    draw the figures and write the report. The chains are checkpointed in the run folder, so a
    killed simulation continues with ``--resume <run folder>``."""
    if args.resume is not None:
        folder = RunFolder.reopen(args.resume, NAME)
        args.resume = folder.work
    o = simulate_options(args)
    system = LJSystem(o["particles"], o["box"], o["dim"], o["temperature"])
    system.validate()
    check_kick(o["kick"], o["box"])
    output = None if o["output"] is None else Path(o["output"])
    if output is not None:
        check_output(output)
    samples = o["samples"] if not o["quick"] else min(o["samples"], 300)
    per_gamma = -(-samples // len(o["gamma"]))
    set_seed(o["seed"])
    start = time.perf_counter()
    command = "keras-clust lj-fluid simulate " + " ".join(
        _typed(k, o[k]) for k in SIMULATE_OPTIONS if o[k] is not False
    )
    rf = folder if args.resume is not None else RunFolder(args.out, NAME, o["seed"])
    config = {"experiment": NAME, "action": "simulate", "command": command, "options": o}
    dataset, checkpoint = rf.file("dataset.npz"), rf.file(CHECKPOINT)
    try:
        rf.write_config(config)  # what --resume reads back
        if args.resume is not None and dataset.is_file():  # killed after the simulation, before the report
            log.info("the simulation had finished; writing its figures and report")
            sim = load_lj_dataset(dataset)
        else:
            sim = simulate(
                system,
                o["gamma"],
                per_gamma,
                replicas=o["replicas"],
                kick=o["kick"],
                seed=o["seed"],
                threshold=o["threshold"],
                preliminary_sweeps=300 if o["quick"] else o["preliminary_sweeps"],
                progress=True,
                checkpoint=checkpoint,
                checkpoint_every=args.checkpoint_every,
            )
            save_lj_dataset(sim, dataset)
    except BaseException as exc:  # the run folder stays while its checkpoint can be continued
        if not checkpoint.is_file():
            rf.abort()
        elif not isinstance(exc, KerasClustError):
            log.warning("simulation stopped; continue it with --resume %s", rf.work)
        raise
    with rf:
        rf.keep_on_abort("dataset.npz")  # a failure in the figures does not lose the simulation
        if output is not None:
            save_lj_dataset(sim, output)
        shutil.rmtree(rf.work / RunFolder.BACKUP, ignore_errors=True)  # the dataset is written: no checkpoint
        metrics = simulation_metrics(sim)
        figures = simulation_figures(sim, rf.figures)
        seconds = round(time.perf_counter() - start, 1)
        rf.write_config({**config, **sim.settings})
        rf.write_metrics(
            {
                "run_id": rf.run_id,
                **metrics,
                "figures": sorted(p.name for p in figures.values()),
                "total_seconds": seconds,
            }
        )
        rf.write_history([])
        resumed = " (this process: the simulation was resumed)" if args.resume is not None else ""
        rf.write_report(
            f"# lj-fluid simulation `{rf.run_id}`\n\nCommand: `{command}` ({seconds} s wall{resumed})."
            "\n\n" + simulation_report(sim, metrics)
        )
    print(simulation_table(metrics))
    if output is not None:
        print(f"dataset: {output}")
    print(
        f"run folder: {rf.path} (dataset.npz inside; train on it with 'keras-clust lj-fluid run --dataset {rf.path}')"
    )
    return 0


def check_output(path: Path) -> None:
    """``--output`` must be a writable file path: checked before the simulation runs."""
    from keras_clust.errors import UsageError

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--output {path} is a folder; give a file name such as {path / 'lj_fluid.npz'}")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"--output {path}: cannot write to {path.parent}; choose another folder")


# --- run, evaluate, export ---------------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> Config:
    holdout = args.holdout_gamma
    if holdout == "auto":
        holdout = None if args.dataset is not None else Config().holdout_gamma
    cfg = Config(
        dataset=str(args.dataset) if args.dataset else None,
        particles=args.particles,
        box=args.box,
        dim=args.dim,
        temperature=args.temperature,
        gammas=args.gamma,
        holdout_gamma=holdout,
        samples=args.samples,
        replicas=args.replicas,
        kick=args.kick,
        preliminary_sweeps=args.preliminary_sweeps,
        threshold=args.threshold,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        grid_h=args.grid_h,
        grid_filters=args.grid_filters,
        grid_kernel=args.grid_kernel,
        grid_latent=args.grid_latent,
        distance_latent=args.distance_latent,
        coords_latent=args.coords_latent,
        beta=args.beta,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        cluster=args.cluster,
        quick=args.quick,
        seed=args.seed,
        export=not args.no_export,
        models_dir=str(args.models_dir),
    )
    for view in ("coords", "grid", "distance", "coordinate"):
        value = getattr(args, f"{view}_epochs")
        if value is not None:
            cfg = replace(cfg, **{f"{view}_epochs": value})
    if cfg.quick:
        cfg = quick_config(cfg)
    if cfg.dataset is None:
        LJSystem(cfg.particles, cfg.box, cfg.dim, cfg.temperature).validate()
        check_kick(cfg.kick, cfg.box)
    else:  # the dataset's settings, so that config.json says what the run trained on
        cfg = dataset_config(cfg, load_lj_dataset(dataset_file(cfg.dataset)))
    return cfg.check()


def run(args: argparse.Namespace) -> int:
    run_experiment(SPEC, config_from_args(args), args.out, **run_options(args))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Re-score a run's test configurations (or those of ``--dataset``) with its saved models:
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
    rows, result = [], {}
    for view in VIEWS:
        posterior, decoder = models[f"{view}_posterior.keras"], models[f"{view}_scoring_decoder.keras"]
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
    from keras_clust.errors import DataError

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


def export(args: argparse.Namespace) -> int:
    from keras_clust.experiment import export_action

    return export_action(SPEC)(args)


# --- options -------------------------------------------------------------------------------------


def add_physics_arguments(p: argparse.ArgumentParser, samples_help: str, samples_default: int | None = None) -> None:
    d = Config()
    g = p.add_argument_group("simulation")
    g.add_argument("--particles", type=positive_int, default=d.particles, help="particles N (default: 30)")
    g.add_argument("--box", type=positive_float, default=d.box, help="box side L in sigma (default: 5)")
    g.add_argument("--dim", type=int, choices=(2, 3), default=d.dim, help="2 or 3 dimensions (default: 3)")
    g.add_argument(
        "--temperature", type=positive_float, default=d.temperature, help="temperature T in epsilon/k_B (default: 1)"
    )
    g.add_argument(
        "--gamma",
        type=gamma_list,
        default=GAMMAS,
        help="gravity strengths gamma = m g sigma / (4 eps), comma-separated (default: 1,2,4)",
    )
    g.add_argument("--samples", type=positive_int, default=samples_default or d.samples, help=samples_help)
    g.add_argument(
        "--replicas",
        type=positive_int,
        default=d.replicas,
        help="independent chains per gamma, run in parallel on every core (default: 16)",
    )
    g.add_argument(
        "--kick",
        type=positive_float,
        default=d.kick,
        help="largest displacement per coordinate of a move, in sigma (default: 0.2)",
    )
    g.add_argument(
        "--threshold",
        type=fraction,
        default=d.threshold,
        help="autocorrelation below which configurations count as decorrelated (default: 0.1)",
    )
    g.add_argument(
        "--preliminary-sweeps",
        type=positive_int,
        default=d.preliminary_sweeps,
        help="sweeps (N moves each) of the preliminary run that measures equilibration and "
        "decorrelation; doubled up to 3 times until the lag is measured reliably "
        "(default: 4000)",
    )


def three_ints(text: str) -> tuple[int, ...]:
    """argparse type: three positive integers, e.g. ``8,16,32`` (one per Conv block)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"needs three filter counts, one per Conv block, e.g. 8,16,32; got {text!r}")
    return tuple(positive_int(p) for p in parts)


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every chain (default: 0)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="also write the dataset here (always written as dataset.npz in the run folder)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: at most 300 configurations, 300 sweeps")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_FOLDER",
        help="continue the simulation killed in this .<run-id>.partial folder from its last checkpoint, "
        "with its options (one given that differs is refused); the dataset is bitwise that of an "
        "uninterrupted run",
    )
    p.add_argument(
        "--checkpoint-every",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="seconds between checkpoints of the chains in the run folder, which --resume continues "
        "(0: after every kernel call; default: 60)",
    )
    add_physics_arguments(p, "configurations in all, split evenly between the gammas (default: 8000)")
    # None marks an option not given, which --resume takes from the interrupted run
    p.set_defaults(**dict.fromkeys(SIMULATE_OPTIONS), _option_defaults={k: p.get_default(k) for k in SIMULATE_OPTIONS})


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p)
    add_run_options(p)
    add_models_dir_argument(p)
    add_cluster_argument(p)
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPZ|RUN",
        help="train on this dataset (an .npz from 'simulate', or its run folder) instead of simulating; "
        "its physical settings replace the simulation options",
    )
    p.add_argument(
        "--holdout-gamma",
        type=optional_gamma,
        default="auto",
        metavar="G|auto|none",
        help="gamma kept out of training to test anomaly detection; auto: 0.5 simulated beside the "
        "training gammas, none with --dataset (default: auto)",
    )
    add_physics_arguments(
        p,
        "configurations of the training gammas in all, split evenly between them; the "
        "held-out gamma gets as many as one of them (default: 8000)",
    )
    d = Config()
    g = p.add_argument_group("models")
    g.add_argument(
        "--grid-h",
        type=positive_float,
        default=None,
        help="density-grid cell side h in sigma; L/h must be a whole multiple of 8 (default: L/32, "
        "0.15625 for L = 5; --quick: L/16)",
    )
    g.add_argument(
        "--grid-filters",
        type=three_ints,
        default=d.grid_filters,
        help="Conv filters of the three encoder blocks (default: 8,16,32)",
    )
    g.add_argument("--grid-kernel", type=positive_int, default=d.grid_kernel, help="Conv kernel size (default: 3)")
    g.add_argument(
        "--grid-latent", type=positive_int, default=d.grid_latent, help="latent size of the grid VAE (default: 16)"
    )
    g.add_argument(
        "--coords-latent",
        type=positive_int,
        default=d.coords_latent,
        help="latent size of the sorted-coordinate VAE (default: 2)",
    )
    g.add_argument(
        "--distance-latent",
        type=positive_int,
        default=d.distance_latent,
        help="latent size of the distance-matrix VAE (default: 64)",
    )
    g.add_argument("--beta", type=positive_float, default=d.beta, help="KL weight of every VAE (default: 1)")
    for view, default in (
        ("coords", d.coords_epochs),
        ("grid", d.grid_epochs),
        ("distance", d.distance_epochs),
        ("coordinate", d.coordinate_epochs),
    ):
        g.add_argument(
            f"--{view}-epochs",
            type=positive_int,
            default=None,
            help=f"epochs of the {view} model (default: {default}; --quick: 2)",
        )
    g.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="batch size (default: 64)")
    g.add_argument(
        "--learning-rate", type=positive_float, default=d.learning_rate, help="Adam learning rate (default: 0.001)"
    )
    g = p.add_argument_group("splits")
    g.add_argument("--val-fraction", type=fraction, default=d.val_fraction, help="validation share (default: 0.1)")
    g.add_argument("--test-fraction", type=fraction, default=d.test_fraction, help="test share (default: 0.1)")
    p.add_argument("--no-export", action="store_true", help="do not export SavedModels")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_run_arguments(p)
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="NPZ|RUN",
        help="score this dataset's test split instead of the run's own (default: the run's dataset.npz)",
    )
