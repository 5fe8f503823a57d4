"""Shared fixtures: one seed for every test, tiny data, an offline environment."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_CLUST_OFFLINE"] = "1"  # tests never try the network

import numpy as np
import pytest


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
