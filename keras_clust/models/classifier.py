"""Transfer learning: a pre-trained encoder with a small classification head."""

from __future__ import annotations

import keras

from keras_clust.errors import UsageError


def build_transfer_classifier(encoder: keras.Model, n_classes: int = 10, hidden_units: int = 64,
                              freeze: bool = True, name: str = "classifier") -> keras.Model:  # fmt: skip
    """``encoder -> Dense(hidden, ReLU) -> Dense(n_classes) -> log-softmax`` (the report's head).

    The encoder is copied (same weights), so the frozen and the fine-tuned classifier built
    from one encoder do not share variables. Train with
    ``SparseCategoricalCrossentropy(from_logits=True)``: on log-probabilities it equals the
    negative log-likelihood, as log-softmax is idempotent.

    Args:
        encoder: A built single-input encoder model.
        n_classes: Number of classes.
        hidden_units: Width of the hidden head layer.
        freeze: Keep the encoder's weights fixed (only the head trains).
        name: Model name.

    Returns:
        Uncompiled model ``images -> log_probs``; its encoder is layer ``f"{name}_encoder"``.
    """
    if n_classes < 2 or hidden_units < 1:
        raise UsageError(f"need n_classes >= 2 and hidden_units >= 1, got {n_classes}, {hidden_units}")
    base = keras.models.clone_model(encoder)
    base.set_weights(encoder.get_weights())
    base.name = f"{name}_encoder"
    base.trainable = not freeze
    inputs = keras.Input(encoder.input_shape[1:], name="images")
    x = base(inputs, training=False if freeze else None)
    x = keras.layers.Dense(hidden_units, activation="relu", name="head_dense")(x)
    x = keras.layers.Dense(n_classes, name="head_logits")(x)
    out = keras.layers.Activation("log_softmax", name="log_probs")(x)
    return keras.Model(inputs, out, name=name)


def probability_model(classifier: keras.Model) -> keras.Model:
    """``images -> [probabilities, log_probabilities]`` for serving (no new weights)."""
    log_probs = classifier.output
    probs = keras.layers.Activation("exponential", name="probabilities")(log_probs)
    return keras.Model(classifier.inputs, [probs, log_probs], name=f"{classifier.name}_serving")
