"""Shared fixtures: one seed for every test, tiny data, an offline environment.

Tests that need a real dataset say so with ``@pytest.mark.needs_dataset("fashion-mnist")``:
without the data they are skipped on a workstation, but under CI (``CI`` set, as
``.ci/run`` does) they fail, because CI installs the data and a skipped test proves
nothing. A plain ``skip``/``skipif`` whose reason says a dataset is missing is treated
the same way under CI.
"""

import functools
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_CLUST_OFFLINE"] = "1"  # tests never try the network

# Under pytest-xdist each worker gets its share of the cores, for itself and the runs it starts:
# two workers on two cores, each with TensorFlow's, oneDNN's and numba's own thread pools of two,
# made every test wait on the other's threads (a 21 s quick run took 57 s in the suite).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)

import numpy as np
import pytest

pytest_plugins = ["pytester"]  # tests/test_packaging.py runs tiny sessions through these hooks

# A skip reason that says a dataset is missing ("Fashion-MNIST not installed", ...).
MISSING_DATA = re.compile(r"(data ?set|mnist)\b.*\b(missing|not installed|not found|not available)", re.I | re.S)


def in_ci() -> bool:
    """True under a CI runner (``CI=true``; ``CI=0``/``false``/empty mean a workstation)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@functools.cache
def dataset_missing(name: str) -> str | None:
    """Why the full dataset ``name`` cannot be loaded offline, or None when it can."""
    from keras_clust.data import load_dataset
    from keras_clust.errors import KerasClustError

    try:
        data = load_dataset(name)
    except KerasClustError as exc:
        return str(exc)
    return None if data.source.full else data.source.note


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_dataset(name): needs the full dataset `name`; skipped without it, a failure under CI"
    )


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs_dataset"):
        (name,) = marker.args
        reason = dataset_missing(name)
        if reason is None:
            continue
        if in_ci():
            pytest.fail(f"dataset {name} missing under CI, which must install it: {reason}", pytrace=False)
        pytest.skip(f"dataset {name} missing: {reason}")


def _missing_data_skip_fails_in_ci(report):
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return report
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if MISSING_DATA.search(reason):
        report.outcome = "failed"
        report.longrepr = f"skipped for missing data under CI, which must install it: {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    return _missing_data_skip_fails_in_ci((yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    return _missing_data_skip_fails_in_ci((yield))


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def blobs():
    """Three well separated 2-D blobs, 30 points each, with their labels."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = np.repeat(np.arange(3), 30)
    x = centers[y] + rng.normal(scale=0.5, size=(90, 2))
    return x.astype(np.float32), y


@pytest.fixture
def tiny_images():
    """64 random 8x8 'images' in [0, 1] with 4 labels."""
    rng = np.random.default_rng(1)
    return rng.random((64, 8, 8), dtype=np.float32), np.arange(64) % 4


@pytest.fixture(scope="session")
def postgres_server():
    """Base URL of a throw-away PostgreSQL server on loopback (tests/pg_server.py); without the
    server binaries a skip on a workstation, a failure under CI (which installs them)."""
    from pg_server import postgres_bin, throwaway_postgres

    if postgres_bin() is None:
        why = "PostgreSQL server not installed (apt-get install postgresql)"
        pytest.fail(f"{why} under CI, which must install it", pytrace=False) if in_ci() else pytest.skip(why)
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server, request):
    """A new, empty database on the throw-away server, named after the test."""
    from pg_server import create_database

    name = re.sub(r"\W", "_", request.node.name.lower())[:50]
    return create_database(postgres_server, name)
