"""A client of TF Serving's gRPC API: ``PredictionService.Predict`` and ``GetModelMetadata``.

Arrays travel as ``TensorProto`` (``tf.make_tensor_proto`` / ``tf.make_ndarray``), checked
against the signature before the request and after the reply as the REST client does.
gRPC status codes become one-line errors: NOT_FOUND :class:`ModelNotFoundError`,
INVALID_ARGUMENT :class:`InvalidInputError`, UNAVAILABLE and DEADLINE_EXCEEDED
:class:`ServerUnavailableError`. Needs ``tensorflow-serving-api`` (and imports TensorFlow).
"""

from __future__ import annotations

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.serving.errors import (
    InvalidInputError,
    ModelNotFoundError,
    ServerUnavailableError,
    ServingError,
    one_line,
)
from keras_clust.serving.rest_client import check_model_name
from keras_clust.serving.signature import SERVING_SIGNATURE, Signature, signature_from_dict

#: gRPC message size limit of the channel, both ways (-1: none; TF Serving keeps its own).
MAX_MESSAGE_BYTES = -1


def build_predict_request(model: str, signature: Signature, x, version: int | None = None):
    """A ``PredictRequest`` for ``x`` (checked by :meth:`Signature.check_inputs`).

    Args:
        model: The served model's name.
        signature: The signature to call (its name goes in ``model_spec.signature_name``).
        x: One array for a single-input signature, or ``{input name: array}``.
        version: A version number, or None for the server's choice.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = check_model_name(model)
    request.model_spec.signature_name = signature.name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, arr in signature.check_inputs(x).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(arr))
    return request


def parse_predict_response(signature: Signature, response, source: str = "the server") -> dict[str, np.ndarray]:
    """``{output name: array}`` from a ``PredictResponse``, checked against ``signature``."""
    import tensorflow as tf

    try:
        outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    except (TypeError, ValueError) as exc:
        raise ServingError(f"{source} answered a tensor that cannot be read ({one_line(exc)})") from None
    return signature.check_outputs(outputs, source)


def signature_from_metadata_response(response, name: str = SERVING_SIGNATURE) -> Signature:
    """Signature ``name`` from a ``GetModelMetadataResponse`` (its ``signature_def`` field)."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    if "signature_def" not in response.metadata:
        raise ServingError("the metadata answer holds no signature_def")
    defs = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(defs):
        raise ServingError("the metadata answer's signature_def is not a SignatureDefMap")
    if name not in defs.signature_def:
        raise ModelNotFoundError(f"the model has no signature {name!r}; it has {sorted(defs.signature_def)}")
    return signature_from_dict(
        json_format.MessageToDict(defs.signature_def[name], preserving_proto_field_name=True), name
    )


class GrpcClient:
    """Calls one model served by TF Serving over gRPC (an insecure channel).

    Args:
        target: ``host:port`` of the gRPC port, e.g. ``localhost:8500``.
        model: The served model's name.
        version: A version number, or None for the newest.
        signature_name: The signature to call.
        timeout: Seconds each call may take (its gRPC deadline).
        signature: The signature, when known; otherwise read with ``GetModelMetadata`` on first use.

    Example::

        with GrpcClient("localhost:8500", "mnist_l1_encoder_z16") as client:
            codes = client.predict(np.zeros((2, 784), np.float32))["embedding"]
    """

    def __init__(
        self,
        target: str,
        model: str,
        version: int | None = None,
        signature_name: str = SERVING_SIGNATURE,
        timeout: float = 10.0,
        signature: Signature | None = None,
    ) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if not target or "://" in target or ":" not in target:
            raise UsageError(f"the gRPC target must look like host:port, got {target!r}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise UsageError(f"version must be a positive integer, got {version!r}")
        if not timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.target = target
        self.model = check_model_name(model)
        self.version = version
        self.signature_name = signature_name
        self.timeout = float(timeout)
        self._signature = signature
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _what(self) -> str:
        return f"model {self.model!r}" + ("" if self.version is None else f" version {self.version}")

    def _rpc(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), one_line(exc.details() or "")
            if code == grpc.StatusCode.NOT_FOUND:
                raise ModelNotFoundError(f"{self._what()} not found at {self.target} (NOT_FOUND): {details}") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidInputError(
                    f"{self.target} rejected the request to {self._what()} (INVALID_ARGUMENT): {details}"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServerUnavailableError(f"no answer from {self.target} within {self.timeout:g} s") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServerUnavailableError(f"cannot reach {self.target} (UNAVAILABLE): {details}") from None
            raise ServingError(f"{self.target} failed the call to {self._what()} ({code.name}): {details}") from None

    def metadata(self):
        """The ``GetModelMetadataResponse`` holding the model's signatures."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model
        if self.version is not None:
            request.model_spec.version.value = self.version
        request.metadata_field.append("signature_def")
        return self._rpc(self._stub.GetModelMetadata, request)

    def signature(self) -> Signature:
        """The signature called by :meth:`predict` (read from the metadata once, then kept)."""
        if self._signature is None:
            self._signature = signature_from_metadata_response(self.metadata(), self.signature_name)
        return self._signature

    def predict(self, x) -> dict[str, np.ndarray]:
        """Run the model on ``x`` (one array, or ``{input name: array}``); ``{output name: array}``."""
        signature = self.signature()
        request = build_predict_request(self.model, signature, x, self.version)
        request.model_spec.signature_name = self.signature_name
        return parse_predict_response(signature, self._rpc(self._stub.Predict, request), source=self.target)
