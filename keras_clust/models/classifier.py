"""Transfer learning: a pre-trained encoder with a small classification head, and its training setup.

Fine-tuning uses a lower learning rate for the pre-trained encoder than for the new head.
Keras 3 has no per-layer learning rate, so :class:`LayerwiseAdam` is Adam whose step is
multiplied per variable by a factor looked up by the variable's path (the encoder's
variables get e.g. 0.1). It is an ordinary optimizer: ``compile``/``fit`` use it, a
learning-rate schedule drives its base rate (the head's), and it is stored in and
restored from ``.keras`` files. Scaling the encoder's *gradients* instead would not work
with Adam, which normalises each step by the gradient's own size.
"""

from __future__ import annotations

import keras

from keras_clust.errors import UsageError

SCHEDULES = ("cosine", "constant")


def build_transfer_classifier(
    encoder: keras.Model, n_classes: int = 10, hidden_units: int = 64, freeze: bool = True, name: str = "classifier"
) -> keras.Model:
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


@keras.saving.register_keras_serializable(package="keras_clust")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam with a learning-rate multiplier per variable.

    Args:
        learning_rate: The base rate (a float or a ``LearningRateSchedule``).
        lr_multipliers: ``{variable path: factor}``; the step of each named variable is
            ``factor`` times Adam's, every other variable takes the base rate. A path that
            is not among the trained variables is an error (a typo would silently do nothing).
        **kwargs: Further ``keras.optimizers.Adam`` arguments.
    """

    def __init__(self, learning_rate=1e-3, lr_multipliers: dict[str, float] | None = None, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        bad = {k: v for k, v in self.lr_multipliers.items() if not v >= 0}
        if bad:
            raise UsageError(f"learning-rate multipliers must be >= 0, got {bad}")
        self._lr_factors: list[float] = []

    def build(self, variables):
        if self.built:
            return
        paths = [v.path for v in variables]
        unknown = sorted(set(self.lr_multipliers) - set(paths))
        if unknown:
            raise UsageError(f"learning-rate multipliers name variables that are not trained: {unknown}")
        super().build(variables)
        self._lr_factors = [self.lr_multipliers.get(p, 1.0) for p in paths]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._lr_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "lr_multipliers": dict(self.lr_multipliers)}


def encoder_lr_multipliers(classifier: keras.Model, factor: float) -> dict[str, float]:
    """``{path: factor}`` for the trainable variables of the classifier's encoder
    (layer ``f"{classifier.name}_encoder"``); empty when it is frozen or ``factor`` is 1."""
    encoder = classifier.get_layer(f"{classifier.name}_encoder")
    if factor == 1.0:
        return {}
    return {v.path: float(factor) for v in encoder.trainable_variables}


def compile_transfer_classifier(
    classifier: keras.Model,
    learning_rate: float = 1e-3,
    encoder_lr_factor: float = 0.1,
    schedule: str = "cosine",
    decay_steps: int | None = None,
) -> keras.Model:
    """Compile a transfer classifier: NLL loss, accuracy, :class:`LayerwiseAdam`.

    Args:
        classifier: A model from :func:`build_transfer_classifier`.
        learning_rate: The head's (initial) learning rate.
        encoder_lr_factor: The encoder's learning rate as a share of the head's (when it is
            not frozen): 0.1 gives the encoder a tenth of the head's steps.
        schedule: ``cosine`` (decay from ``learning_rate`` to 0 over ``decay_steps``) or ``constant``.
        decay_steps: Optimizer steps of the whole training (epochs x batches per epoch);
            needed for ``cosine``.

    Returns:
        The classifier, compiled.
    """
    if not (learning_rate > 0 and encoder_lr_factor >= 0):
        raise UsageError(f"need learning_rate > 0 and encoder_lr_factor >= 0, got {learning_rate}, {encoder_lr_factor}")
    if schedule == "cosine":
        if not decay_steps or decay_steps < 1:
            raise UsageError("a cosine schedule needs decay_steps >= 1 (epochs x batches per epoch)")
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, int(decay_steps))
    elif schedule == "constant":
        rate = learning_rate
    else:
        raise UsageError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    optimizer = LayerwiseAdam(rate, lr_multipliers=encoder_lr_multipliers(classifier, encoder_lr_factor))
    nll = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # on log-probabilities: the NLL
    classifier.compile(optimizer=optimizer, loss=nll, metrics=["accuracy"])
    return classifier


def best_val_accuracy(patience: int) -> keras.callbacks.EarlyStopping:
    """Early stopping on validation accuracy that restores the best epoch's weights at the end
    of training (whether or not it stopped early); ``patience`` epochs without improvement."""
    if patience < 1:
        raise UsageError(f"patience must be >= 1, got {patience}")
    return keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=int(patience), restore_best_weights=True
    )
