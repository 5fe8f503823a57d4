"""One skeleton for every experiment app: run, evaluate and export.

An app declares three things and the skeleton does the rest:

* its **config**, a dataclass with at least ``seed`` (and, when it exports, ``export: bool``
  and ``models_dir: str``). Its fields are written to ``config.json``; a class attribute
  ``CONFIG_VERSION: ClassVar[int]`` (default 1) and ``MIGRATIONS: ClassVar[dict]``
  (``{old_version: fn(dict) -> dict}``, each step upgrading one version) declare how runs
  written with an older config are read (see :func:`config_from_saved`);
* its **steps**, one function ``steps(cfg, run: Run) -> None`` that reads data, trains,
  scores and plots. It calls ``run.set_data(source)`` once, ``run.seed_model(key)`` right
  before building each model (so a model's initial weights depend only on the run seed
  and its name, not on the models built before it), saves models with
  ``run.save_model(model, "x.keras")`` and fills ``run.metrics`` (a dict) and
  ``run.history`` (a list of rows, e.g. ``FitResult.rows()``);
* its **exported models**: ``exports(cfg) -> [Export(name, file, input_name,
  output_names, wrap=None)]``, each a ``models/<file>`` of the run served as a SavedModel.

``ExperimentSpec(name, config, steps, report, summary, exports)`` bundles them, and
``run_experiment(spec, cfg, out)`` then: seeds once (:func:`keras_clust.seeding.set_seed`),
opens the :class:`~keras_clust.run_folder.RunFolder`, runs the steps, exports every
:class:`Export` (verified against Keras on ``run.export_samples[input_name]`` when the
steps put real inputs there, on seeded random inputs otherwise), writes ``config.json``,
``metrics.json`` (with ``run_id``, ``data``, ``model_seeds``, ``exports``,
``total_seconds`` added), ``history.csv`` and ``report.md`` (``report(cfg, metrics)``
followed by the common tail of :func:`report_tail`: data source, seeds, versions,
total time, exported SavedModels), and prints ``summary(cfg, metrics)``, the data note
and ``run folder: ...``.

For ``evaluate`` and ``export``: :func:`load_run` finds a run folder and rebuilds its
config strictly (unknown or missing keys are a one-line :class:`DataError` unless a
migration is declared); :func:`export_models` exports a saved run's models;
:func:`export_from_args` is a complete ``export`` action; :func:`warn_if_data_differs`
flags a re-evaluation on other data than the run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.files import atomic_save_npz, read_json, write_json
from keras_clust.markdown import markdown_table
from keras_clust.provenance import library_versions
from keras_clust.run_folder import RunFolder, find_run, load_run_models
from keras_clust.seeding import seed_model, set_seed

log = logging.getLogger(__name__)

#: Keys of ``config.json`` that the skeleton and :class:`RunFolder` add beside the config's fields.
RESERVED_KEYS = frozenset({"experiment", "action", "config_version", "data", "run_id", "versions", "machine", "fast"})

#: Libraries named in the report tail (``config.json`` holds them all).
TAIL_VERSIONS = ("python", "tensorflow", "keras", "numpy", "scikit-learn")


@dataclass(frozen=True)
class Export:
    """One model of a run served as a SavedModel.

    Attributes:
        name: SavedModel name under ``--models-dir`` (e.g. ``mnist_denoise_z16``).
        file: The model's file under the run's ``models/`` (e.g. ``denoiser_z16.keras``).
        input_name: Name of the serving signature's input.
        output_names: Names of its outputs, one per model output.
        wrap: Optional function turning the saved model into the served one
            (e.g. :func:`keras_clust.models.probability_model`).
    """

    name: str
    file: str
    input_name: str
    output_names: tuple[str, ...] | str
    wrap: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment declares; :func:`run_experiment` does the rest.

    Attributes:
        name: Experiment name (the ``runs/<name>/`` folder and the CLI name).
        config: The config dataclass (used by :func:`load_run`).
        steps: ``steps(cfg, run)``: data, models, scores, figures.
        report: ``report(cfg, metrics) -> str``: the experiment's part of ``report.md``.
        summary: ``summary(cfg, metrics) -> str``: what ``run`` prints (Markdown).
        exports: ``exports(cfg) -> [Export, ...]``: the models served as SavedModels.
        action: The action it is (``run``, ``tune``, ``simulate``, ``generate``, ``cluster``):
            recorded in ``config.json``, where ``evaluate``/``export``/``--params-from`` look.
    """

    name: str
    config: type
    steps: Callable[[Any, Run], None]
    report: Callable[[Any, dict], str]
    summary: Callable[[Any, dict], str] = lambda cfg, metrics: ""
    exports: Callable[[Any], Sequence[Export]] = lambda cfg: ()
    action: str = "run"


class Run:
    """What the steps of a run see: the config, the run folder, and what they fill in.

    Attributes:
        config: The run's config.
        folder: The :class:`RunFolder` (partial until the run ends).
        metrics: The experiment's metrics; the skeleton adds its own keys at the end.
        history: Per-epoch rows for ``history.csv``.
        data: Where the data came from (``DataSource.to_dict()``), set by :meth:`set_data`.
        export_samples: Real inputs to verify the exports on, by ``Export.input_name``.
        labels: Cluster of every row a clustering labelled, by clustering (e.g. ``z16_kmeans``),
            in the rows' order: written as ``labels.npz`` when the run ends.
        model_seeds: The seed each model was built with, by key.
    """

    def __init__(self, spec: ExperimentSpec, config, folder: RunFolder):
        self.spec = spec
        self.config = config
        self.folder = folder
        self.metrics: dict = {}
        self.history: list[dict] = []
        self.data: dict | None = None
        self.export_samples: dict[str, np.ndarray] = {}
        self.labels: dict[str, np.ndarray] = {}
        self.model_seeds: dict[str, int] = {}
        #: Where ``--tensorboard`` logs go (``tensorboard/`` in the run folder), or None.
        self.tensorboard: Path | None = None

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    @property
    def work(self) -> Path:
        """The (partial) folder the run is written to."""
        return self.folder.work

    @property
    def figures(self) -> Path:
        return self.folder.figures

    def file(self, relative: str) -> Path:
        """Path of a file inside the run folder, its parent created."""
        return self.folder.file(relative)

    def set_data(self, source=None, note: str | None = None) -> dict:
        """Record where the data came from: a ``DataSource``, its dict, or just a ``note``
        (for an experiment without a dataset)."""
        if source is None:
            self.data = {"note": note or "no dataset", "full": True}
        else:
            self.data = dict(source.to_dict() if hasattr(source, "to_dict") else source)
        return self.data

    def seed_model(self, key: str) -> int:
        """Re-seed Python, NumPy and Keras for the model ``key`` (call it right before
        building the model); the seed is recorded in ``metrics.json`` and the report."""
        self.model_seeds[key] = seed_model(self.config.seed, key)
        return self.model_seeds[key]

    def save_model(self, model, file: str) -> Path:
        """Save a Keras model as ``models/<file>`` of the run; returns its path."""
        path = self.file(f"models/{file}")
        model.save(path)
        return path


@dataclass
class FinishedRun:
    """A committed run: its folder and its metrics."""

    path: Path
    metrics: dict = field(default_factory=dict)


def _version_line(versions: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {versions[k]}" for k in TAIL_VERSIONS if k in versions)


def report_tail(
    config, metrics: Mapping, versions: Mapping[str, str] | None = None, exports_section: bool = True
) -> str:
    """The common end of every ``report.md``: data, seeds, versions, time and (for an action
    whose models the ``export`` action serves, ``exports_section``) the exports."""
    data = metrics.get("data") or {}
    note = data.get("note", "unknown")
    if data.get("full") is False:
        note += " **(a reduced stand-in, not the full dataset)**"
    seeds = metrics.get("model_seeds") or {}
    seed_text = f"{config.seed}" + (
        "; each model re-seeded from it and its name: " + ", ".join(f"{k} {v}" for k, v in seeds.items())
        if seeds
        else ""
    )
    lines = [
        "## Run",
        "",
        f"- **Data:** {note}",
        f"- **Seed:** {seed_text}",
        f"- **Versions:** {_version_line(versions or library_versions())} (all settings, versions and the "
        "machine are in `config.json`)",
        f"- **Total time:** {metrics.get('total_seconds', 0):.0f} s" + _fast_note(metrics.get("fast")),
    ]
    exports = metrics.get("exports") or []
    if not exports_section and not exports:
        return "\n".join(lines) + "\n"
    lines += ["", "## Exported SavedModels", ""]
    if exports:
        lines.append(markdown_table(exports, floatfmt=".2e").rstrip("\n"))
    else:
        lines.append("None in this run (`--no-export`); the `export` action writes them from this run folder.")
    return "\n".join(lines) + "\n"


def _fast_note(fast: Mapping | None) -> str:
    if not fast:
        return ""
    fits = fast["fits"]
    xla = sum(f["jit_compile"] for f in fits)
    several = sum(f["steps_per_execution"] > 1 for f in fits)
    if fast["op_determinism"]:
        how = "op determinism was already on in this process, so no XLA"
    else:
        how = f"op determinism off (not bitwise reproducible), XLA in {xla} of {len(fits)} fits"
    return f" (`--fast`: {how}, several batches per call in {several})"


def _sample_for(model, sample: np.ndarray | None, seed: int, n: int = 16) -> np.ndarray:
    """``sample`` shaped as the model's input, or seeded uniform [0, 1) inputs."""
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if sample is not None:
        sample = np.asarray(sample, np.float32)
        if sample.shape[1:] == shape:
            return sample
        if sample[0].size == int(np.prod(shape)):
            return sample.reshape(len(sample), *shape)
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def export_models(
    exports: Sequence[Export],
    run_path: str | Path,
    models_dir: str | Path,
    samples: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> list[dict]:
    """Export the models of a run folder (``<run_path>/models/<file>``), each checked against
    Keras on ``samples[input_name]`` (or seeded random inputs); returns one row per export."""
    from keras_clust.export import export_verified

    if not exports:
        return []
    files = list(dict.fromkeys(e.file for e in exports))
    models = load_run_models(run_path, files)
    rows = []
    for e in exports:
        model = models[e.file] if e.wrap is None else e.wrap(models[e.file])
        x = _sample_for(model, (samples or {}).get(e.input_name), seed)
        rows.append(export_verified(model, e.name, models_dir, e.input_name, e.output_names, x))
    return rows


def saved_config(spec: ExperimentSpec, config, data: dict | None, fast: bool = False) -> dict:
    """What ``config.json`` holds besides what :class:`RunFolder` adds (``fast``: the run's
    ``--fast``, which a resume keeps)."""
    return {
        "experiment": spec.name,
        "action": spec.action,
        "config_version": getattr(type(config), "CONFIG_VERSION", 1),
        **dataclasses.asdict(config),
        "data": data,
        "fast": bool(fast),
    }


def run_experiment(
    spec: ExperimentSpec,
    config,
    out: str | Path,
    resume: str | Path | None = None,
    tensorboard: bool = False,
    strategy: str = "none",
    fast: bool = False,
) -> FinishedRun:
    """Seed, open the run folder, run the steps, export, write every file, print the summary.

    Every ``fit_model`` of the steps is backed up after each epoch in the run folder's
    ``backup/`` (removed when the run completes), so a killed run, whose ``.partial``
    folder stays, continues with ``resume``: its saved config is used, finished fits
    restore their weights and the interrupted one goes on from its last finished epoch.

    Args:
        spec: The experiment.
        config: Its config (a ``spec.config`` instance); ignored when resuming.
        out: Root of the run folders (``--out``).
        resume: An interrupted run's ``.partial`` folder (``--resume``), or None.
        tensorboard: Log every fit for TensorBoard under the run's ``tensorboard/`` folder.
        strategy: ``none`` or ``mirrored`` (:mod:`keras_clust.distribute`): the steps build
            and train their models inside that ``tf.distribute`` scope.
        fast: Train for speed: TensorFlow's op determinism is not turned on (the same seed no
            longer gives bitwise-equal numbers) and the fits' models are compiled with XLA
            (except 3-D convolutional ones on a CPU, where XLA is slower) and several batches
            per call (``fit_context(fast=True)``); ``metrics.json`` lists what
            each fit ran with. In a process where op determinism is already on (an earlier
            deterministic run), it stays on and XLA stays off. A resumed run keeps the ``fast``
            it was started with.

    Returns:
        The committed run.
    """
    import contextlib

    from keras_clust.distribute import make_strategy, replicas
    from keras_clust.seeding import op_determinism
    from keras_clust.training import fit_context

    if strategy != "none" and resume is not None:
        raise UsageError("--resume continues a run on one process; start it without --strategy")
    strat = make_strategy(strategy)
    if resume is not None:
        folder = RunFolder.reopen(resume, spec.name)
        saved = read_json(folder.work / "config.json")
        config = config_from_saved(spec.config, saved, str(folder.work), spec.name)
        if bool(saved.get("fast", False)) != fast:
            log.warning(
                "run %s was started %s --fast: resumed so", folder.run_id, "with" if saved.get("fast") else "without"
            )
        fast = bool(saved.get("fast", False))
        log.info("resuming run %s with its saved config", folder.run_id)
    set_seed(config.seed, deterministic=not fast)
    start = time.perf_counter()
    scope = strat.scope() if strat is not None else contextlib.nullcontext()
    with folder if resume is not None else RunFolder(out, spec.name, config.seed) as rf, scope:
        rf.write_config(saved_config(spec, config, None, fast))  # what --resume reads back
        run = Run(spec, config, rf)
        logs = run.tensorboard = rf.work / "tensorboard" if tensorboard else None
        backup = rf.work / RunFolder.BACKUP if strat is None else None  # BackupAndRestore: one process only
        with fit_context(backup=backup, tensorboard=logs, strategy=strat, fast=fast) as fits:
            spec.steps(config, run)
        if run.data is None:
            run.set_data(note="not recorded")
        if run.labels:
            atomic_save_npz(rf.work / "labels.npz", {k: np.asarray(v) for k, v in run.labels.items()})
        exports = []
        if getattr(config, "export", False):
            exports = export_models(spec.exports(config), rf.work, config.models_dir, run.export_samples, config.seed)
        if strat is not None:
            run.metrics["distribute"] = {"strategy": strategy, "replicas": replicas(strat)}
        if fast:
            run.metrics["fast"] = {"op_determinism": op_determinism(), "fits": fits.fits}
        metrics = {
            "run_id": rf.run_id,
            "data": run.data,
            **run.metrics,
            "model_seeds": run.model_seeds,
            "exports": exports,
            "total_seconds": round(time.perf_counter() - start, 1),
        }
        rf.write_config(saved_config(spec, config, run.data, fast))
        rf.write_metrics(metrics)
        rf.write_history(run.history)
        body = spec.report(config, metrics).rstrip("\n")
        rf.write_report(body + "\n\n" + report_tail(config, metrics, exports_section=spec.action == "run"))
    text = spec.summary(config, metrics)
    if text:
        print(text, end="" if text.endswith("\n") else "\n")
    print(f"data: {run.data['note']}")
    print(f"run folder: {rf.path}")
    return FinishedRun(rf.path, metrics)


# --- reading a finished run ------------------------------------------------------------


def _as_saved(value, hint):
    """JSON lists back to tuples where the field's type is a tuple (also inside ``X | None``)."""
    if not isinstance(value, list):
        return value
    origins = {typing.get_origin(hint) or hint}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        origins = {typing.get_origin(a) or a for a in typing.get_args(hint)}
    return tuple(value) if tuple in origins else value


def _keys(names: Sequence[str]) -> str:
    return ", ".join(names)


def config_from_saved(config_cls: type, raw: Mapping, where: str, experiment: str = "the experiment"):
    """Rebuild a config from a saved ``config.json``, strictly.

    A run written with other config keys than ``config_cls`` has is not guessed at: unknown
    keys are not dropped and missing keys are not filled with today's defaults. A class
    that changed its fields raises ``CONFIG_VERSION`` and declares in ``MIGRATIONS`` how
    each older version's dict becomes the next one's; those runs load through them.

    Args:
        config_cls: The config dataclass.
        raw: The saved ``config.json``.
        where: The run folder, for messages.
        experiment: Experiment name, for messages.

    Raises:
        DataError: one line naming the unknown and missing keys (or the version) and what to do.
    """
    current = int(getattr(config_cls, "CONFIG_VERSION", 1))
    migrations = getattr(config_cls, "MIGRATIONS", {}) or {}
    version = int(raw.get("config_version", 1))
    values = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
    hint = f"re-run it with 'keras-clust {experiment} run', or read it with the keras-clust version that wrote it"
    if version > current:
        raise DataError(
            f"run {where} was written with config version {version}, newer than this keras-clust's {current}; {hint}"
        )
    while version < current:
        if version not in migrations:
            raise DataError(
                f"run {where} was written with config version {version} and there is no migration "
                f"to version {current}; {hint}"
            )
        values = dict(migrations[version](dict(values)))
        version += 1
    fields = [f for f in dataclasses.fields(config_cls) if f.init]
    names = {f.name for f in fields}
    unknown = sorted(set(values) - names)
    missing = [f.name for f in fields if f.name not in values]
    if unknown or missing:
        parts = ([f"unknown keys {_keys(unknown)}"] if unknown else []) + (
            [f"missing {_keys(missing)}"] if missing else []
        )
        raise DataError(f"run {where} was written with a different config ({'; '.join(parts)}); {hint}")
    hints = typing.get_type_hints(config_cls)
    return config_cls(**{f.name: _as_saved(values[f.name], hints.get(f.name)) for f in fields})


def saved_config_defaults(config_cls: type, path: str | Path, experiment: str, action: str) -> dict:
    """What ``--config FILE`` puts under the command line: the settings of a saved
    ``config.json`` (read strictly, through the config's migrations) as parser defaults.

    Raises:
        DataError: the file is missing or unreadable, of another experiment or action, or
            of a config this version cannot read; one line each.
    """
    from keras_clust.settings import config_defaults

    raw = read_json(path)
    if not isinstance(raw, dict):
        raise DataError(f"{path} is not a config.json (no JSON object); give a run folder's config.json")
    written = (raw.get("experiment"), _action_of(raw))
    if written != (experiment, action):
        raise DataError(
            f"{path} holds the settings of '{written[0]} {written[1]}', not '{experiment} {action}'; "
            f"give a config.json written by 'keras-clust {experiment} {action}'"
        )
    cfg = config_from_saved(config_cls, raw, str(Path(path).parent), experiment)
    values = dataclasses.asdict(cfg)
    hook = getattr(config_cls, "option_defaults", None)
    return hook(cfg) if hook is not None else config_defaults(config_cls, values)


@dataclass
class LoadedRun:
    """A finished run read back: folder, config (rebuilt strictly), metrics, raw config.json."""

    path: Path
    config: Any
    metrics: dict
    raw_config: dict


def _action_of(raw: Mapping) -> str:
    return str(raw.get("action", "run"))  # runs written before actions were recorded are runs


def newest_run(out: str | Path, name: str, action: str = "run") -> Path:
    """The newest complete folder under ``out/name`` written by ``action``.

    Raises:
        DataError: when there is none.
    """
    find_run(out, name, None)  # a clear error when there is no complete folder at all
    complete = [
        p
        for p in (Path(out) / name).iterdir()
        if not p.name.startswith(".") and (p / "metrics.json").is_file() and (p / "config.json").is_file()
    ]
    actions = {p: _action_of(read_json(p / "config.json")) for p in complete}
    folders = [p for p, a in actions.items() if a == action]
    if not folders:
        others = ", ".join(f"'{a}'" for a in sorted(set(actions.values())))
        raise DataError(
            f"no complete '{action}' folder under {Path(out) / name} (only {others} folders); "
            f"run 'keras-clust {name} {action}' first"
        )
    return max(folders, key=lambda p: p.stat().st_mtime)


def load_run(spec: ExperimentSpec, out: str | Path, run: str | Path | None = None) -> LoadedRun:
    """Find a finished ``run`` of ``spec`` (``--run``: folder or id; None: the newest) and
    read it back with :func:`config_from_saved`.

    Raises:
        DataError: no such run, a folder of another action, or a config that differs.
    """
    path = find_run(out, spec.name, run) if run is not None else newest_run(out, spec.name)
    raw = read_json(path / "config.json")
    if _action_of(raw) != "run":
        raise DataError(f"{path} is a '{_action_of(raw)}' folder; pass a folder written by '{spec.name} run'")
    config = config_from_saved(spec.config, raw, str(path), spec.name)
    return LoadedRun(path, config, read_json(path / "metrics.json"), dict(raw))


def run_to_evaluate(spec: ExperimentSpec, args: argparse.Namespace) -> LoadedRun:
    """The finished run an ``evaluate`` action re-scores (``--out``, ``--run``), with the global
    seed set to the run's own so that its data and draws come out as they did."""
    loaded = load_run(spec, args.out, args.run)
    set_seed(loaded.config.seed)
    return loaded


def warn_if_data_differs(stored: Mapping, source) -> bool:
    """Warn when a saved run's data record (``metrics['data']``) differs from today's ``source``;
    returns True when they differ."""
    now = source.to_dict() if hasattr(source, "to_dict") else dict(source)
    if now != stored.get("data"):
        log.warning(
            "data differs from the run's: %s (run used: %s)", now.get("note"), (stored.get("data") or {}).get("note")
        )
        return True
    return False


def write_evaluation(
    path: str | Path, result: Mapping, rows: Sequence[Mapping], floatfmt: str = ".4f", note: str | None = None
) -> int:
    """The end of every ``evaluate`` action: write ``<run>/evaluation.json``, print the table
    (and a ``note`` under it) and where the file went; returns the exit code 0."""
    target = Path(path) / "evaluation.json"
    write_json(target, result)
    print(markdown_table(rows, floatfmt=floatfmt), end="")
    if note:
        print(note)
    print(f"written: {target}")
    return 0


def run_from_args(
    spec: ExperimentSpec, args: argparse.Namespace, make_config: Callable[[argparse.Namespace], Any] | None = None
) -> int:
    """Run ``spec`` on the skeleton from an action's parsed arguments: its config from the
    command line (``make_config(args)``, by default every declared setting of ``spec.config``),
    then :func:`run_experiment` with ``--out`` and the run options the action has."""
    from keras_clust.settings import config_from_args, run_options

    config = make_config(args) if make_config is not None else config_from_args(spec.config, args)
    run_experiment(spec, config, args.out, **run_options(args))
    return 0


def export_from_args(spec: ExperimentSpec, args: argparse.Namespace) -> int:
    """The ``export`` action: ``--out``/``--run`` pick a run, ``--models-dir`` where its
    :class:`Export` models go (verified on seeded random inputs)."""
    loaded = load_run(spec, args.out, args.run)
    rows = export_models(spec.exports(loaded.config), loaded.path, args.models_dir, None, loaded.config.seed)
    print(markdown_table(rows, floatfmt=".2e"), end="")
    print(f"TF Serving config: {Path(args.models_dir) / 'models.config'}")
    return 0
