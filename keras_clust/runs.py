"""Run folders, seeding, and the writing of configs, metrics, histories and reports.

A run is built in ``<out>/<experiment>/.<run-id>.partial`` and renamed to
``<out>/<experiment>/<run-id>`` only when everything is written, so a folder without
the ``.partial`` suffix is always complete. A run that fails removes its partial folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError, UsageError

log = logging.getLogger(__name__)


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and Keras/TensorFlow in one call; every CLI entry calls it.

    Args:
        seed: The run's seed.
        deterministic: Also ask TensorFlow for deterministic kernels, so the same seed
            gives the same numbers on the same machine (Keras then compiles without XLA).
            False leaves TensorFlow's setting as it is: once on, it stays on in the process.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def op_determinism() -> bool:
    """Whether TensorFlow's op determinism (:func:`set_seed`) is on in this process."""
    from tensorflow.python.framework import config as tf_config  # no public getter in TF 2.21

    return bool(tf_config.is_op_determinism_enabled())


def model_seed(seed: int, key: str) -> int:
    """The seed of one model of a run, derived from the run's seed and the model's name.

    Keras draws the seeds of unseeded initialisers from Python's global RNG, so without
    re-seeding, a model's initial weights depend on how many models were built before
    it. Deriving a seed per model name makes every model independent of the others and
    of their order.
    """
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_model(seed: int, key: str) -> int:
    """Re-seed Python, NumPy and Keras with :func:`model_seed` right before building and
    training the model named ``key``; returns the seed used (store it with the model)."""
    import keras

    derived = model_seed(seed, key)
    keras.utils.set_random_seed(derived)
    return derived


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in (
        "keras-clust",
        "tensorflow",
        "keras",
        "numpy",
        "scikit-learn",
        "scipy",
        "optuna",
        "keras-tuner",
        "opencv-python-headless",
        "matplotlib",
    ):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def machine_info() -> dict[str, str | int]:
    """Short description of the machine, stored with every run and benchmark."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count() or 0,
    }


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` through a synced temporary file in the same
    folder and a rename, so ``path`` is either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON (NumPy values converted), atomically."""
    return atomic_write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def rows_to_csv(rows: Sequence[Mapping]) -> str:
    """CSV text of a list of dicts; the columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _jsonable(v) for k, v in row.items()})
    return buf.getvalue()


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, floatfmt: str = ".4f") -> str:
    """Markdown table of a list of dicts."""
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt) if math.isfinite(v) else str(v)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def format_params(params: Mapping) -> str:
    """Hyper-parameters on one line: ``k=15, eps=0.376`` (floats to 3 significant digits)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def markdown_figure(name: str, caption: str) -> str:
    """A report's figure ``figures/<name>`` with its caption in italics below."""
    return f"![{caption}](figures/{name})\n\n*{caption}*\n"


def check_writable(folder: str | Path) -> Path:
    """Make sure ``folder`` exists (creating it) and files can be written in it.

    Raises:
        UsageError: naming the folder when it cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write to {folder} ({exc.strerror or exc}); choose another folder with --out"
        ) from None
    return folder


class RunFolder:
    """A run's output folder, built under a ``.partial`` name and renamed when complete.

    Use as a context manager: leaving the block normally commits the folder, an
    exception removes it. A run killed (SIGKILL, power loss), or stopped with Ctrl-C once it
    has training backups, leaves its ``.partial`` folder, which :meth:`reopen` continues.

    Args:
        out: Root of all runs (``runs/``).
        experiment: Experiment name (a sub-folder of ``out``).
        seed: The run's seed, part of the run id.
        run_id: Explicit run id; default ``YYYYmmdd-HHMMSS-s<seed>``.
    """

    #: Sub-folder of the training backups (:func:`keras_clust.training.fit_backups`); removed at commit.
    BACKUP = "backup"

    def __init__(self, out: str | Path, experiment: str, seed: int, run_id: str | None = None):
        root = check_writable(Path(out) / experiment)
        base = run_id or time.strftime("%Y%m%d-%H%M%S") + f"-s{seed}"
        name, n = base, 1
        while (root / name).exists() or (root / f".{name}.partial").exists():
            n += 1
            name = f"{base}-{n}"
        self.run_id = name
        self.root = root
        self.path = root / name
        self.keep: list[str] = []
        self.work = root / f".{name}.partial"
        self.work.mkdir()
        (self.work / "figures").mkdir()
        self.committed = False

    @classmethod
    def reopen(cls, path: str | Path, experiment: str) -> RunFolder:
        """The interrupted run at ``path`` (a ``<out>/<experiment>/.<run-id>.partial`` folder
        that a killed run left behind), to be continued."""
        path = Path(path)
        name = path.name
        if not path.exists() and not name.startswith(".") and (path.parent / f".{name}.partial").is_dir():
            path, name = path.parent / f".{name}.partial", f".{name}.partial"  # the run id given
        if not (path.is_dir() and name.startswith(".") and name.endswith(".partial")):
            done = "a finished run folder" if (path / "metrics.json").is_file() else "not an interrupted run folder"
            raise UsageError(
                f"--resume {path}: {done}; pass the .<run-id>.partial folder (or its run id) that an "
                f"interrupted '{experiment}' run left under <out>/{experiment}/"
            )
        if path.parent.name != experiment or not (path / "config.json").is_file():
            raise UsageError(
                f"--resume {path}: not an interrupted '{experiment}' run (no config.json of it); "
                f"pass a folder under <out>/{experiment}/"
            )
        self = cls.__new__(cls)
        self.root, self.run_id = path.parent, name[1 : -len(".partial")]
        self.path, self.work, self.keep, self.committed = self.root / self.run_id, path, [], False
        if self.path.exists():
            raise UsageError(f"--resume {path}: {self.path} exists already; move one of them away")
        (self.work / "figures").mkdir(exist_ok=True)
        return self

    @property
    def resumable(self) -> bool:
        """Whether an interrupted run here can be continued (it has training backups)."""
        return (self.work / self.BACKUP).is_dir()

    @property
    def figures(self) -> Path:
        return self.work / "figures"

    def file(self, relative: str) -> Path:
        """Path of a file inside the (partial) run folder, with its parent created."""
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_config(self, config: Mapping) -> None:
        write_json(
            self.work / "config.json",
            {
                **config,
                "run_id": self.run_id,
                "versions": library_versions(),
                "machine": machine_info(),
            },
        )

    def write_metrics(self, metrics: Mapping) -> None:
        write_json(self.work / "metrics.json", metrics)

    def write_history(self, rows: Iterable[Mapping]) -> None:
        atomic_write_text(self.work / "history.csv", rows_to_csv(list(rows)))

    def write_report(self, markdown: str) -> None:
        atomic_write_text(self.work / "report.md", markdown)

    def commit(self) -> Path:
        """Rename the partial folder to its final name; returns the final path."""
        missing = [
            n for n in ("config.json", "metrics.json", "history.csv", "report.md") if not (self.work / n).is_file()
        ]
        if missing:
            raise RuntimeError(f"run folder incomplete, missing {missing}")
        shutil.rmtree(self.work / self.BACKUP, ignore_errors=True)
        os.rename(self.work, self.path)
        self.committed = True
        log.info("run folder: %s", self.path)
        return self.path

    def keep_on_abort(self, relative: str) -> Path:
        """Mark a file that survives an aborted run: it is moved to
        ``<root>/<run-id>-<name>`` (e.g. an Optuna study whose finished trials can be resumed).
        Returns the path it would be moved to."""
        self.keep.append(relative)
        return self.root / f"{self.run_id}-{Path(relative).name}"

    def abort(self) -> None:
        for relative in self.keep:
            src = self.work / relative
            if src.is_file():
                dest = self.root / f"{self.run_id}-{src.name}"
                os.replace(src, dest)
                log.warning("kept %s from the unfinished run", dest)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        elif issubclass(exc_type, KeyboardInterrupt) and self.resumable:
            log.warning("interrupted; continue with --resume %s", self.work)
        else:
            self.abort()
        return False


def load_run_models(path: str | Path, files: Iterable[str]) -> dict:
    """Load ``models/<file>`` of a run folder for each file name; ``{file: keras.Model}``.

    Raises:
        DataError: when a file is missing (the folder is not a complete run).
    """
    import keras

    models = {}
    for file in files:
        p = Path(path) / "models" / file
        if not p.is_file():
            raise DataError(f"{p} is missing; the run folder is incomplete (run the experiment again)")
        models[file] = keras.models.load_model(p)
    return models


def find_run(out: str | Path, experiment: str, run: str | Path | None) -> Path:
    """Resolve ``--run``: a path, a run id under ``out/experiment``, or None for the newest.

    Raises:
        DataError: when no complete run matches.
    """
    root = Path(out) / experiment
    if run is not None:
        for candidate in (Path(run), root / str(run)):
            if (candidate / "config.json").is_file() and (candidate / "metrics.json").is_file():
                return candidate
        raise DataError(f"no complete run at {run}; pass a run folder written by '{experiment} run'")
    runs = sorted(
        p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".") and (p / "metrics.json").is_file()
    )
    if not runs:
        raise DataError(f"no complete run under {root}; run 'keras-clust {experiment} run' first")
    return max(runs, key=lambda p: p.stat().st_mtime)
