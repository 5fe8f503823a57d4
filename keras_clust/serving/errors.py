"""What goes wrong when a served model is called: each a one-line :class:`ServingError`."""

from __future__ import annotations

from keras_clust.errors import KerasClustError


class ServingError(KerasClustError):
    """A request to a model server failed (exit code 1); the message is one line."""

    exit_code = 1


class ModelNotFoundError(ServingError):
    """The server does not serve this model, version or signature (HTTP 404, gRPC NOT_FOUND)."""


class InvalidInputError(ServingError, ValueError):
    """The inputs do not fit the signature: names, dtypes or shapes (checked before sending,
    or HTTP 400 / gRPC INVALID_ARGUMENT from the server)."""


class ServerUnavailableError(ServingError):
    """No answer: connection refused, host unreachable, or no reply within the timeout."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
