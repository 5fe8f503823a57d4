"""A client of TF Serving's REST API (``:predict`` and ``/metadata``), standard library only.

``POST {url}/v1/models/<name>[/versions/<n>]:predict`` with a JSON body in columnar form
(``{"inputs": {name: values}}``, answered ``{"outputs": ...}``) or row form
(``{"instances": [...]}``, answered ``{"predictions": [...]}``); the signature is read once
from ``GET .../metadata`` (or given), every request is checked against it before it is
sent and every answer after it arrives. Failures are one-line :class:`ServingError` s:
404 is :class:`ModelNotFoundError`, 400 :class:`InvalidInputError`, a refused connection or
no reply within ``timeout`` :class:`ServerUnavailableError`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Literal

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.serving.errors import (
    InvalidInputError,
    ModelNotFoundError,
    ServerUnavailableError,
    ServingError,
    one_line,
)
from keras_clust.serving.signature import SERVING_SIGNATURE, Signature, signature_from_metadata

Layout = Literal["columnar", "row"]
LAYOUTS = ("columnar", "row")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_model_name(model: str) -> str:
    """``model`` when it can be put in a URL path as is (letters, digits, ``_ . -``)."""
    if not _MODEL_NAME.match(model or ""):
        raise UsageError(f"model name {model!r} may use only letters, digits, '_', '.' and '-'")
    return model


def build_rest_request(signature: Signature, x, layout: Layout = "columnar") -> dict:
    """The JSON body of a ``:predict`` request for ``x`` (checked by :meth:`Signature.check_inputs`).

    Args:
        signature: The served signature.
        x: One array for a single-input signature, or ``{input name: array}``.
        layout: ``"columnar"`` (``{"inputs": {name: values}}``) or ``"row"``
            (``{"instances": [row, ...]}``, one object per row when there are several inputs).

    Raises:
        InvalidInputError: inputs that do not fit, or (row layout) inputs with different batch sizes.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    arrays = signature.check_inputs(x)
    body: dict = {"signature_name": signature.name}
    if layout == "columnar":
        body["inputs"] = {k: v.tolist() for k, v in arrays.items()}
        return body
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in arrays.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise InvalidInputError(f"the row layout needs every input to share its first (batch) axis, got {sizes}")
    if len(arrays) == 1:
        body["instances"] = next(iter(arrays.values())).tolist()
    else:
        n = next(iter(sizes.values()))
        body["instances"] = [{k: v[i].tolist() for k, v in arrays.items()} for i in range(n)]
    return body


def parse_rest_response(signature: Signature, answer: Mapping, source: str = "the server") -> dict[str, np.ndarray]:
    """``{output name: array}`` from a ``:predict`` answer in either layout.

    A single-output signature is answered without its name (``{"outputs": values}`` or
    ``{"predictions": [row, ...]}``); several outputs come as ``{"outputs": {name: values}}``
    or ``{"predictions": [{name: row}, ...]}``.

    Raises:
        ServingError: an answer that is not a prediction, or outputs that do not fit the signature.
    """
    names = list(signature.outputs)
    if "outputs" in answer:
        values = answer["outputs"]
        if len(names) == 1 and not isinstance(values, Mapping):
            values = {names[0]: values}
    elif "predictions" in answer:
        rows = answer["predictions"]
        if not isinstance(rows, list):
            raise ServingError(f"{source} answered 'predictions' that are not a list of rows")
        if len(names) == 1 and not all(isinstance(r, Mapping) for r in rows[:1]):
            values = {names[0]: rows}
        else:
            try:
                values = {k: [r[k] for r in rows] for k in (rows[0] if rows else names)}
            except (KeyError, TypeError):
                raise ServingError(f"{source} answered rows without every output {names}") from None
    else:
        error = answer.get("error") if isinstance(answer, Mapping) else None
        detail = f": {one_line(error)}" if error else ""
        raise ServingError(f"{source} answered no 'outputs' or 'predictions'{detail}")
    if not isinstance(values, Mapping):
        raise ServingError(f"{source} answered one unnamed output, the signature has {names}")
    return signature.check_outputs(values, source)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RestClient:
    """Calls one model served by TF Serving over REST.

    Args:
        url: The server's REST root, e.g. ``http://localhost:8501``.
        model: The served model's name (its ``models.config`` name).
        version: A version number, or None for the one the server chooses (the newest).
        signature_name: The signature to call.
        timeout: Seconds to wait for the connection and for each answer.
        signature: The signature, when known (e.g. :func:`read_signature` of the exported
            folder); otherwise it is read from the server's metadata on first use.

    Example::

        client = RestClient("http://localhost:8501", "mnist_l1_encoder_z16")
        codes = client.predict(np.zeros((2, 784), np.float32))["embedding"]
    """

    def __init__(
        self,
        url: str,
        model: str,
        version: int | None = None,
        signature_name: str = SERVING_SIGNATURE,
        timeout: float = 10.0,
        signature: Signature | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"the REST url must look like http://host:port, got {url!r}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise UsageError(f"version must be a positive integer, got {version!r}")
        if not timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.model = check_model_name(model)
        self.version = version
        self.signature_name = signature_name
        self.timeout = float(timeout)
        self._signature = signature
        # a proxy from the environment must not swallow requests to this machine
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def model_url(self) -> str:
        """``{url}/v1/models/<model>[/versions/<n>]``."""
        version = "" if self.version is None else f"/versions/{self.version}"
        return f"{self.url}/v1/models/{self.model}{version}"

    def _what(self) -> str:
        return f"model {self.model!r}" + ("" if self.version is None else f" version {self.version}")

    def _call(self, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method="GET" if body is None else "POST", headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(url, exc) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise self._unreachable(exc) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ServingError(f"{url} did not answer JSON: {one_line(raw[:200])}") from None

    def _http_error(self, url: str, exc: urllib.error.HTTPError) -> ServingError:
        try:
            raw = exc.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        try:
            message = json.loads(raw).get("error", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace") or exc.reason
        message = one_line(message)
        if exc.code == 404:
            return ModelNotFoundError(f"{self._what()} not found at {self.url} (HTTP 404): {message}")
        if exc.code == 400:
            return InvalidInputError(f"{self.url} rejected the request to {self._what()} (HTTP 400): {message}")
        return ServingError(f"{url} answered HTTP {exc.code}: {message}")

    def _unreachable(self, reason) -> ServerUnavailableError:
        if isinstance(reason, TimeoutError):
            return ServerUnavailableError(f"no answer from {self.url} within {self.timeout:g} s")
        if isinstance(reason, ConnectionRefusedError):
            return ServerUnavailableError(f"connection to {self.url} refused; is TF Serving running there?")
        return ServerUnavailableError(f"cannot reach {self.url}: {one_line(reason)}")

    def metadata(self) -> dict:
        """The server's answer to ``GET .../metadata`` (the model spec and its signatures)."""
        return self._call(f"{self.model_url}/metadata")

    def signature(self) -> Signature:
        """The signature called by :meth:`predict` (read from the metadata once, then kept)."""
        if self._signature is None:
            self._signature = signature_from_metadata(self.metadata(), self.signature_name)
        return self._signature

    def predict(self, x, layout: Layout = "columnar") -> dict[str, np.ndarray]:
        """Run the model on ``x``.

        Args:
            x: One array for a single-input signature, or ``{input name: array}``; the batch
                axis is the first.
            layout: ``"columnar"`` or ``"row"`` JSON (same result; see :func:`build_rest_request`).

        Returns:
            ``{output name: array}`` with the signature's dtypes.
        """
        signature = self.signature()
        body = build_rest_request(signature, x, layout)
        body["signature_name"] = self.signature_name
        answer = self._call(f"{self.model_url}:predict", body)
        return parse_rest_response(signature, answer, source=self.url)
