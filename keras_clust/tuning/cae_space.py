"""The Fashion-MNIST report's CAE search space and the builder both engines call."""

from __future__ import annotations

import keras

from keras_clust.models.conv_ae import build_conv_autoencoder
from keras_clust.training import make_optimizer
from keras_clust.tuning.space import SearchSpace, choice_param, float_param, int_param

#: encoded_space_dim, n_channels, optimizer, learning rate and weight decay (log scale),
#: and momentum only for SGD, as in the report.
CAE_SPACE = SearchSpace(
    (
        int_param("encoded_space_dim", 4, 32),
        choice_param("n_channels", (4, 8, 16)),
        choice_param("optimizer", ("adam", "sgd")),
        float_param("learning_rate", 1e-4, 1e-1, log=True),
        float_param("weight_decay", 1e-6, 1e-3, log=True),
        float_param("momentum", 0.5, 0.99, when=("optimizer", ("sgd",))),
    )
)


def build_compiled_cae(
    encoded_space_dim: int,
    n_channels: int,
    optimizer: str,
    learning_rate: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    name: str = "cae",
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """The report's CAE compiled with MSE and the chosen optimizer.

    The encoder and decoder are reachable as ``model.get_layer(f"{name}_encoder")`` and
    ``model.get_layer(f"{name}_decoder")``.
    """
    ae = build_conv_autoencoder(int(n_channels), int(encoded_space_dim), name=name)
    ae.autoencoder.compile(
        optimizer=make_optimizer(optimizer, learning_rate, weight_decay, momentum),
        loss="mse",
        jit_compile=jit_compile,
    )
    return ae.autoencoder
