"""SavedModel export for TF Serving: named signatures, atomic versions, models.config.

``saved_models/<name>/<version>/`` holds a SavedModel whose ``serving_default``
signature takes and returns meaningful keys (``images -> embedding``), float32 with a
free batch dimension, plus ``model.keras`` for Keras users. A version is written in a
hidden temporary folder and renamed into place, so TF Serving, which polls for new
integer folders, never loads a half-written one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.files import atomic_write_text
from keras_clust.run_folder import check_writable

log = logging.getLogger(__name__)

SIGNATURE = "serving_default"


@dataclass(frozen=True)
class ExportedModel:
    """Where a model was exported and under which keys it serves."""

    name: str
    version: int
    path: Path
    input_name: str
    output_names: tuple[str, ...]


def _versions(model_root: Path) -> list[int]:
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise UsageError(f"model name {name!r} may use only letters, digits, '_' and '-'")


def export_savedmodel(
    model,
    name: str,
    models_dir: str | Path = "saved_models",
    input_name: str = "images",
    output_names: str | Sequence[str] = "embedding",
    save_keras: bool = True,
    update_config: bool = True,
) -> ExportedModel:
    """Export a single-input Keras model as the next version of ``models_dir/name``.

    Args:
        model: A built Keras model with one input (one or more outputs).
        name: Model name (the TF Serving model name and folder).
        models_dir: Root folder of all exported models.
        input_name: Key of the signature's input.
        output_names: Key(s) of the signature's outputs, one per model output.
        save_keras: Also store ``model.keras`` inside the version folder.
        update_config: Regenerate ``models_dir/models.config`` afterwards.

    Returns:
        The :class:`ExportedModel` record.
    """
    import keras
    import tensorflow as tf

    _check_name(name)
    outputs = (output_names,) if isinstance(output_names, str) else tuple(output_names)
    if len(model.outputs) != len(outputs):
        raise UsageError(f"{model.name} has {len(model.outputs)} outputs but {len(outputs)} names")
    root = check_writable(Path(models_dir) / name)
    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=input_name)

    def serve(x):
        y = model(x, training=False)
        y = y if isinstance(y, (list, tuple)) else [y]
        return {key: tf.cast(v, tf.float32) for key, v in zip(outputs, y, strict=True)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE, fn=tf.function(serve, autograph=False), input_signature=[spec])
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        archive.write_out(str(tmp), verbose=False)
        if save_keras:
            model.save(tmp / "model.keras")
        version = (max(_versions(root), default=0)) + 1
        while True:
            try:
                os.rename(tmp, root / str(version))
                break
            except OSError:  # another exporter took this version number
                if not (root / str(version)).exists():
                    raise
                version += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    path = root / str(version)
    log.info("exported %s version %d to %s", name, version, path)
    if update_config:
        write_models_config(models_dir)
    return ExportedModel(name, version, path, input_name, outputs)


def load_signature(path: str | Path):
    """Load the ``serving_default`` function of a SavedModel (as TF Serving would)."""
    import tensorflow as tf

    if not (Path(path) / "saved_model.pb").is_file():
        raise DataError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    return tf.saved_model.load(str(path)).signatures[SIGNATURE]


def verify_export(exported: ExportedModel, model, sample: np.ndarray, atol: float = 1e-5) -> float:
    """Reload the SavedModel and check it gives the Keras model's outputs on ``sample``.

    Returns:
        The largest absolute difference over all outputs.

    Raises:
        DataError: when the difference exceeds ``atol`` or the keys are not the expected ones.
    """
    fn = load_signature(exported.path)
    got = fn(**{exported.input_name: np.asarray(sample, np.float32)})
    if set(got) != set(exported.output_names):
        raise DataError(f"{exported.path} serves {sorted(got)}, expected {exported.output_names}")
    want = model.predict(np.asarray(sample, np.float32), verbose=0)
    want = want if isinstance(want, (list, tuple)) else [want]
    diff = max(
        float(np.max(np.abs(np.asarray(got[k]) - np.asarray(w))))
        for k, w in zip(exported.output_names, want, strict=True)
    )
    if not diff <= atol:
        raise DataError(f"{exported.path} differs from the Keras model by {diff:g} (> {atol:g})")
    return diff


def export_verified(
    model, name: str, models_dir: str | Path, input_name: str, output_names: str | Sequence[str], sample: np.ndarray
) -> dict:
    """Export ``model`` (:func:`export_savedmodel`), check it against Keras on ``sample``
    (:func:`verify_export`) and return the row a run reports for it."""
    exported = export_savedmodel(model, name, models_dir, input_name=input_name, output_names=output_names)
    diff = verify_export(exported, model, sample)
    return {
        "model": exported.name,
        "version": exported.version,
        "path": str(exported.path),
        "signature": f"{input_name} -> {', '.join(exported.output_names)}",
        "max_abs_diff": diff,
    }


def write_models_config(models_dir: str | Path = "saved_models", base_path: str = "/models") -> Path:
    """Regenerate ``models.config`` (TF Serving ``ModelServerConfig`` text) for every model.

    Args:
        models_dir: Root folder of the exported models.
        base_path: Where ``models_dir`` is mounted inside the serving container.

    Returns:
        Path of the config file.
    """
    models_dir = Path(models_dir)
    names = sorted(
        p.name
        for p in models_dir.iterdir()
        if p.is_dir() and any((p / str(v) / "saved_model.pb").is_file() for v in _versions(p))
    )
    blocks = "".join(
        "  config {\n"
        f'    name: "{n}"\n'
        f'    base_path: "{base_path.rstrip("/")}/{n}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for n in names
    )
    return atomic_write_text(models_dir / "models.config", "model_config_list {\n" + blocks + "}\n")


def saved_model_cli_show(path: str | Path) -> str:
    """Output of TensorFlow's own ``saved_model_cli show --all`` for ``path``.

    Printed by the tool's own function in this process where TensorFlow has it (a new
    interpreter would pay TensorFlow's start-up, 5-8 s, per model); by the tool otherwise."""
    try:  # not public API: the function behind "show --all"
        from tensorflow.python.tools.saved_model_cli import _show_all
    except ImportError:
        _show_all = None
    if _show_all is not None:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                _show_all(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise DataError(f"saved_model_cli cannot read {path}: {str(exc)[-300:]}") from None
        return out.getvalue()
    exe = Path(sys.executable).with_name("saved_model_cli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    res = subprocess.run([*cmd, "show", "--all", "--dir", str(path)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise DataError(f"saved_model_cli cannot read {path}: {res.stderr.strip()[-300:]}")
    return res.stdout
