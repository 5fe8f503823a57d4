"""One epoch of the mnist-l1 autoencoder on one device and on two logical CPU devices under
MirroredStrategy, for tests/test_distribute.py (logical devices must be made before
TensorFlow starts, hence a process of its own). Prints the two runs' losses and weights' sums.

    python tests/distribute_worker.py
"""

import contextlib
import json

import keras
import numpy as np

from keras_clust.apps.mnist_l1 import build_model
from keras_clust.distribute import make_strategy
from keras_clust.training import fit_context, fit_model


def train(strategy, batch_size: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((512, 64), dtype=np.float32)
    keras.utils.set_random_seed(3)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        ae = build_model(2, 64)
        ae.autoencoder.compile(optimizer=keras.optimizers.SGD(0.5), loss="mae")
    with fit_context(strategy=strategy):
        fit = fit_model(ae.autoencoder, x, x, None, epochs=2, batch_size=batch_size, verbose=0)
    weights = [np.asarray(w) for w in ae.autoencoder.get_weights()]
    return {
        "loss": fit.history["loss"],
        "weights": [float(np.abs(w).sum()) for w in weights],
        "replicas": 1 if strategy is None else strategy.num_replicas_in_sync,
    }


if __name__ == "__main__":
    mirrored = make_strategy("mirrored", cpu_replicas=2)
    print(json.dumps({"single": train(None, 64), "mirrored": train(mirrored, 32)}), flush=True)
