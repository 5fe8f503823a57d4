"""``gmm-vae tune``: the preset sweep, run on mixtures that ``gmm-vae run`` does not report.

Every candidate of :data:`SWEEP` is trained on every mixture seed (100-104 by default) and
scored as ``run`` scores its rows. The winner has the most modes captured (headline,
mean over mixtures), then the highest high-quality share (3 sd), then the lowest held-out
-ELBO. ``apps/gmm_vae/preset_sweep.md`` holds the table that chose :data:`TUNED`.

The sweep is an experiment of its own on :mod:`keras_clust.experiment` (``action="tune"``):
:class:`TuneConfig` is its config, :func:`sweep_steps` trains the cells (in ``--workers``
processes through :func:`keras_clust.parallel.map_in_processes`), and the skeleton writes
the run folder, ``config.json``, ``metrics.json``, ``history.csv`` and ``report.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from keras_clust.app import action
from keras_clust.apps.gmm_vae.config import (
    NAME,
    QUICK_EPOCHS,
    QUICK_MIXTURES,
    QUICK_SAMPLES,
    SWEEP,
    SWEEP_MIXTURE_SEEDS,
    Config,
    _from_version_2,
    _from_version_3,
    data_note,
    mixture_data,
    quick_settings,
)
from keras_clust.apps.gmm_vae.pipeline import score, train_vae, true_nll
from keras_clust.apps.gmm_vae.report import SUMMARY_COLUMNS, _cell, _get, summarise
from keras_clust.errors import UsageError
from keras_clust.experiment import ExperimentSpec, Run, run_from_args
from keras_clust.markdown import markdown_table
from keras_clust.option_types import non_negative_int, positive_int, seed_list
from keras_clust.parallel import map_in_processes
from keras_clust.seeding import seed_model
from keras_clust.settings import RunOptions, add_settings, config_defaults, config_from_args, setting
from keras_clust.training import fit_context


def _names(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names (checked against :data:`SWEEP` by :func:`tune_config`)."""
    return tuple(c.strip() for c in text.split(",") if c.strip())


#: The options of ``tune``; the other settings of :class:`TuneConfig` are the run's defaults.
TUNE_OPTIONS = ("seed", "mixture_seeds", "candidates", "quick", "workers")


@dataclass
class TuneConfig(Config):
    """Every setting of a ``gmm-vae tune`` (stored as its ``config.json``): the sweep's options
    (:data:`TUNE_OPTIONS`) and, without options, the run settings that sample and score every
    cell (``--quick`` caps the samples as it caps a run's)."""

    #: Version 1: sweeps written before config versions hold its keys; version 2 added the
    #: prior settings and ``component_sd`` (migrated as a run's version 2 is); version 3 the
    #: weighted mode count (``mode_share``) and 10,000 prior draws (as a run's version 4).
    CONFIG_VERSION: ClassVar[int] = 3
    MIGRATIONS: ClassVar[dict] = {1: _from_version_2, 2: _from_version_3}

    mixture_seeds: tuple[int, ...] = setting(
        SWEEP_MIXTURE_SEEDS, "mixtures of the sweep, none of run's", type=seed_list
    )
    quick: bool = setting(
        False, f"smoke run: {QUICK_MIXTURES} mixtures, {QUICK_SAMPLES} samples, at most {QUICK_EPOCHS} epochs"
    )
    seed: int = setting(0, "run seed: model seeds and prior draws", type=non_negative_int)
    export: bool = False
    candidates: tuple[str, ...] | None = setting(
        None, f"comma-separated subset of {', '.join(SWEEP)}", type=_names, default_text="all"
    )
    #: The command line that repeats the sweep (in the report).
    command: str = ""
    workers: int = setting(
        1,
        "train the sweep's cells (a candidate on a mixture) in N processes on this machine, the cores shared "
        "between them; the table is the one a single process gives",
        type=positive_int,
    )

    @staticmethod
    def option_defaults(cfg: TuneConfig) -> dict:
        """The options that repeat ``cfg`` (``--config``)."""
        values = config_defaults(TuneConfig, asdict(cfg))
        return {k: v for k, v in values.items() if k in TUNE_OPTIONS}


def tune_config(args: argparse.Namespace) -> TuneConfig:
    """The config of a ``gmm-vae tune`` command line: its options, checked (no mixture of the
    run's, known candidates), the command that repeats it, every candidate when none is named
    and, with ``--quick``, the first mixtures."""
    cfg = config_from_args(TuneConfig, args)
    seeds, run_seeds = cfg.mixture_seeds, Config().mixture_seeds
    if set(seeds) & set(run_seeds):
        raise UsageError(
            f"--mixture-seeds {','.join(map(str, seeds))}: the sweep must not use the mixtures 'run' "
            f"reports ({','.join(map(str, run_seeds))})"
        )
    candidates = cfg.candidates or tuple(SWEEP)
    unknown = [c for c in candidates if c not in SWEEP]
    if unknown:
        raise UsageError(f"--candidates: unknown {unknown}; choose from {', '.join(SWEEP)}")
    cfg.command = (
        "keras-clust gmm-vae tune"
        + "".join(
            f" --{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
            for k, v in (("mixture_seeds", seeds), ("candidates", cfg.candidates), ("seed", cfg.seed))
            if v is not None
        )
        + (" --quick" if cfg.quick else "")
    )
    cfg.candidates = candidates
    if cfg.quick:
        cfg.mixture_seeds = seeds[:QUICK_MIXTURES]
    return cfg


def sweep_table(results: dict[str, dict[str, dict]]) -> tuple[list[dict], str]:
    """Rows ``candidate -> mean ± sd (min–max)`` over the mixtures, and the winner's name."""
    rows, keys = [], {}
    for name, per_mixture in results.items():
        cols = {
            c: summarise([_get(m, path) * scale for m in per_mixture.values()]) for c, path, scale in SUMMARY_COLUMNS
        }
        keys[name] = (cols["modes"]["mean"], cols["HQ % (3 sd)"]["mean"], -cols["-ELBO nats"]["mean"])
        rows.append({"candidate": name, **{c: _cell(cols[c], 3 if c == "-ELBO nats" else 1) for c in cols}})
    return rows, max(keys, key=keys.get)


@dataclass(frozen=True)
class SweepCell:
    """One candidate on one mixture: a piece of the sweep that any process can train."""

    cfg: Config
    name: str
    mixture_seed: int
    tensorboard: Path | None = None


def train_cell(cell: SweepCell) -> dict:
    """Train and score one candidate on one mixture, as ``run`` scores its rows; the model is
    seeded from the run seed, the candidate and the mixture alone, so the numbers do not depend
    on the process or the order."""
    cfg = cell.cfg
    data = mixture_data(cfg, cell.mixture_seed)
    s = SWEEP[cell.name]
    s = quick_settings(s) if cfg.quick else s
    logs = None if cell.tensorboard is None else cell.tensorboard / f"{data.key}-{cell.name}"
    with fit_context(tensorboard=logs):
        trained = train_vae(cell.name, s, data, lambda key: seed_model(cfg.seed, key))
    result, _ = score(cell.name, s, trained, data, cfg, cfg.seed + 1, kmeans=False)
    return {
        "mixture": data.key,
        "model_seed": trained.model_seed,
        "result": result,
        "true_nll": true_nll(data),
        "history": trained.fit.rows(mixture=data.key, model=cell.name),
    }


def sweep_steps(cfg: TuneConfig, run: Run) -> None:
    """Train and score every candidate on every mixture, in ``cfg.workers`` processes."""
    run.set_data(note=data_note(cfg))
    cells = [
        SweepCell(cfg, name, mixture_seed, run.tensorboard)
        for mixture_seed in cfg.mixture_seeds
        for name in cfg.candidates
    ]
    results: dict[str, dict[str, dict]] = {name: {} for name in cfg.candidates}
    nll = {}
    for cell, done in zip(cells, map_in_processes(train_cell, cells, cfg.workers, cfg.seed), strict=True):
        results[cell.name][done["mixture"]] = done["result"]
        nll[done["mixture"]] = done["true_nll"]
        run.history += done["history"]
        run.model_seeds[f"{cell.name}/{done['mixture']}"] = done["model_seed"]
    run.metrics.update(results=results, true_nll=nll, best=sweep_table(results)[1])


def render_sweep_report(cfg: TuneConfig, metrics: dict) -> str:
    rows, best = sweep_table(metrics["results"])
    nll = metrics["true_nll"]
    lines = [
        f"# gmm-vae preset sweep `{metrics['run_id']}`",
        "",
        f"Command: `{cfg.command}` ({metrics['total_seconds']} s wall).",
        "",
        f"Mixture seeds {', '.join(map(str, cfg.mixture_seeds))} ({cfg.samples} training and held-out samples "
        f"each, {cfg.dim}-D, {cfg.components} components); mean ± sd (min–max) over them. Candidates: "
        + "; ".join(f"`{n}` = {SWEEP[n]}" for n in cfg.candidates)
        + ".",
        "",
        f"Chosen: most modes captured (a mode needs {cfg.mode_share:g} of the high-quality samples the "
        "mixture's own samples give it), then highest high-quality share (3 sd), then "
        f"lowest held-out -ELBO: **{best}**.",
        "",
        markdown_table(rows),
        "",
        "True NLL of the held-out samples (nats): " + ", ".join(f"{k} {v:.3f}" for k, v in nll.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def sweep_summary(cfg: TuneConfig, metrics: dict) -> str:
    rows, best = sweep_table(metrics["results"])
    return markdown_table(rows) + f"chosen: {best}\n"


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    add_settings(p, RunOptions, only=("out", "tensorboard"))
    add_settings(p, TuneConfig, only=TUNE_OPTIONS)


TUNE_SPEC = ExperimentSpec(NAME, TuneConfig, sweep_steps, render_sweep_report, sweep_summary, action="tune")


@action("tune", add_tune_arguments, TuneConfig)
def tune(args: argparse.Namespace) -> int:
    """the preset sweep on mixtures the run does not report (seeds 100-104)"""
    return run_from_args(TUNE_SPEC, args, tune_config)
