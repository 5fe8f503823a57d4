"""Encoders read from disk or given in memory, and batched encoding of any array.

An encoder can be a Keras model, a ``.keras`` file, or an exported SavedModel version
folder (``saved_models/<name>/<version>``, or ``saved_models/<name>`` for its newest
version). Exports of this project keep the Keras model beside the SavedModel
(``model.keras``), which is loaded when present so that the encoder can be fine-tuned;
a bare SavedModel is called through its ``serving_default`` signature and can only
encode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError, UsageError

#: Rows encoded per call by :func:`encode_in_batches`: bounded memory for any number of rows.
ENCODE_BATCH = 4096


@dataclass
class Encoder:
    """An encoder ready to embed arrays.

    Attributes:
        input_shape: Shape of one input row (without the batch axis).
        source: Where it came from (a path, or ``"in memory"``).
        model: The Keras model, or None for a bare SavedModel (encode only).
        call: ``call(batch) -> codes`` on one float32 batch shaped ``(n, *input_shape)``.
    """

    input_shape: tuple[int, ...]
    source: str
    model: object | None
    call: Callable[[np.ndarray], np.ndarray]

    @property
    def trainable(self) -> bool:
        return self.model is not None


def _keras_encoder(model, source: str) -> Encoder:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise DataError(
            f"encoder {source} must have one input and one output, has {len(model.inputs)} and {len(model.outputs)}"
        )
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return Encoder(shape, source, model, lambda batch: np.asarray(model.predict_on_batch(batch)))


def _newest_version(folder: Path) -> Path:
    versions = sorted((int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        raise DataError(
            f"{folder} holds no SavedModel version folder; pass saved_models/<name>/<version>, "
            "a .keras file or a SavedModel folder"
        )
    return versions[-1][1]


def _savedmodel_encoder(folder: Path) -> Encoder:
    import tensorflow as tf

    try:
        fn = tf.saved_model.load(str(folder)).signatures["serving_default"]
    except (KeyError, OSError, ValueError) as exc:
        raise DataError(f"cannot read the serving_default signature of {folder} ({exc})") from None
    (name, spec), *more = fn.structured_input_signature[1].items() or [(None, None)]
    outputs = list(fn.structured_outputs)
    if name is None or more or len(outputs) != 1:
        raise DataError(
            f"the SavedModel {folder} must take one input and give one output, "
            f"takes {len(fn.structured_input_signature[1])} and gives {len(outputs)}"
        )
    shape = tuple(int(d) if d is not None else -1 for d in spec.shape[1:])
    if -1 in shape:
        raise DataError(f"the SavedModel {folder} has an input of unknown size {spec.shape}; export a fixed shape")
    out = outputs[0]
    return Encoder(shape, str(folder), None, lambda batch: fn(**{name: tf.constant(batch)})[out].numpy())


def load_encoder(encoder) -> Encoder:
    """Resolve ``--encoder``: a Keras model, a ``.keras`` file, or a SavedModel folder.

    Raises:
        DataError: one line naming the path when it is not a readable encoder.
    """
    import keras

    if isinstance(encoder, Encoder):
        return encoder
    if isinstance(encoder, keras.Model):
        return _keras_encoder(encoder, "in memory")
    path = Path(encoder)
    if path.is_dir() and not (path / "saved_model.pb").is_file() and not (path / "model.keras").is_file():
        path = _newest_version(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if path.is_file() and path.suffix == ".keras":
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - any reading failure is the user's file
            raise DataError(f"cannot load the Keras model {path} ({type(exc).__name__}: {exc})") from None
        return _keras_encoder(model, str(path))
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _savedmodel_encoder(path)
    raise DataError(
        f"{encoder} is not an encoder; pass a .keras file, a SavedModel folder or saved_models/<name>[/<version>]"
    )


def as_input_rows(x: np.ndarray, input_shape: tuple[int, ...], what: str = "data") -> np.ndarray:
    """View ``x`` (rows of any shape with as many values) as ``(n, *input_shape)``, no copy.

    Raises:
        DataError: one line naming both shapes when a row does not hold as many values.
    """
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.ndim < 2:
        raise DataError(f"{what} must hold rows (at least 2-D), got shape {x.shape}")
    if tuple(x.shape[1:]) == tuple(input_shape):
        return x
    if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
        raise DataError(
            f"{what} has rows of shape {tuple(x.shape[1:])} but the encoder takes "
            f"{tuple(input_shape)}; pass data shaped like the encoder's input, "
            "or another encoder"
        )
    return x.reshape(len(x), *input_shape)


def encode_in_batches(
    encoder: Encoder, x: np.ndarray, batch_size: int = ENCODE_BATCH, scale: float = 1.0
) -> np.ndarray:
    """Codes of every row of ``x`` (an array or a memory map), ``batch_size`` rows at a time,
    so that only one batch is ever converted to float32 (memory bounded in the rows).

    Args:
        encoder: The encoder.
        x: Rows shaped like the encoder's input (or with as many values per row).
        batch_size: Rows per call.
        scale: Each batch is multiplied by it after conversion (e.g. 1/255 for bytes).

    Raises:
        DataError: wrong row shape, or a batch holding NaN/inf.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    rows = as_input_rows(x, encoder.input_shape)
    parts = []
    for start in range(0, len(rows), batch_size):
        batch = np.asarray(rows[start : start + batch_size], dtype=np.float32)
        if scale != 1.0:
            batch = batch * np.float32(scale)
        if not np.all(np.isfinite(batch)):
            raise DataError(f"rows {start}-{start + len(batch) - 1} hold NaN or infinite values; clean them first")
        parts.append(np.asarray(encoder.call(batch), dtype=np.float32).reshape(len(batch), -1))
    if not parts:
        raise DataError("there are no rows to encode")
    return np.concatenate(parts)
