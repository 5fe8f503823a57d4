"""Two backed-up fits in a row, for tests/test_resume.py to kill and start again.

    python tests/fit_worker.py BACKUP_FOLDER

Fit ``first`` trains 2 epochs, fit ``second`` 4 epochs of about a second each. Every epoch
this process trains is printed as ``trained <model> <epoch>``; at the end, the histories and
the first model's weights checksum are printed as JSON.
"""

import json
import sys
import time

import keras
import numpy as np

from keras_clust.training import fit_context, fit_model


class Report(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(f"trained {self.model.name} {epoch}", flush=True)
        time.sleep(1.0)


def tiny_model(name: str) -> keras.Model:
    keras.utils.set_random_seed(7)
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Dense(1, name="out")(keras.layers.Dense(8, activation="relu")(x)), name=name)
    model.compile(optimizer="adam", loss="mse")
    return model


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    with fit_context(backup=sys.argv[1]):
        first = tiny_model("first")
        h1 = fit_model(first, x, y, None, epochs=2, batch_size=16, callbacks=[Report()], verbose=0)
        second = tiny_model("second")
        h2 = fit_model(second, x, y, None, epochs=4, batch_size=16, callbacks=[Report()], verbose=0)
    checksum = float(sum(np.abs(w).sum() for w in first.get_weights()))
    print(json.dumps({"first": h1.history, "second": h2.history, "first_checksum": checksum}), flush=True)
