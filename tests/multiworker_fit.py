"""One worker of a two-worker MultiWorkerMirroredStrategy fit of a tiny model (TF_CONFIG set by
tests/test_distribute.py); prints ``OK <sum of |weights|>`` when Keras' fit gets through."""

import keras
import numpy as np
import tensorflow as tf

if __name__ == "__main__":
    keras.config.disable_traceback_filtering()  # the test recognises Keras' own failure by its frames
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        x_in = keras.Input((8,))
        model = keras.Model(x_in, keras.layers.Dense(8)(x_in))
        model.compile(optimizer="sgd", loss="mae")
    x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
    model.fit(x, x, batch_size=64, epochs=1, verbose=0)
    print("OK", sum(float(np.abs(w).sum()) for w in model.get_weights()), flush=True)
