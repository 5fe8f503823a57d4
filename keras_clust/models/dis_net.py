"""``dis_net``: the BS6207 report's judge CNN for 28x28 digits."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_clust.errors import UsageError


def build_dis_net(
    input_shape: Sequence[int] = (28, 28, 1),
    n_classes: int = 10,
    filters: Sequence[int] = (32, 64, 128),
    dense_units: int = 128,
    dropout: float = 0.25,
    name: str = "dis_net",
) -> keras.Model:
    """Three blocks of Conv2D(3x3, ReLU) + 2x2 max-pooling + dropout, then flatten,
    Dense(ReLU) and a softmax output named ``probabilities`` (not compiled).

    Train with sparse categorical cross-entropy (the report used binary cross-entropy on
    one-hot labels, which does not normalise over the classes).
    """
    if len(filters) != 3 or min(filters) < 1 or dense_units < 1 or not 0 <= dropout < 1 or n_classes < 2:
        raise UsageError("dis_net needs three positive filter counts, dense_units >= 1, 0 <= dropout < 1, >= 2 classes")
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv_{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, out, name=name)
