"""A serving signature (named inputs and outputs, dtypes, shapes) and the checks against it.

The same :class:`Signature` is read from a SavedModel folder (:func:`read_signature`), from
TF Serving's REST metadata (:func:`signature_from_metadata`) or from a gRPC ``SignatureDef``
(:func:`signature_from_dict` of its JSON form), so a request is checked the same way
whichever way the signature was learnt. A dimension of ``None`` is free (the batch axis of
every exported model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_clust.errors import DataError
from keras_clust.serving.errors import InvalidInputError, ModelNotFoundError, ServingError

SERVING_SIGNATURE = "serving_default"

#: TensorFlow ``DataType`` names and the NumPy dtypes they travel as.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_HALF": np.dtype(np.float16),
    "DT_INT8": np.dtype(np.int8),
    "DT_INT16": np.dtype(np.int16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_UINT16": np.dtype(np.uint16),
    "DT_UINT32": np.dtype(np.uint32),
    "DT_UINT64": np.dtype(np.uint64),
    "DT_BOOL": np.dtype(np.bool_),
}

Shape = tuple[int | None, ...]


def format_shape(shape: Shape | None) -> str:
    """``(None, 6)`` for a shape with a free first axis, ``(unknown rank)`` for None."""
    if shape is None:
        return "(unknown rank)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class TensorInfo:
    """One named input or output: its TensorFlow dtype name and shape (``None`` dims are free;
    ``shape`` itself is None when even the rank is unknown)."""

    dtype: str
    shape: Shape | None

    @property
    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype of this tensor.

        Raises:
            InvalidInputError: for a dtype this client does not carry (strings, bfloat16, ...).
        """
        if self.dtype not in NUMPY_DTYPES:
            raise InvalidInputError(
                f"tensors of type {self.dtype} are not supported by this client (supported: {', '.join(NUMPY_DTYPES)})"
            )
        return NUMPY_DTYPES[self.dtype]

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether an array of ``shape`` fits: same rank, equal wherever the dim is fixed."""
        if self.shape is None:
            return True
        if len(shape) != len(self.shape):
            return False
        return all(d is None or d == s for d, s in zip(self.shape, shape, strict=True))


@dataclass(frozen=True)
class Signature:
    """A signature's named inputs and outputs (sorted by name, as TensorFlow flattens them)."""

    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    name: str = SERVING_SIGNATURE

    def __str__(self) -> str:
        def side(d):
            return ", ".join(f"{k} {format_shape(t.shape)} {t.dtype}" for k, t in d.items())

        return f"{self.name}: {side(self.inputs)} -> {side(self.outputs)}"

    def check_inputs(self, x) -> dict[str, np.ndarray]:
        """The arrays to send: ``x`` matched to the input names, cast to their dtypes, shapes checked.

        Args:
            x: One array for a single-input signature, or ``{input name: array}``.

        Returns:
            ``{input name: array}`` in the signature's order.

        Raises:
            InvalidInputError: one line naming the input when a name is missing or unknown, a
                value cannot be cast without changing its kind (float to int), or a shape does
                not fit (fixed dimensions must be equal, the batch dimension is free).
        """
        names = list(self.inputs)
        if isinstance(x, Mapping):
            given = dict(x)
            if set(given) != set(names):
                raise InvalidInputError(f"signature {self.name} takes inputs {names}, got {sorted(given)}")
        elif len(names) == 1:
            given = {names[0]: x}
        else:
            raise InvalidInputError(
                f"signature {self.name} takes {len(names)} inputs {names}; pass a dict {{name: array}}"
            )
        out = {}
        for name in names:
            info = self.inputs[name]
            arr = np.asarray(given[name])
            want = info.numpy_dtype
            if arr.dtype != want:
                if not np.can_cast(arr.dtype, want, casting="same_kind"):
                    raise InvalidInputError(
                        f"input {name!r} is {arr.dtype} but the signature takes {info.dtype} ({want}); cast it first"
                    )
                arr = arr.astype(want)
            if not info.fits(arr.shape):
                raise InvalidInputError(
                    f"input {name!r} has shape {arr.shape} but signature {self.name} takes {format_shape(info.shape)}"
                )
            out[name] = arr
        return out

    def check_outputs(self, outputs: Mapping[str, object], source: str) -> dict[str, np.ndarray]:
        """The server's outputs as arrays of the signature's dtypes, names and shapes checked.

        Raises:
            ServingError: when ``source`` answered other names, or a shape the signature does not allow.
        """
        if set(outputs) != set(self.outputs):
            raise ServingError(f"{source} answered outputs {sorted(outputs)}, the signature has {list(self.outputs)}")
        result = {}
        for name, info in self.outputs.items():
            try:
                arr = np.asarray(outputs[name], dtype=info.numpy_dtype)
            except (TypeError, ValueError) as exc:  # ragged lists, strings for numbers
                raise ServingError(
                    f"{source} answered output {name!r} that is not a {info.dtype} array ({exc})"
                ) from None
            if not info.fits(arr.shape):
                raise ServingError(
                    f"{source} answered output {name!r} of shape {arr.shape}, "
                    f"the signature says {format_shape(info.shape)}"
                )
            result[name] = arr
        return result


def _tensor_info(d: Mapping) -> TensorInfo:
    shape_d = d.get("tensor_shape", d.get("tensorShape"))
    if shape_d is None or shape_d.get("unknown_rank", shape_d.get("unknownRank", False)):
        shape = None
    else:
        sizes = (int(dim.get("size", 0)) for dim in shape_d.get("dim", []))
        shape = tuple(None if s < 0 else s for s in sizes)
    return TensorInfo(str(d.get("dtype", "DT_INVALID")), shape)


def signature_from_dict(d: Mapping, name: str = SERVING_SIGNATURE) -> Signature:
    """A :class:`Signature` from the JSON form of a TensorFlow ``SignatureDef`` (as TF Serving's
    metadata and ``google.protobuf.json_format.MessageToDict`` write it; int64 sizes may be strings).

    Raises:
        ServingError: when ``d`` is not a SignatureDef.
    """
    try:
        inputs = {k: _tensor_info(v) for k, v in sorted(d.get("inputs", {}).items())}
        outputs = {k: _tensor_info(v) for k, v in sorted(d.get("outputs", {}).items())}
    except (AttributeError, TypeError, ValueError) as exc:
        raise ServingError(f"signature {name} is not a SignatureDef ({exc})") from None
    if not inputs or not outputs:
        raise ServingError(f"signature {name} has no {'inputs' if not inputs else 'outputs'}")
    return Signature(inputs, outputs, name)


def signature_from_metadata(metadata: Mapping, name: str = SERVING_SIGNATURE) -> Signature:
    """Signature ``name`` from TF Serving's REST answer to ``GET /v1/models/<model>/metadata``.

    Raises:
        ModelNotFoundError: when the model has no signature of that name.
        ServingError: when the answer is not model metadata.
    """
    try:
        defs = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError):
        raise ServingError("the metadata answer holds no metadata.signature_def.signature_def") from None
    if name not in defs:
        raise ModelNotFoundError(f"the model has no signature {name!r}; it has {sorted(defs)}")
    return signature_from_dict(defs[name], name)


def read_signature(path: str | Path, name: str = SERVING_SIGNATURE, tag: str = "serve") -> Signature:
    """Signature ``name`` of the SavedModel in ``path``, read from ``saved_model.pb`` (as TF Serving
    reads it, without loading the graph).

    Raises:
        DataError: when ``path`` holds no SavedModel, or no such tag or signature.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        raise DataError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString(pb.read_bytes())
    except DecodeError as exc:
        raise DataError(f"{pb} is not a SavedModel ({exc})") from None
    graphs = [g for g in model.meta_graphs if tag in g.meta_info_def.tags]
    if not graphs:
        raise DataError(f"{path} has no meta graph tagged {tag!r}")
    defs = graphs[0].signature_def
    if name not in defs:
        raise DataError(f"{path} has no signature {name!r}; it has {sorted(k for k in defs if not k.startswith('_'))}")
    return signature_from_dict(json_format.MessageToDict(defs[name], preserving_proto_field_name=True), name)
