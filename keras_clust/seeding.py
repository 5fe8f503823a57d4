"""Seeds in one place: the run's seed for Python, NumPy and Keras/TensorFlow, and one derived
seed per model so that a model's initial weights do not depend on the models built before it."""

from __future__ import annotations

import hashlib


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and Keras/TensorFlow in one call; every CLI entry calls it.

    Args:
        seed: The run's seed.
        deterministic: Also ask TensorFlow for deterministic kernels, so the same seed
            gives the same numbers on the same machine (Keras then compiles without XLA).
            False leaves TensorFlow's setting as it is: once on, it stays on in the process.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def op_determinism() -> bool:
    """Whether TensorFlow's op determinism (:func:`set_seed`) is on in this process."""
    from tensorflow.python.framework import config as tf_config  # no public getter in TF 2.21

    return bool(tf_config.is_op_determinism_enabled())


def model_seed(seed: int, key: str) -> int:
    """The seed of one model of a run, derived from the run's seed and the model's name.

    Keras draws the seeds of unseeded initialisers from Python's global RNG, so without
    re-seeding, a model's initial weights depend on how many models were built before
    it. Deriving a seed per model name makes every model independent of the others and
    of their order.
    """
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_model(seed: int, key: str) -> int:
    """Re-seed Python, NumPy and Keras with :func:`model_seed` right before building and
    training the model named ``key``; returns the seed used (store it with the model)."""
    import keras

    derived = model_seed(seed, key)
    keras.utils.set_random_seed(derived)
    return derived
