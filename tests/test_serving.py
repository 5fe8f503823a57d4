"""keras_clust.serving: requests built and read against a real SavedModel's signature, the REST
and gRPC clients against loopback servers answering with what that SavedModel computes, the
one-line errors (404/NOT_FOUND, 400/INVALID_ARGUMENT, refused, timeout) and ``serve check``."""

import json
import re
import shutil
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from helpers import assert_one_line_error, cli, cli_in_process
from keras_clust.errors import DataError
from keras_clust.export import export_savedmodel, load_signature
from keras_clust.serving import (
    GrpcClient,
    InvalidInputError,
    ModelNotFoundError,
    RestClient,
    ServerUnavailableError,
    ServingError,
    Signature,
    TensorInfo,
    build_predict_request,
    build_rest_request,
    check_export,
    parse_predict_response,
    parse_rest_response,
    read_signature,
    signature_from_metadata,
)
from keras_clust.serving.check import match_outputs

X = np.random.default_rng(7).random((3, 6), dtype=np.float32)


def _model(outputs: int):
    inp = keras.Input((6,), name="images")
    h = keras.layers.Dense(4, activation="relu", name="h")(inp)
    if outputs == 1:
        return keras.Model(inp, keras.layers.Dense(2, name="latent")(h), name="enc")
    heads = [keras.layers.Dense(3, activation="softmax", name="assignment")(h), keras.layers.Dense(2, name="z")(h)]
    return keras.Model(inp, heads, name="two")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two exported versions, ``enc`` (images -> embedding) and ``two`` (images -> assignment,
    embedding), with their signature functions loaded as TF Serving would."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("saved_models")
    enc = export_savedmodel(_model(1), "enc", root)
    two = export_savedmodel(_model(2), "two", root, output_names=("assignment", "embedding"))
    return {"root": root, "enc": enc, "two": two, "fns": {e.name: load_signature(e.path) for e in (enc, two)}}


def _signature_defs(path) -> dict:
    """``{name: SignatureDef}`` straight from saved_model.pb."""
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    return dict(sm.meta_graphs[0].signature_def)


def _run(fn, inputs: dict) -> dict:
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


# --- the signature ----------------------------------------------------------------------------


def test_signature_read_from_the_savedmodel(models):
    sig = read_signature(models["two"].path)
    assert sig.inputs == {"images": TensorInfo("DT_FLOAT", (None, 6))}
    assert sig.outputs == {
        "assignment": TensorInfo("DT_FLOAT", (None, 3)),
        "embedding": TensorInfo("DT_FLOAT", (None, 2)),
    }
    with pytest.raises(DataError, match="no signature 'nope'"):
        read_signature(models["two"].path, "nope")
    with pytest.raises(DataError, match="not a SavedModel"):
        read_signature(models["root"])


def test_signature_from_tf_serving_metadata_json():
    # the shape of TF Serving's GET /v1/models/<name>/metadata answer (int64 as strings)
    answer = json.loads("""{"model_spec": {"name": "m", "signature_name": "", "version": "3"},
      "metadata": {"signature_def": {"signature_def": {
        "serving_default": {"method_name": "tensorflow/serving/predict",
          "inputs": {"x": {"dtype": "DT_INT64", "name": "s:0", "tensor_shape": {
                             "dim": [{"size": "-1", "name": ""}, {"size": "28"}], "unknown_rank": false}},
                     "t": {"dtype": "DT_STRING", "name": "t:0", "tensor_shape": {"dim": [], "unknown_rank": true}}},
          "outputs": {"y": {"dtype": "DT_DOUBLE", "name": "o:0", "tensor_shape": {"dim": [{"size": "-1"}]}}}},
        "__saved_model_init_op": {"outputs": {"__saved_model_init_op": {"dtype": "DT_INVALID", "name": "NoOp",
                                  "tensor_shape": {"dim": [], "unknown_rank": true}}}}}}}}""")
    sig = signature_from_metadata(answer)
    assert sig.inputs == {"x": TensorInfo("DT_INT64", (None, 28)), "t": TensorInfo("DT_STRING", None)}
    assert sig.outputs == {"y": TensorInfo("DT_DOUBLE", (None,))}
    assert sig.inputs["x"].numpy_dtype == np.int64 and sig.outputs["y"].numpy_dtype == np.float64
    with pytest.raises(InvalidInputError, match="DT_STRING"):
        sig.inputs["t"].numpy_dtype  # noqa: B018
    with pytest.raises(ModelNotFoundError, match="no signature 'other'"):
        signature_from_metadata(answer, "other")


def test_inputs_checked_against_the_signature(models):
    sig = read_signature(models["enc"].path)
    for batch in (1, 7):  # the batch axis is free
        (arr,) = sig.check_inputs(np.ones((batch, 6))).values()
        assert arr.dtype == np.float32 and arr.shape == (batch, 6)
    assert sig.check_inputs({"images": np.ones((2, 6), np.int32)})["images"].dtype == np.float32
    bad_inputs = [
        (np.ones((2, 5)), r"shape \(2, 5\).*\(None, 6\)"),
        (np.ones(6), r"shape \(6,\)"),
        (np.ones((2, 6), np.complex64), "complex64"),
        ({"pixels": np.ones((2, 6))}, "pixels"),
    ]
    for bad, message in bad_inputs:
        with pytest.raises(InvalidInputError, match=message):
            sig.check_inputs(bad)
    ints = Signature(
        {"a": TensorInfo("DT_INT32", (None,)), "b": TensorInfo("DT_FLOAT", (None, 2))},
        {"y": TensorInfo("DT_FLOAT", (None,))},
    )
    with pytest.raises(InvalidInputError, match="pass a dict"):
        ints.check_inputs(np.ones((2,)))
    with pytest.raises(InvalidInputError, match="'a' is float64"):
        ints.check_inputs({"a": np.ones(2), "b": np.ones((2, 2))})


# --- REST requests and answers ---------------------------------------------------------------


def test_rest_request_and_response_round_trip(models):
    sig = read_signature(models["two"].path)
    fn = models["fns"]["two"]
    want = _run(fn, {"images": X})
    columnar = build_rest_request(sig, X.astype(np.float64))
    assert columnar == {"signature_name": "serving_default", "inputs": {"images": X.tolist()}}
    row = build_rest_request(sig, X, layout="row")
    assert row["instances"] == X.tolist()
    # the answers TF Serving gives for a two-output signature, in both layouts
    answers = [
        {"outputs": {k: v.tolist() for k, v in want.items()}},
        {"predictions": [{k: v[i].tolist() for k, v in want.items()} for i in range(len(X))]},
    ]
    for answer in answers:
        got = parse_rest_response(sig, json.loads(json.dumps(answer)))
        assert list(got) == ["assignment", "embedding"]
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
            assert got[k].dtype == np.float32
    one = read_signature(models["enc"].path)
    emb = _run(models["fns"]["enc"], {"images": X})["embedding"]
    for answer in ({"outputs": emb.tolist()}, {"predictions": emb.tolist()}):  # one output comes unnamed
        np.testing.assert_array_equal(parse_rest_response(one, answer)["embedding"], emb)
    with pytest.raises(ServingError, match=r"output 'embedding' of shape \(3, 3\)"):
        parse_rest_response(one, {"outputs": want["assignment"].tolist()})
    with pytest.raises(ServingError, match="answered outputs"):
        parse_rest_response(sig, {"outputs": {"assignment": want["assignment"].tolist()}})
    with pytest.raises(ServingError, match="bad things"):
        parse_rest_response(sig, {"error": "bad things"})


def test_rest_row_layout_with_several_inputs():
    sig = Signature(
        {"a": TensorInfo("DT_FLOAT", (None, 2)), "b": TensorInfo("DT_INT64", (None,))},
        {"y": TensorInfo("DT_FLOAT", (None,))},
    )
    body = build_rest_request(sig, {"b": np.array([4, 5]), "a": np.array([[1.0, 2.0], [3.0, 4.0]])}, "row")
    assert body["instances"] == [{"a": [1.0, 2.0], "b": 4}, {"a": [3.0, 4.0], "b": 5}]
    with pytest.raises(InvalidInputError, match="batch"):
        build_rest_request(sig, {"a": np.ones((2, 2)), "b": np.ones(3, np.int64)}, "row")


# --- a loopback TF Serving REST API backed by the SavedModels ---------------------------------

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)$")


class FakeServing(BaseHTTPRequestHandler):
    """TF Serving's REST semantics: 404 for unknown models/versions, 400 when the signature
    rejects the inputs, columnar and row bodies, single outputs unnamed."""

    def log_message(self, *args):
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _servable(self):
        m = PATH.match(self.path)
        if not m:
            return self._reply(404, {"error": f"Malformed request: {self.path}"}), None
        self.server.requests.append((self.command, self.path))
        name, version = m["name"], m["version"]
        if name == "slow":  # answers (404) only when the test is over
            self.server.release.wait(10)
        if name not in self.server.models or (version and int(version) != self.server.models[name]["version"]):
            spec = f"Specific({name}, {version})" if version else f"Latest({name})"
            return self._reply(404, {"error": f"Servable not found for request: {spec}"}), None
        return m["verb"], self.server.models[name]

    def do_GET(self):
        verb, servable = self._servable()
        if verb == "/metadata":
            defs = {
                k: json_format.MessageToDict(v, preserving_proto_field_name=True) for k, v in servable["defs"].items()
            }
            self._reply(
                200,
                {
                    "model_spec": {"name": "m", "signature_name": "", "version": str(servable["version"])},
                    "metadata": {"signature_def": {"signature_def": defs}},
                },
            )

    def do_POST(self):
        verb, servable = self._servable()
        if verb != ":predict":
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if "instances" in body:
            rows = body["instances"]
            inputs = {k: [r[k] for r in rows] for k in rows[0]} if isinstance(rows[0], dict) else {"images": rows}
        else:
            inputs = body["inputs"] if isinstance(body["inputs"], dict) else {"images": body["inputs"]}
        try:
            out = _run(servable["fn"], {k: np.asarray(v, np.float32) for k, v in inputs.items()})
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
            return self._reply(400, {"error": f"INVALID_ARGUMENT: {exc}"})
        if "instances" in body:
            rows = [{k: v[i].tolist() for k, v in out.items()} for i in range(len(rows))]
            self._reply(200, {"predictions": [next(iter(r.values())) for r in rows] if len(out) == 1 else rows})
        else:
            self._reply(
                200,
                {
                    "outputs": next(iter(out.values())).tolist()
                    if len(out) == 1
                    else {k: v.tolist() for k, v in out.items()}
                },
            )


def _servables(models) -> dict:
    return {
        e.name: {"version": e.version, "fn": models["fns"][e.name], "defs": _signature_defs(e.path)}
        for e in (models["enc"], models["two"])
    }


@pytest.fixture(scope="module")
def rest_server(models):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeServing)
    server.daemon_threads = True
    server.models, server.requests, server.bodies, server.release = _servables(models), [], [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("layout", ["columnar", "row"])
@pytest.mark.parametrize("name", ["enc", "two"])
def test_rest_client_predicts_what_the_savedmodel_computes(models, rest_server, name, layout):
    server, url = rest_server
    client = RestClient(url, name, version=models[name].version)
    got = client.predict(X, layout=layout)
    want = _run(models["fns"][name], {"images": X})
    assert list(got) == list(read_signature(models[name].path).outputs)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    assert client.signature() == read_signature(models[name].path)
    assert server.requests[-2:] == [
        ("GET", f"/v1/models/{name}/versions/1/metadata"),
        ("POST", f"/v1/models/{name}/versions/1:predict"),
    ]
    assert ("inputs" if layout == "columnar" else "instances") in server.bodies[-1]


def test_rest_errors_are_one_line(models, rest_server):
    server, url = rest_server
    with pytest.raises(ModelNotFoundError, match=r"model 'nope' not found at .*HTTP 404.*Latest\(nope\)"):
        RestClient(url, "nope").predict(X)
    with pytest.raises(ModelNotFoundError, match=r"model 'enc' version 9 not found.*Specific\(enc, 9\)"):
        RestClient(url, "enc", version=9, signature=read_signature(models["enc"].path)).predict(X)
    client = RestClient(url, "enc")
    sent = len(server.bodies)
    with pytest.raises(InvalidInputError, match=r"shape \(3, 5\)"):
        client.predict(X[:, :5])
    assert len(server.bodies) == sent  # refused before sending
    stale = Signature({"images": TensorInfo("DT_FLOAT", (None, 5))}, {"embedding": TensorInfo("DT_FLOAT", (None, 2))})
    with pytest.raises(InvalidInputError, match="HTTP 400") as err:
        RestClient(url, "enc", signature=stale).predict(X[:, :5])
    assert "\n" not in str(err.value) and len(server.bodies) == sent + 1
    with pytest.raises(ServerUnavailableError, match="refused"):
        RestClient(f"http://127.0.0.1:{_closed_port()}", "enc", timeout=5).predict(X)
    start = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=r"no answer from .* within 0.3 s"):
        RestClient(url, "slow", timeout=0.3).metadata()
    assert time.monotonic() - start < 3


# --- gRPC ------------------------------------------------------------------------------------


def test_grpc_request_and_response_round_trip(models):
    sig = read_signature(models["two"].path)
    request = build_predict_request("two", sig, X.astype(np.float64), version=4)
    assert (request.model_spec.name, request.model_spec.version.value) == ("two", 4)
    assert request.model_spec.signature_name == "serving_default" and list(request.inputs) == ["images"]
    assert request.inputs["images"].dtype == tf.float32.as_datatype_enum
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["images"]), X)
    assert not build_predict_request("two", sig, X).model_spec.HasField("version")
    want = _run(models["fns"]["two"], {"images": X})
    response = predict_pb2.PredictResponse()
    for k, v in want.items():
        response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
    got = parse_predict_response(sig, predict_pb2.PredictResponse.FromString(response.SerializeToString()))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    del response.outputs["embedding"]
    with pytest.raises(ServingError, match="answered outputs"):
        parse_predict_response(sig, response)
    with pytest.raises(InvalidInputError, match="shape"):
        build_predict_request("two", sig, X[:, :4])


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService backed by the SavedModels, with TF Serving's status codes."""

    def __init__(self, servables, release):
        self.servables, self.release = servables, release

    def _servable(self, spec, context):
        if spec.name == "slow":  # answers (NOT_FOUND) only when the test is over
            self.release.wait(10)
        servable = self.servables.get(spec.name)
        if servable is None or (spec.HasField("version") and spec.version.value != servable["version"]):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")
        return servable

    def Predict(self, request, context):
        servable = self._servable(request.model_spec, context)
        try:
            out = _run(servable["fn"], {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = predict_pb2.PredictResponse()
        for k, v in out.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response

    def GetModelMetadata(self, request, context):
        servable = self._servable(request.model_spec, context)
        defs = get_model_metadata_pb2.SignatureDefMap()
        for k, v in servable["defs"].items():
            defs.signature_def[k].CopyFrom(v)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.metadata["signature_def"].Pack(defs)
        return response


@pytest.fixture(scope="module")
def grpc_target(models):
    release = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        FakePredictionService(_servables(models), release), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    release.set()
    server.stop(0)


def test_grpc_client_against_a_loopback_server(models, grpc_target):
    with GrpcClient(grpc_target, "two", version=models["two"].version) as client:
        assert client.signature() == read_signature(models["two"].path)
        got = client.predict(X)
    want = _run(models["fns"]["two"], {"images": X})
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    with GrpcClient(grpc_target, "enc") as client:
        np.testing.assert_array_equal(
            client.predict({"images": X})["embedding"], _run(models["fns"]["enc"], {"images": X})["embedding"]
        )


def test_grpc_errors_are_one_line(models, grpc_target):
    with pytest.raises(ModelNotFoundError, match=r"model 'nope' not found .*NOT_FOUND"):
        GrpcClient(grpc_target, "nope").predict(X)
    with pytest.raises(ModelNotFoundError, match="version 9"):
        GrpcClient(grpc_target, "enc", version=9).signature()
    stale = Signature({"images": TensorInfo("DT_FLOAT", (None, 5))}, {"embedding": TensorInfo("DT_FLOAT", (None, 2))})
    with pytest.raises(InvalidInputError, match="INVALID_ARGUMENT") as err:
        GrpcClient(grpc_target, "enc", signature=stale).predict(X[:, :5])
    assert "\n" not in str(err.value)
    with pytest.raises(ServerUnavailableError, match="UNAVAILABLE"):
        GrpcClient(f"127.0.0.1:{_closed_port()}", "enc", timeout=5).signature()
    start = time.monotonic()
    with pytest.raises(ServerUnavailableError, match="within 0.3 s"):
        GrpcClient(grpc_target, "slow", timeout=0.3).signature()
    assert time.monotonic() - start < 3


# --- serve check / serve predict ---------------------------------------------------------------


def test_outputs_matched_by_name_then_shape():
    served = {"probabilities": np.zeros((4, 10)), "log_probabilities": np.zeros((4, 10))}
    values = [np.zeros((4, 10)), np.zeros((4, 10))]
    assert match_outputs(served, ["probabilities", "log_probs"], values) == {"probabilities": 0, "log_probabilities": 1}
    assert match_outputs(served, ["log_probs", "probabilities"], values) == {"probabilities": 1, "log_probabilities": 0}
    with pytest.raises(DataError, match="pass --outputs"):
        match_outputs(served, ["a", "b"], values)
    assert match_outputs(served, ["a", "b"], values, order=("log_probabilities", "probabilities")) == {
        "log_probabilities": 0,
        "probabilities": 1,
    }
    by_shape = {"embedding": np.zeros((4, 2)), "assignment": np.zeros((4, 3))}
    assert match_outputs(by_shape, ["x", "y"], [np.zeros((4, 3)), np.zeros((4, 2))]) == {
        "assignment": 0,
        "embedding": 1,
    }


def test_serve_check_passes_an_export(models):
    res = cli_in_process("serve", "check", models["root"] / "two", "--batch", "5")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert len(lines) == 2, res.stdout
    path = models["two"].path
    assert lines[0].startswith(f"{path}: ok   assignment (5, 3): max abs diff ")
    assert lines[1].startswith(f"{path}: ok   embedding (5, 2): max abs diff ")
    assert "model.keras output 0" in lines[0] and "model.keras output 1" in lines[1]


def test_serve_check_catches_a_differing_model(models, tmp_path):
    bad = tmp_path / "enc" / "1"
    shutil.copytree(models["enc"].path, bad)
    keras.utils.set_random_seed(99)
    _model(1).save(bad / "model.keras")  # same layers, other weights
    result = check_export(tmp_path / "enc")
    assert result.path == bad and not result.ok
    (out,) = result.outputs
    assert out.name == "embedding" and out.shape == (4, 2) and out.max_abs_diff > 1e-3
    assert out.line(result.atol).startswith("FAIL embedding (4, 2)")


def test_serve_check_bad_paths(tmp_path):
    assert_one_line_error(cli_in_process("serve", "check", tmp_path / "nope"), 1, "nope does not exist")
    assert_one_line_error(cli_in_process("serve", "check", tmp_path), 1, "holds no SavedModel")


def test_serve_predict_over_rest(models, rest_server, tmp_path):
    _, url = rest_server
    np.save(tmp_path / "x.npy", X)
    res = cli(
        "serve",
        "predict",
        "--url",
        url,
        "--model",
        "two",
        "--data",
        tmp_path / "x.npy",
        "--layout",
        "row",
        "--out",
        tmp_path / "y.npz",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith("assignment (3, 3) float32: [[") and lines[1].startswith("embedding (3, 2) float32: [[")
    assert lines[2:] == [f"outputs written to {tmp_path / 'y.npz'}"]
    want = _run(models["fns"]["two"], {"images": X})
    with np.load(tmp_path / "y.npz") as got:
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    missing = cli_in_process("serve", "predict", "--url", url, "--model", "nope", "--data", tmp_path / "x.npy")
    assert_one_line_error(missing, 1, "model 'nope' not found", "HTTP 404")
