"""Tiny images and a small CAE search space shared by the distributed-search tests and the
worker processes they start (spawned workers import this module by name)."""

import time

import keras
import numpy as np

from keras_clust.tuning import CAE_SPACE, SearchSpace

SPACE = SearchSpace(CAE_SPACE.params[:4])  # latent size, channels, optimizer, learning rate


class SlowEpochs(keras.callbacks.Callback):
    """Makes every epoch last ``seconds`` more, so that a trial is still running when a test
    looks (picklable: spawned workers get it by reference to this module)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)


def tiny_images():
    """``(train, val)`` pairs of 7x7-blob images, 160 and 40 of them."""
    rng = np.random.default_rng(0)
    base = rng.random((4, 7, 7, 1)).astype(np.float32)
    x = np.repeat(np.repeat(base[rng.integers(0, 4, 200)], 4, axis=1), 4, axis=2)
    x = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1).astype(np.float32)
    return (x[:160], x[:160]), (x[160:], x[160:])
