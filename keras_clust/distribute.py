"""Training on more than one device through ``tf.distribute``.

``--strategy mirrored`` copies the model on every GPU of this machine (on the CPU when it
has none) and averages the gradients of each batch over the copies. Models are built and
compiled inside the strategy's scope, and every ``--batch-size`` is per replica: a fit's
global batch is ``batch_size x replicas``.

``--strategy multiworker`` (several machines, ``TF_CONFIG``) is refused: Keras 3's ``fit``
fails under ``tf.distribute.MultiWorkerMirroredStrategy`` (keras-team/keras#20585, still
open with Keras 3.15 and TF 2.21: the symbolic build reduces a ``PerReplica`` batch, and
with that bypassed the metrics' reduction fails), and this project trains through ``fit``
only. ``tests/test_distribute.py`` holds a strict expected failure that turns red when an
upgrade fixes it.
"""

from __future__ import annotations

from keras_clust.errors import UsageError

STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name: str, cpu_replicas: int | None = None):
    """The ``tf.distribute`` strategy called ``name`` (None for ``none``).

    Args:
        name: One of :data:`STRATEGIES`.
        cpu_replicas: For ``mirrored`` on a machine without GPUs: split the CPU into this
            many logical devices, one replica each (must be set before TensorFlow starts its
            runtime; for tests and for trying a multi-device set-up on one machine).
    """
    if name not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "none":
        return None
    if name == "multiworker":
        raise UsageError(
            "--strategy multiworker: Keras 3's fit fails under MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585); train on one machine with --strategy mirrored"
        )
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if cpu_replicas and not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        except RuntimeError:
            raise UsageError(
                "the CPU can be split into logical devices only before TensorFlow has started; make the strategy first"
            ) from None
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    return tf.distribute.MirroredStrategy(devices)


def replicas(strategy) -> int:
    """Replicas training in sync (1 without a strategy)."""
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)
