"""A search worker process for tests/test_distributed_search.py: joins a study and trains
slow trials (each epoch sleeps), so that the test can SIGKILL it in the middle of one.

    python tests/search_worker.py STORAGE_URL STUDY_NAME N_TRIALS [remote]

With ``remote`` the worker calls itself ``other-machine``: its trials look like another host's,
whose death only the storage's heartbeat can tell.
"""

import socket
import sys
import time

import keras
from distributed_data import SPACE, tiny_images

from keras_clust.tuning import build_compiled_cae, run_optuna_search


class SlowEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(1.0)


if __name__ == "__main__":
    storage, study_name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if sys.argv[4:] == ["remote"]:
        socket.gethostname = lambda: "other-machine"
    train, val = tiny_images()
    run_optuna_search(
        SPACE,
        build_compiled_cae,
        train,
        val,
        epochs=30,
        batch_size=32,
        n_trials=n_trials,
        storage=storage,
        study_name=study_name,
        heartbeat_interval=1,
        grace_period=3,
        callbacks=(SlowEpochs(),),
    )
