"""``keras-clust serve``: check an export with ``saved_model_cli run``; call a model TF Serving serves.

Serving: 'check' runs an exported version through TensorFlow's saved_model_cli on seeded inputs
shaped from its signature and compares every output with its model.keras (exit 1 beyond
--atol); 'predict' sends .npy rows to a model TF Serving serves, over REST or gRPC.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from keras_clust.app import Experiment, action
from keras_clust.errors import DataError, UsageError
from keras_clust.option_types import non_negative_float, non_negative_int, positive_float, positive_int
from keras_clust.serving.check import check_export, resolve_version
from keras_clust.serving.rest_client import LAYOUTS, RestClient
from keras_clust.serving.signature import SERVING_SIGNATURE

log = logging.getLogger(__name__)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"needs distinct comma-separated output names, got {text!r}")
    return names


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="saved_models/<name>/<version>, or saved_models/<name> for its newest version",
    )
    p.add_argument("--batch", type=positive_int, default=4, help="rows of seeded sample input (default: 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sample input (default: 0)")
    p.add_argument(
        "--atol",
        type=non_negative_float,
        default=1e-5,
        help="largest absolute difference accepted per output (default: 1e-05)",
    )
    p.add_argument(
        "--outputs",
        type=_names,
        default=None,
        help="the served output names in the Keras model's output order, e.g. probabilities,"
        "log_probabilities (default: matched by layer name, then by shape)",
    )
    p.add_argument("--signature", default=SERVING_SIGNATURE, help=f"signature to run (default: {SERVING_SIGNATURE})")


@action("check", add_check_arguments)
def run_check(args: argparse.Namespace) -> int:
    """saved_model_cli run vs model.keras on the same inputs, one line per output"""
    folders = [resolve_version(p) for p in args.paths]  # every path is checked before TensorFlow starts
    ok = True
    for folder in folders:
        result = check_export(
            folder, batch=args.batch, seed=args.seed, atol=args.atol, order=args.outputs, signature_name=args.signature
        )
        for output in result.outputs:
            print(f"{folder}: {output.line(result.atol)}")
        ok = ok and result.ok
    return 0 if ok else 1


def _load_inputs(specs: list[str]) -> np.ndarray | dict[str, np.ndarray]:
    arrays = {}
    for spec in specs:
        name, sep, file = spec.rpartition("=")
        if not sep:
            if len(specs) > 1:
                raise UsageError(f"--data {spec}: with several inputs write each as name=file.npy")
            name = None
        path = Path(file)
        if not path.is_file():
            raise DataError(f"--data {path} is not a file")
        try:
            arrays[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"--data {path} is not a .npy array ({exc})") from None
        if not isinstance(arrays[name], np.ndarray):
            raise DataError(f"--data {path} is an .npz archive; save one array per input as .npy")
    return arrays[None] if None in arrays else arrays


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="TF Serving's REST root, e.g. http://localhost:8501")
    where.add_argument("--grpc", metavar="HOST:PORT", help="TF Serving's gRPC port, e.g. localhost:8500")
    p.add_argument("--model", required=True, help="the served model's name (as in models.config)")
    p.add_argument("--version", type=positive_int, default=None, help="model version (default: the newest)")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="[NAME=]FILE.npy",
        help="input rows (.npy); one name=file.npy per input when the signature has several",
    )
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="columnar",
        help="REST JSON body: columnar 'inputs' or row 'instances' (default: columnar)",
    )
    p.add_argument("--timeout", type=positive_float, default=10.0, help="seconds to wait (default: 10)")
    p.add_argument("--signature", default=SERVING_SIGNATURE, help=f"signature to call (default: {SERVING_SIGNATURE})")
    p.add_argument("--out", type=Path, default=None, help="write the outputs to this .npz (one array per output)")


@action("predict", add_predict_arguments)
def run_predict(args: argparse.Namespace) -> int:
    """call a served model over REST (--url) or gRPC (--grpc) on .npy rows"""
    x = _load_inputs(args.data)
    if args.url is not None:
        outputs = RestClient(args.url, args.model, args.version, args.signature, args.timeout).predict(x, args.layout)
    else:
        from keras_clust.serving.grpc_client import GrpcClient

        with GrpcClient(args.grpc, args.model, args.version, args.signature, args.timeout) as client:
            outputs = client.predict(x)
    for name, value in outputs.items():
        text = np.array2string(value, threshold=12, edgeitems=2, max_line_width=10**6, precision=5).replace("\n", "")
        print(f"{name} {value.shape} {value.dtype}: {text}")
    if args.out is not None:
        out = args.out if args.out.suffix == ".npz" else Path(f"{args.out}.npz")  # as np.savez names it
        try:
            np.savez(out, **outputs)
        except OSError as exc:
            raise DataError(f"cannot write --out {out} ({exc.strerror or exc})") from None
        print(f"outputs written to {out}")
    return 0


EXPERIMENT = Experiment("serve", __doc__, [run_check, run_predict])
