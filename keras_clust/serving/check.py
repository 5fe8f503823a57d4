"""Check an exported version the way TF Serving runs it: TensorFlow's own ``saved_model_cli run``
on sample inputs shaped from the signature, compared with ``model.keras`` on the same inputs.

``saved_model_cli`` runs the SavedModel's graph in a separate process through the TF1 session
path (not ``tf.saved_model.load``), so a signature with wrong keys, a missing variable or a
traced function that differs from the Keras model shows up here before a server loads it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError, UsageError
from keras_clust.serving.signature import SERVING_SIGNATURE, Signature, format_shape, read_signature

log = logging.getLogger(__name__)

#: Seconds ``saved_model_cli run`` may take (it imports TensorFlow, then runs one batch).
CLI_TIMEOUT = 600.0


@dataclass(frozen=True)
class OutputCheck:
    """One output: served (``saved_model_cli``) against Keras.

    Attributes:
        name: The signature's output name.
        shape: Shape of the served output.
        keras_index: Which of ``model.keras``'s outputs it was compared with.
        max_abs_diff: Largest absolute difference (inf when the shapes differ).
        ok: ``max_abs_diff <= atol``.
    """

    name: str
    shape: tuple[int, ...]
    keras_index: int
    max_abs_diff: float
    ok: bool

    def line(self, atol: float) -> str:
        verdict = "ok" if self.ok else "FAIL"
        rel = "<=" if self.ok else ">"
        return (
            f"{verdict:4} {self.name} {self.shape}: max abs diff {self.max_abs_diff:.3g} {rel} {atol:g} "
            f"(saved_model_cli vs model.keras output {self.keras_index})"
        )


@dataclass(frozen=True)
class CheckResult:
    """Every output of one version, checked on the same sample inputs."""

    path: Path
    signature: Signature
    outputs: tuple[OutputCheck, ...]
    atol: float

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)


def resolve_version(path: str | Path) -> Path:
    """``saved_models/<name>/<version>`` as is; ``saved_models/<name>`` as its newest version.

    Raises:
        DataError: one line when ``path`` is neither.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass saved_models/<name> or saved_models/<name>/<version>")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; pass saved_models/<name> or saved_models/<name>/<version>")
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.iterdir() if p.is_dir() and p.name.isdigit())
    versions = [(v, p) for v, p in versions if (p / "saved_model.pb").is_file()]
    if not versions:
        raise DataError(f"{path} holds no SavedModel (no saved_model.pb in it or in a numbered version folder)")
    return versions[-1][1]


def sample_inputs(signature: Signature, batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs shaped from the signature: ``batch`` rows, uniform [0, 1) for floats,
    integers 0-9, random booleans.

    Raises:
        UsageError: when an input has a free dimension besides the batch axis (its size is unknown).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, info in signature.inputs.items():
        if info.shape is None or not info.shape or any(d is None for d in info.shape[1:]):
            raise UsageError(
                f"input {name!r} has shape {format_shape(info.shape)}; sample inputs need every "
                "dimension but the first fixed"
            )
        shape = (batch, *info.shape[1:]) if info.shape[0] is None else info.shape
        dtype = info.numpy_dtype
        if np.issubdtype(dtype, np.floating):
            out[name] = rng.random(shape).astype(dtype)
        elif dtype == np.bool_:
            out[name] = rng.random(shape) < 0.5
        else:
            out[name] = rng.integers(0, 10, size=shape).astype(dtype)
    return out


def saved_model_cli_command() -> list[str]:
    """TensorFlow's ``saved_model_cli``: the script next to this Python, or its module."""
    exe = Path(sys.executable).with_name("saved_model_cli")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def run_saved_model_cli(
    path: str | Path,
    inputs: dict[str, np.ndarray],
    signature_name: str = SERVING_SIGNATURE,
    timeout: float = CLI_TIMEOUT,
) -> dict[str, np.ndarray]:
    """``saved_model_cli run`` of signature ``signature_name`` of ``path`` on ``inputs``.

    Returns:
        ``{output name: array}`` as ``saved_model_cli`` wrote them (``--outdir``).

    Raises:
        DataError: when ``saved_model_cli`` fails or times out (its last error line).
    """
    with tempfile.TemporaryDirectory(prefix="keras-clust-serve-") as tmp:
        files = []
        for i, (name, arr) in enumerate(inputs.items()):
            file = Path(tmp) / f"input{i}.npy"
            np.save(file, arr)
            files.append(f"{name}={file}")
        outdir = Path(tmp) / "out"
        cmd = [
            *saved_model_cli_command(),
            "run",
            "--dir",
            str(path),
            "--tag_set",
            "serve",
            "--signature_def",
            signature_name,
            "--inputs",
            ";".join(files),
            "--outdir",
            str(outdir),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL, check=False
            )
        except subprocess.TimeoutExpired:
            raise DataError(f"saved_model_cli run on {path} took more than {timeout:g} s") from None
        if res.returncode != 0:
            lines = [x for x in res.stderr.strip().splitlines() if x.strip()] or ["(no error output)"]
            raise DataError(f"saved_model_cli run failed on {path}: {lines[-1].strip()[-300:]}")
        return {p.stem: np.load(p) for p in sorted(outdir.glob("*.npy"))}


def load_keras_model(folder: Path):
    """``folder/model.keras`` with the project's custom layers registered.

    Raises:
        DataError: when it is missing or cannot be read.
    """
    import keras

    import keras_clust.fields.loss  # noqa: F401
    import keras_clust.layers  # noqa: F401 - registers the custom layers model.keras may use
    import keras_clust.models  # noqa: F401

    file = folder / "model.keras"
    if not file.is_file():
        raise DataError(f"{folder} has no model.keras to compare the SavedModel with")
    try:
        return keras.models.load_model(file, compile=False)
    except Exception as exc:  # noqa: BLE001 - any reading failure is the file's
        raise DataError(f"cannot load {file} ({type(exc).__name__}: {exc})") from None


def match_outputs(
    served: dict[str, np.ndarray],
    keras_names: list[str],
    keras_values: list[np.ndarray],
    order: tuple[str, ...] | None = None,
) -> dict[str, int]:
    """Which Keras output each served output is: ``{served name: Keras output index}``.

    A signature keeps its outputs by name only, so the match is, in turn: ``order`` (the served
    names in the Keras model's output order) when given; the Keras output layer of the same
    name; the one output left; the one output of the same shape. Anything else is ambiguous.

    Raises:
        DataError: when the counts differ or a match is ambiguous (pass ``order``).
    """
    names = list(served)
    if len(names) != len(keras_values):
        raise DataError(f"the SavedModel serves {len(names)} outputs {names}, model.keras has {len(keras_values)}")
    if order is not None:
        if sorted(order) != sorted(names):
            raise UsageError(f"--outputs {','.join(order)} must name each served output {names} once")
        return {n: i for i, n in enumerate(order)}
    match = {n: keras_names.index(n) for n in names if keras_names.count(n) == 1}
    while len(match) < len(names):
        left = [n for n in names if n not in match]
        free = [i for i in range(len(keras_values)) if i not in match.values()]
        if len(left) == 1:
            match[left[0]] = free[0]
            continue
        found = False
        for n in left:
            same = [i for i in free if keras_values[i].shape == served[n].shape]
            rivals = [m for m in left if served[m].shape == served[n].shape]
            if len(same) == 1 and len(rivals) == 1:
                match[n], found = same[0], True
        if not found:
            labels = [keras_names[i] if i < len(keras_names) else f"#{i}" for i in free]
            raise DataError(
                f"cannot tell which of model.keras's outputs {labels} are the "
                f"served {left}; pass --outputs with the served names in the Keras output order"
            )
    return match


def check_export(
    path: str | Path,
    batch: int = 4,
    seed: int = 0,
    atol: float = 1e-5,
    order: tuple[str, ...] | None = None,
    signature_name: str = SERVING_SIGNATURE,
) -> CheckResult:
    """Run ``saved_model_cli run`` and ``model.keras`` on the same seeded inputs and compare every output.

    Args:
        path: ``saved_models/<name>/<version>``, or ``saved_models/<name>`` for the newest version.
        batch: Rows of sample input.
        seed: Seed of the sample input.
        atol: Largest absolute difference accepted.
        order: The served output names in the Keras model's output order (see :func:`match_outputs`).
        signature_name: The signature to run.

    Returns:
        The :class:`CheckResult`; ``result.ok`` says whether every output is within ``atol``.
    """
    folder = resolve_version(path)
    if not (folder / "model.keras").is_file():
        raise DataError(f"{folder} has no model.keras to compare the SavedModel with")
    signature = read_signature(folder, signature_name)
    inputs = sample_inputs(signature, batch, seed)
    log.info("%s: %s; saved_model_cli run on %d seeded rows", folder, signature, batch)
    served = run_saved_model_cli(folder, inputs, signature_name)
    if set(served) != set(signature.outputs):
        raise DataError(f"saved_model_cli wrote outputs {sorted(served)}, the signature has {list(signature.outputs)}")
    served = {n: served[n] for n in signature.outputs}
    model = load_keras_model(folder)
    x = next(iter(inputs.values())) if len(inputs) == 1 else inputs
    got = model.predict(x, verbose=0)
    if isinstance(got, dict):
        keras_names, keras_values = list(got), [np.asarray(v) for v in got.values()]
    else:
        keras_values = [np.asarray(v) for v in (got if isinstance(got, (list, tuple)) else [got])]
        keras_names = list(getattr(model, "output_names", None) or [])
    match = match_outputs(served, keras_names, keras_values, order)
    checks = []
    for name, value in served.items():
        want = keras_values[match[name]]
        diff = float(np.max(np.abs(value - want), initial=0.0)) if value.shape == want.shape else float("inf")
        checks.append(OutputCheck(name, tuple(value.shape), match[name], diff, bool(diff <= atol)))
    return CheckResult(folder, signature, tuple(checks), atol)
