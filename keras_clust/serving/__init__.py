"""Calling exported models where they are served, and checking them before they are.

* :class:`RestClient` / :class:`GrpcClient`: TF Serving's REST (standard library only) and
  gRPC (``tensorflow-serving-api``) APIs, NumPy in, ``{output name: array}`` out, every
  request checked against the served :class:`Signature`.
* :func:`check_export`: ``saved_model_cli run`` against ``model.keras`` on the same inputs
  (``keras-clust serve check``).

Errors are one-line :class:`ServingError` s. Importing this package does not import
TensorFlow; the gRPC client and :func:`read_signature` do.
"""

from keras_clust.serving.check import CheckResult, OutputCheck, check_export, resolve_version
from keras_clust.serving.errors import (
    InvalidInputError,
    ModelNotFoundError,
    ServerUnavailableError,
    ServingError,
)
from keras_clust.serving.grpc_client import GrpcClient, build_predict_request, parse_predict_response
from keras_clust.serving.rest_client import RestClient, build_rest_request, parse_rest_response
from keras_clust.serving.signature import (
    Signature,
    TensorInfo,
    read_signature,
    signature_from_dict,
    signature_from_metadata,
)

__all__ = [
    "CheckResult",
    "GrpcClient",
    "InvalidInputError",
    "ModelNotFoundError",
    "OutputCheck",
    "RestClient",
    "ServerUnavailableError",
    "ServingError",
    "Signature",
    "TensorInfo",
    "build_predict_request",
    "build_rest_request",
    "check_export",
    "parse_predict_response",
    "parse_rest_response",
    "read_signature",
    "resolve_version",
    "signature_from_dict",
    "signature_from_metadata",
]
