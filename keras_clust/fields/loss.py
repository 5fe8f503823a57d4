"""Loss functions beyond Keras's own, written in ``keras.ops`` and serialisable."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_clust")
class MagnitudeWeightedMSE(keras.losses.Loss):
    """Squared error weighted by the target field's local magnitude.

    For a target field ``x`` (batch, H, W, C) and its reconstruction ``y``, with
    ``m_p = ||x_p||`` the Euclidean norm over the channels at pixel ``p``::

        w_p = (m_p + floor) / mean_p'(m_p' + floor)
        loss = mean_{p, c} w_p * (x_pc - y_pc)^2

    The weights average 1 over each field, so the loss stays on the plain MSE's scale
    (and equals it for a field of constant magnitude), while errors where the flow is
    strong count more than errors in near-still regions. ``floor`` (in the field's
    units) keeps still regions from being ignored altogether.

    Args:
        floor: Added to every magnitude before normalising (>= 0; 0.1 by default).
    """

    def __init__(self, floor: float = 0.1, name: str = "magnitude_weighted_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        if not floor >= 0:
            raise ValueError(f"floor must be >= 0, got {floor}")
        self.floor = float(floor)

    def call(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.cast(y_pred, y_true.dtype)
        magnitude = ops.sqrt(ops.sum(ops.square(y_true), axis=-1) + 1e-12) + self.floor  # (batch, H, W)
        weights = magnitude / ops.mean(magnitude, axis=(1, 2), keepdims=True)
        per_pixel = ops.mean(ops.square(y_true - y_pred), axis=-1)
        return ops.mean(weights * per_pixel, axis=(1, 2))

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}
