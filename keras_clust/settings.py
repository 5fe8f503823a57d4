"""Settings declared once: a config dataclass's fields carry their option's type and help.

A field declared with :func:`setting` is everything keras-clust knows about that setting: its
name (the option is ``--name-with-dashes`` unless ``flag`` says otherwise), its default (shown
in ``--help`` from the declaration), its parser type or choices, its help text and what
``--quick`` caps it to. From the dataclass come:

* the options of an action's parser (:func:`add_settings`);
* the config object of a parsed command line (:func:`config_from_args`), quick caps applied;
* ``config.json`` (``dataclasses.asdict``) and its strict reader
  (:func:`keras_clust.experiment.config_from_saved`);
* ``--config FILE``: a saved ``config.json`` as the parser's defaults, so a run is repeated
  from its settings and any option given on the command line overrides them
  (:func:`config_defaults`, wired in :mod:`keras_clust.cli`).

The options of every run that say how it runs rather than what it computes (``--out``,
``--resume``, ``--tensorboard``, ``--strategy``, ``--fast``) are the fields of
:class:`RunOptions`; the settings most configs share (seed, quick, data folder, export,
models folder) are declared once here by :func:`seed_setting` and its siblings.

Example::

    @dataclass
    class Config:
        epochs: int = setting(200, "training epochs per model", type=positive_int, quick=2)
        n_clusters: int = setting(10, "KMeans clusters", type=positive_int, flag="--clusters")
        seed: int = seed_setting()
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from keras_clust.option_types import k_bounds, k_or_auto, non_negative_int, positive_int

_KEY = "keras_clust.setting"


@dataclass(frozen=True)
class Setting:
    """The option side of one config field (see :func:`setting`)."""

    help: str
    type: Callable[[str], Any] | None = None
    choices: Sequence[Any] | None = None
    flag: str | None = None
    metavar: str | None = None
    default_text: str | None = None
    quick: Any = None
    group: str | None = None
    cli: bool = True
    aliases: tuple[str, ...] = ()


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    type: Callable[[str], Any] | None = None,
    choices: Sequence[Any] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    default_text: str | None = None,
    quick: Any = None,
    group: str | None = None,
    cli: bool = True,
    aliases: Sequence[str] = (),
    default_factory: Callable[[], Any] | Any = MISSING,
) -> Any:
    """A dataclass field that declares its command-line option.

    Args:
        default: The default value (or give ``default_factory``).
        help: What the setting does, without the default (``--help`` appends it).
        type: Parser of the option's text (e.g. :func:`keras_clust.option_types.positive_int`).
        choices: Allowed values.
        flag: The option's name when it is not ``--<field-name-with-dashes>``; a boolean field
            whose default is True takes a ``--no-...`` flag that turns it off.
        metavar: Name of the option's value in ``--help``.
        default_text: How ``--help`` shows the default when the value itself does not say it
            (e.g. ``"the known places"`` for None).
        quick: The most ``--quick`` allows (the value is capped with ``min``).
        group: Title of the ``--help`` group the option is listed under.
        cli: False for a field that is saved in ``config.json`` but has no option.
        aliases: Further option strings of the same setting (e.g. its earlier name).
        default_factory: A function making the default (for mutable defaults).
    """
    meta = {_KEY: Setting(help, type, choices, flag, metavar, default_text, quick, group, cli, tuple(aliases))}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declarations(cls: type) -> Iterator[tuple[dataclasses.Field, Setting]]:
    """The fields of the dataclass ``cls`` declared with :func:`setting`, in order."""
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_KEY)
        if declared is not None:
            yield f, declared


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"setting {f.name} has no default")


def flag_of(f: dataclasses.Field, declared: Setting) -> str:
    if declared.flag:
        return declared.flag
    return "--" + f.name.replace("_", "-")


def show_default(value: Any) -> str:
    """How ``--help`` writes a default: ``2,16,256`` for a tuple, ``none`` for None."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(show_default(v) for v in value)
    if isinstance(value, float) and math.isfinite(value) and value != 0 and abs(value) < 1e-2:
        return f"{value:g}"
    if isinstance(value, Path):
        return f"{value}/" if not value.suffix else str(value)
    return str(value)


def help_text(f: dataclasses.Field, declared: Setting) -> str:
    """The option's help: the declared text, the quick cap, and the declared default."""
    parts = [declared.help]
    if declared.quick is not None:
        parts.append(f"; --quick caps it at {show_default(declared.quick)}")
    default = default_of(f)
    if f.type in ("bool", bool) and isinstance(default, bool):
        return "".join(parts)
    shown = declared.default_text if declared.default_text is not None else show_default(default)
    return "".join(parts) + f" (default: {shown})"


def add_settings(
    parser: argparse.ArgumentParser, cls: type, *, skip: Sequence[str] = (), only: Sequence[str] | None = None
) -> None:
    """Add an option to ``parser`` for every declared field of ``cls`` (but those in ``skip``;
    with ``only``, just those, in that order).

    Each option stores into the field's own name, so :func:`config_from_args` needs no list."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    declared_fields = dict((f.name, (f, d)) for f, d in declarations(cls))
    if only is not None:
        unknown = [name for name in only if name not in declared_fields]
        if unknown:
            raise TypeError(f"{cls.__name__} declares no setting {', '.join(unknown)}")
    for f, declared in [declared_fields[n] for n in only] if only is not None else declared_fields.values():
        if not declared.cli or f.name in skip:
            continue
        target = parser
        if declared.group:
            if declared.group not in groups:
                groups[declared.group] = parser.add_argument_group(declared.group)
            target = groups[declared.group]
        default = default_of(f)
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": help_text(f, declared)}
        flag = flag_of(f, declared)
        if isinstance(default, bool) and declared.type is None:
            kwargs["action"] = "store_false" if flag.startswith("--no-") else "store_true"
        else:
            for key in ("type", "choices", "metavar"):
                if getattr(declared, key) is not None:
                    kwargs[key] = getattr(declared, key)
            if declared.flag and declared.metavar is None and declared.choices is None:
                kwargs["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        target.add_argument(flag, *declared.aliases, **kwargs)


def _as_config_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def config_from_args(cls: type, args: argparse.Namespace, **values: Any):
    """The config of a parsed command line: every declared field read from ``args`` (paths as
    text, lists as tuples), ``values`` on top, then the ``--quick`` caps."""
    taken = {
        f.name: _as_config_value(getattr(args, f.name))
        for f, declared in declarations(cls)
        if declared.cli and hasattr(args, f.name)
    }
    cfg = cls(**{**taken, **values})
    return apply_quick_caps(cfg)


def apply_quick_caps(cfg):
    """Cap every field declared with ``quick=`` when ``cfg.quick`` is set (idempotent)."""
    if getattr(cfg, "quick", False):
        for f, declared in declarations(type(cfg)):
            value = getattr(cfg, f.name)
            if declared.quick is not None and value is not None:
                setattr(cfg, f.name, min(value, declared.quick))
    return cfg


def config_defaults(cls: type, saved: Mapping[str, Any]) -> dict[str, Any]:
    """Parser defaults that repeat a saved config (``--config``): the declared fields' values,
    by the option's destination. The config must already have been read strictly."""
    out = {}
    for f, declared in declarations(cls):
        if not declared.cli or f.name not in saved:
            continue
        value = saved[f.name]
        out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


# --- the settings most configs share ---------------------------------------------------


def optional_setting(help: str, *, default_text: str, **option: Any):
    """A setting that is None unless given, ``default_text`` saying what happens then in ``--help``
    (``option``: the other keywords of :func:`setting`)."""
    return setting(None, help, default_text=default_text, **option)


def path_setting(help: str, *, default_text: str, **option: Any):
    """An optional path (:func:`optional_setting`)."""
    return optional_setting(help, default_text=default_text, type=Path, **option)


def seed_setting():
    return setting(0, "seed of every random choice in the run", type=non_negative_int)


def quick_setting():
    return setting(False, "smoke run: a small subset of the data and 1-2 epochs")


def data_dir_setting():
    return path_setting(
        "folder holding the dataset files; only this folder is searched when given", default_text="the known places"
    )


def export_setting():
    return setting(True, "do not export SavedModels at the end of the run", flag="--no-export")


def cluster_setting(flag: str | None = None, default: str = "kmeans"):
    """``--cluster`` (``flag`` names it when the field is not called ``cluster``; ``default``: the
    app's method beside KMeans, ``kmeans`` for none)."""
    from keras_clust.cluster.deep import METHODS

    return setting(
        default,
        "also cluster with DEC, IDEC (fine-tuning a copy of the encoder) or N2D (UMAP + Gaussian mixture on the "
        "codes) and report it beside KMeans; kmeans: KMeans only",
        choices=METHODS,
        default_text="kmeans only" if default == "kmeans" else None,
        flag=flag,
    )


def k_setting(
    default: int | str | None,
    default_text: str | None = None,
    *,
    type: Callable[[str], Any] = k_or_auto,
    metavar: str = "K|auto",
    **option: Any,
):
    """``--k``: the number of clusters, or ``auto`` (None) to choose it without labels (``type``
    and ``metavar`` for an experiment that takes a further word; a text ``default`` must parse)."""
    return setting(
        default,
        "number of clusters, or auto: chosen in --k-range by --k-criterion on N2D's UMAP manifold of the codes",
        type=type,
        flag="--k",
        metavar=metavar,
        default_text=default_text,
        **option,
    )


def k_range_setting(**option: Any):
    return setting(
        (2, 20), "the k that --k auto tries", type=k_bounds, metavar="LOW-HIGH", default_text="2-20", **option
    )


def k_criterion_setting(**option: Any):
    from keras_clust.cluster.k_selection import K_CRITERIA

    return setting(
        "silhouette",
        "how --k auto chooses: the mixtures' silhouette (one cluster when its best is below 0.25) or their BIC",
        choices=K_CRITERIA,
        **option,
    )


def models_dir_setting():
    return setting("saved_models", "root of exported SavedModels", type=Path, default_text="saved_models/")


@dataclass
class RunOptions:
    """How a ``run`` runs rather than what it computes: not part of its config, except
    ``fast``, which ``config.json`` keeps for ``--resume``."""

    out: Path = setting(Path("runs"), "root folder of run folders", type=Path, default_text="runs/")
    tensorboard: bool = setting(
        False,
        "log every training (every trial of a search) for TensorBoard under the run folder's tensorboard/ "
        "(scalars per epoch, no histograms); watch with: tensorboard --logdir runs/",
    )
    fast: bool = setting(
        False,
        "train for speed: TensorFlow's op determinism off, the fitted models compiled with XLA (not under "
        "--strategy, nor models with 3-D convolutions on a CPU, where XLA is slower) and 32 batches per "
        "call; the same seed then no longer gives bitwise-equal numbers; "
        "metrics.json lists what each fit ran with (default: deterministic)",
    )
    strategy: str = setting(
        "none",
        "train with tf.distribute: mirrored copies the model on every GPU of this machine (the CPU without one) "
        "and --batch-size is then per replica; multiworker is refused until Keras 3's fit supports it",
        choices=("none", "mirrored", "multiworker"),
    )
    resume: Path | None = path_setting(
        "continue the run killed in this .<run-id>.partial folder with its saved config: trained models are "
        "kept and the interrupted training goes on from its last finished epoch (options other than "
        "--tensorboard are ignored, a --fast run resumes fast; --strategy is refused)",
        metavar="RUN_FOLDER",
        default_text="start a new run",
    )


def run_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`keras_clust.experiment.run_experiment` that
    :class:`RunOptions` declared (out excepted; an action without one of them gets its default)."""
    defaults = RunOptions()
    return {
        name: getattr(args, name, getattr(defaults, name)) for name in ("resume", "tensorboard", "strategy", "fast")
    }


# --- where an Optuna search lives and who works on it ------------------------------------

STUDY_GROUP = "study storage and workers (Optuna)"


def storage_setting():
    return setting(
        None,
        "Optuna storage shared by every worker: sqlite:///study.db, postgresql+psycopg://user@host/db (several "
        "machines), journal:FILE (several processes, no server)",
        metavar="URL",
        default_text="study.db in the run folder",
        group=STUDY_GROUP,
    )


def kerastuner_dir_setting(shared: str = ""):
    """``--kerastuner-dir``; ``shared`` names what else a distributed search needs the same everywhere."""
    also = f" and {shared}" if shared else ""
    return path_setting(
        "KerasTuner's folder (trials, checkpoints, oracle); a search across processes or machines "
        f"(KERASTUNER_TUNER_ID=chief|tuner0|..., KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) needs this folder{also} "
        "shared, the same on the chief and every worker",
        metavar="DIR",
        default_text="kerastuner/ in the run folder",
    )


def study_name_setting(default: str, what: str):
    """``--study-name``; ``what`` says what the name names in this experiment."""
    return setting(
        default,
        f"{what}; a study of this name in --storage is joined: its finished trials count towards the total",
        group=STUDY_GROUP,
    )


def workers_setting():
    return setting(
        1,
        "worker processes optimising the study at once on this machine; the same command on other machines with "
        "the same --storage and --study-name adds more",
        type=positive_int,
        group=STUDY_GROUP,
    )


def heartbeat_interval_setting():
    from keras_clust.tuning.storage import HEARTBEAT_INTERVAL

    return setting(
        HEARTBEAT_INTERVAL,
        "seconds between a running trial's heartbeats (RDB storages)",
        type=positive_int,
        metavar="S",
        group=STUDY_GROUP,
    )


def grace_period_setting():
    from keras_clust.tuning.storage import GRACE_PERIOD

    return setting(
        GRACE_PERIOD,
        "a running trial without a heartbeat for this long belonged to a worker that died: it is failed and "
        "retried with the same parameters",
        type=positive_int,
        metavar="S",
        group=STUDY_GROUP,
    )
