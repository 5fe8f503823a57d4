"""Run folders: where a run writes its config, metrics, history, report and models.

A run is built in ``<out>/<experiment>/.<run-id>.partial`` and renamed to
``<out>/<experiment>/<run-id>`` only when everything is written, so a folder without
the ``.partial`` suffix is always complete. A run that fails removes its partial folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from keras_clust.errors import DataError, UsageError
from keras_clust.files import atomic_write_text, rows_to_csv, write_json
from keras_clust.provenance import library_versions, machine_info

log = logging.getLogger(__name__)


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

    #: Keep a resumable folder after any error, not only Ctrl-C (a simulation's checkpoint is
    #: worth keeping whatever stopped it; a training's backups only when the user interrupted).
    keep_resumable_on_error: bool = False

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
        elif self.resumable and (issubclass(exc_type, KeyboardInterrupt) or self.keep_resumable_on_error):
            log.warning(
                "%s; continue with --resume %s",
                "interrupted" if exc_type is KeyboardInterrupt else "stopped",
                self.work,
            )
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
