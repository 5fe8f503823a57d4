"""The two-stage search space of the vector-field autoencoder (the slides' space, split in two).

Stage 1 picks the shape: ``num_layers`` (2-5, as deep as the field side allows), the
channels of each hidden layer (1-12) and a row of the pooling table for that depth
(:func:`keras_clust.fields.pooling.pooling_table`), with kernel 3, dilation 1 and one
activation everywhere. Stage 2 fixes stage 1's best shape and picks, per layer, the kernel
size (2-24), the dilation (1-5) and the activation (Softplus, SELU, SiLU, Tanh). Splitting
the space is the slides' answer to its size: every parameter of stage 2 exists once per
layer, so searching all at once multiplies two large spaces.

Every value either space can propose builds: the pooling rows are conditional on the depth,
and the per-layer parameters of stage 2 exist for exactly the fixed depth.
"""

from __future__ import annotations

from collections.abc import Mapping

from keras_clust.errors import UsageError
from keras_clust.fields.autoencoder import (
    ACTIVATIONS,
    CHANNEL_RANGE,
    DILATION_RANGE,
    KERNEL_RANGE,
    FieldAEConfig,
    config_from_params,
)
from keras_clust.fields.pooling import MAX_LAYERS, MIN_LAYERS, max_depth, pooling_table, pools_key
from keras_clust.tuning.space import SearchSpace, choice_param, int_param

STAGE1_FIXED = {"kernel": 3, "dilation": 1}


def stage1_space(size: int, latent: int = 3, activation: str = "selu") -> SearchSpace:
    """Depth, channels and pooling for ``size`` x ``size`` fields; kernel 3, dilation 1, one activation."""
    if activation not in ACTIVATIONS:
        raise UsageError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    deepest = min(MAX_LAYERS, max_depth(size))
    if deepest < MIN_LAYERS:
        raise UsageError(f"fields of side {size} cannot be pooled to 1 in {MIN_LAYERS}+ layers; use a side such as 80")
    params = [int_param("num_layers", MIN_LAYERS, deepest)]
    for i in range(deepest - 1):
        deep_enough = tuple(range(i + 2, deepest + 1))
        params.append(int_param(f"channels_{i}", *CHANNEL_RANGE, when=("num_layers", deep_enough)))
    for n in range(MIN_LAYERS, deepest + 1):
        rows = [pools_key(r) for r in pooling_table(size, n)]
        params.append(choice_param(f"pools_{n}", rows, when=("num_layers", (n,))))
    return SearchSpace(tuple(params), fixed={**STAGE1_FIXED, "activation": activation, "latent": latent})


def stage2_space(shape: Mapping, latent: int = 3) -> SearchSpace:
    """Per-layer kernel, dilation and activation for the fixed shape of stage 1 (its flat parameters)."""
    n = int(shape["num_layers"])
    keep = {k: v for k, v in shape.items() if k == "num_layers" or k.startswith(("channels_", "pools_"))}
    params = []
    for i in range(n):
        params += [
            int_param(f"kernel_{i}", *KERNEL_RANGE),
            int_param(f"dilation_{i}", *DILATION_RANGE),
            choice_param(f"activation_{i}", ACTIVATIONS),
        ]
    return SearchSpace(tuple(params), fixed={**keep, "latent": latent})


def stage1_params(config: FieldAEConfig) -> dict:
    """A configuration's stage-1 parameters (to enqueue a known shape, e.g. the slides')."""
    n = config.num_layers
    return {
        "num_layers": n,
        **{f"channels_{i}": c for i, c in enumerate(config.channels)},
        f"pools_{n}": pools_key(config.pools),
    }


def stage2_params(config: FieldAEConfig) -> dict:
    """A configuration's stage-2 parameters."""
    out = {}
    for i in range(config.num_layers):
        out.update(
            {
                f"kernel_{i}": config.kernels[i],
                f"dilation_{i}": config.dilations[i],
                f"activation_{i}": config.activations[i],
            }
        )
    return out


def space_config(kwargs: Mapping) -> FieldAEConfig:
    """The configuration of a search's builder keyword arguments (active values + fixed)."""
    return config_from_params(kwargs, int(kwargs.get("latent", 3)))
