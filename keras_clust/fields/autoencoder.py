"""A convolutional autoencoder for 2-D vector fields, built from one configuration.

The encoder is ``num_layers`` blocks of Conv2D (stride 1, "same" padding, any kernel size
and dilation) -> activation -> MaxPooling2D (pool = stride = ``pools[i]``); the pools
multiply to the field's side, so the last block leaves one cell with ``latent`` channels:
the embedding. The decoder mirrors it: per block, in reverse, upsampling by the same factor,
then a convolution back to the block's input channels with the block's activation (the
last one linear: the fields are real numbers). The slides' PyTorch decoder unpooled with
the encoder's max-pooling indices; that hands the decoder the positions of every maximum,
information that does not pass through the embedding, so this decoder upsamples instead.

:class:`FieldAEConfig` is the configuration (the search space of the slides: 2-5 layers,
1-12 channels, a row of the pooling table, kernels 2-24, dilations 1-5, Softplus, SELU,
SiLU or Tanh per layer); :data:`REPORT` is the slides' winner. :func:`estimate_cost`
gives a configuration's activation memory and compute before anything is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import keras

from keras_clust.errors import UsageError
from keras_clust.fields.pooling import MAX_LAYERS, MIN_LAYERS, parse_pools, pooling_table, pools_key

ACTIVATIONS = ("softplus", "selu", "silu", "tanh")
CHANNEL_RANGE = (1, 12)
KERNEL_RANGE = (2, 24)
DILATION_RANGE = (1, 5)
UPSAMPLING = ("bilinear", "nearest")


@dataclass(frozen=True)
class FieldAEConfig:
    """One architecture of the field autoencoder.

    Attributes:
        channels: Output channels of every encoder block but the last (``num_layers - 1``
            values); the last block outputs ``latent`` channels.
        pools: Pool size of every block; their product is the field's side.
        kernels: Kernel size of every block (the decoder's block ``i`` uses ``kernels[i]`` too).
        dilations: Dilation rate of every block.
        activations: Activation of every block (Keras names: softplus, selu, silu, tanh).
        latent: Channels of the one-cell embedding (the slides used 3).
    """

    channels: tuple[int, ...]
    pools: tuple[int, ...]
    kernels: tuple[int, ...]
    dilations: tuple[int, ...]
    activations: tuple[str, ...]
    latent: int = 3

    @property
    def num_layers(self) -> int:
        return len(self.pools)

    def block_channels(self, in_channels: int) -> list[tuple[int, int]]:
        """``(input, output)`` channels of every encoder block."""
        outs = [*self.channels, self.latent]
        return list(zip([in_channels, *self.channels], outs, strict=True))

    def check(self, size: int | None = None) -> FieldAEConfig:
        """Raise a one-line :class:`UsageError` unless the configuration can be built
        (for a ``size`` x ``size`` input when given); returns itself."""
        n = self.num_layers
        if not MIN_LAYERS <= n <= MAX_LAYERS:
            raise UsageError(f"the autoencoder needs {MIN_LAYERS}-{MAX_LAYERS} layers, got {n} pool sizes")
        for what, values, want in (
            ("channels", self.channels, n - 1),
            ("kernels", self.kernels, n),
            ("dilations", self.dilations, n),
            ("activations", self.activations, n),
        ):
            if len(values) != want:
                raise UsageError(f"{n} layers need {want} {what}, got {len(values)}: {list(values)}")
        for what, values, (lo, hi) in (
            ("channels", self.channels, CHANNEL_RANGE),
            ("kernel", self.kernels, KERNEL_RANGE),
            ("dilation", self.dilations, DILATION_RANGE),
        ):
            bad = [v for v in values if not lo <= int(v) <= hi]
            if bad:
                raise UsageError(f"{what} sizes must be {lo}-{hi}, got {bad}")
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad:
            raise UsageError(f"activations must be among {', '.join(ACTIVATIONS)}; got {bad}")
        if self.latent < 1:
            raise UsageError(f"latent size must be >= 1, got {self.latent}")
        if any(p < 2 for p in self.pools):
            raise UsageError(f"pool sizes must be >= 2, got {list(self.pools)}")
        if size is not None and tuple(self.pools) not in pooling_table(size, n):
            product = 1
            for p in self.pools:
                product *= p
            raise UsageError(
                f"pool sizes {pools_key(self.pools)} multiply to {product}, not the field side "
                f"{size}; pick a row of the {n}-layer table, e.g. {pools_key(pooling_table(size, n)[0])}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> FieldAEConfig:
        try:
            return cls(
                tuple(int(c) for c in d["channels"]),
                tuple(int(p) for p in d["pools"]),
                tuple(int(k) for k in d["kernels"]),
                tuple(int(x) for x in d["dilations"]),
                tuple(str(a) for a in d["activations"]),
                int(d.get("latent", 3)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"not an autoencoder configuration ({type(exc).__name__}: {exc}); it needs "
                "channels, pools, kernels, dilations, activations and latent"
            ) from None

    def describe(self) -> str:
        """One line: ``5 layers, channels 11/10/12/10/3, pools 2x2x2x2x5, kernels 9/10/13/4/11, ...``."""
        return (
            f"{self.num_layers} layers, channels {'/'.join(map(str, [*self.channels, self.latent]))}, "
            f"pools {pools_key(self.pools)}, kernels {'/'.join(map(str, self.kernels))}, dilations "
            f"{'/'.join(map(str, self.dilations))}, {'/'.join(self.activations)}"
        )


#: The slides' winner: 5 layers, channels 11/10/12/10/3, pools 2/2/2/2/5, SELU/Softplus/Tanh/Softplus/Tanh.
#: The slides name only the first kernel (9x9); the others are read off their parameter table
#: (Conv2dSame parameters 2,684 / 11,010 / 20,292 / 1,930 / 3,633 = in*out*k^2 + out give
#: k = 9, 10, 13, 4, 11). Dilations are not recoverable from the table and are taken as 1.
REPORT = FieldAEConfig(
    channels=(11, 10, 12, 10),
    pools=(2, 2, 2, 2, 5),
    kernels=(9, 10, 13, 4, 11),
    dilations=(1, 1, 1, 1, 1),
    activations=("selu", "softplus", "tanh", "softplus", "tanh"),
    latent=3,
)

#: Encoder parameters of :data:`REPORT` on 3-channel fields, as printed in the slides.
REPORT_ENCODER_PARAMS = 39_549


def config_from_params(params: Mapping, latent: int = 3) -> FieldAEConfig:
    """The configuration a search's flat parameters describe.

    Keys: ``num_layers``; ``channels_0`` ... ``channels_{n-2}``; ``pools_{n}`` (a pooling-table
    row as ``"2x2x2x2x5"``); per layer ``kernel_i``, ``dilation_i``, ``activation_i``, or one
    ``kernel``, ``dilation``, ``activation`` for every layer (stage 1 of the search).
    """
    try:
        n = int(params["num_layers"])
        channels = tuple(int(params[f"channels_{i}"]) for i in range(n - 1))
        pools = parse_pools(params[f"pools_{n}"])
    except KeyError as exc:
        raise UsageError(f"search parameters lack {exc.args[0]!r}") from None

    def per_layer(name, default):
        return tuple(params.get(f"{name}_{i}", params.get(name, default)) for i in range(n))

    return FieldAEConfig(
        channels,
        pools,
        tuple(int(k) for k in per_layer("kernel", 3)),
        tuple(int(d) for d in per_layer("dilation", 1)),
        tuple(str(a) for a in per_layer("activation", "selu")),
        int(params.get("latent", latent)),
    )


@dataclass
class FieldAE:
    """The models of a field autoencoder, sharing layers.

    Attributes:
        autoencoder: ``fields -> reconstruction`` (for a VAE: samples ``z``, KL and the
            Gaussian likelihood in its losses).
        encoder: ``fields -> embedding`` (for a VAE: ``z_mean``), deterministic: the model to
            cluster and to export.
        decoder: ``embedding -> fields``.
        config: The architecture.
    """

    autoencoder: keras.Model
    encoder: keras.Model
    decoder: keras.Model
    config: FieldAEConfig


def _conv(x, filters, kernel, dilation, activation, name):
    x = keras.layers.Conv2D(filters, kernel, strides=1, padding="same", dilation_rate=dilation, name=name)(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x) if activation else x


def build_field_encoder(
    config: FieldAEConfig, input_shape: Sequence[int], scale: float = 1.0, name: str = "field_encoder"
) -> keras.Model:
    """``fields (H, W, C) -> embedding (latent,)``: the fields divided by ``scale``, then the
    conv/pool blocks."""
    size, _, in_channels = (int(d) for d in input_shape)
    config.check(size)
    inputs = keras.Input(tuple(input_shape), name="fields")
    x = keras.layers.Rescaling(1.0 / scale, name="scale_in")(inputs)
    for i, (_, out) in enumerate(config.block_channels(in_channels)):
        x = _conv(x, out, config.kernels[i], config.dilations[i], config.activations[i], f"enc_conv{i}")
        x = keras.layers.MaxPooling2D(config.pools[i], name=f"enc_pool{i}")(x)
    code = keras.layers.Flatten(name="embedding")(x)
    return keras.Model(inputs, code, name=name)


def build_field_decoder(
    config: FieldAEConfig,
    output_shape: Sequence[int],
    upsampling: str = "bilinear",
    scale: float = 1.0,
    name: str = "field_decoder",
) -> keras.Model:
    """``embedding (latent,) -> fields (H, W, C)``: the encoder's blocks mirrored, the output
    multiplied by ``scale``."""
    size, _, out_channels = (int(d) for d in output_shape)
    config.check(size)
    if upsampling not in UPSAMPLING:
        raise UsageError(f"upsampling must be one of {', '.join(UPSAMPLING)}, got {upsampling!r}")
    latent = keras.Input((config.latent,), name="embedding")
    x = keras.layers.Reshape((1, 1, config.latent), name="dec_reshape")(latent)
    blocks = config.block_channels(out_channels)
    for i in reversed(range(config.num_layers)):
        x = keras.layers.UpSampling2D(config.pools[i], interpolation=upsampling, name=f"dec_up{i}")(x)
        activation = config.activations[i] if i > 0 else None  # the output is linear
        x = _conv(x, blocks[i][0], config.kernels[i], config.dilations[i], activation, f"dec_conv{i}")
    x = keras.layers.Rescaling(scale, name="scale_out")(x)
    return keras.Model(latent, x, name=name)


def build_field_ae(
    config: FieldAEConfig,
    input_shape: Sequence[int] = (80, 80, 3),
    *,
    loss: str = "mse",
    weight_floor: float = 0.1,
    learning_rate: float = 1e-3,
    vae: bool = False,
    beta: float = 1.0,
    upsampling: str = "bilinear",
    scale: float = 1.0,
    seed: int | None = None,
    name: str = "field_ae",
) -> FieldAE:
    """Build and compile the autoencoder of ``config`` for fields of ``input_shape``.

    Args:
        config: The architecture (checked against ``input_shape``).
        input_shape: ``(H, W, C)``, H == W.
        loss: ``mse`` or ``weighted_mse`` (:class:`~keras_clust.fields.loss.MagnitudeWeightedMSE`).
            A VAE is trained on its negative ELBO instead (Gaussian likelihood with a learned
            variance per feature, summed over features, plus ``beta`` times the KL), with the
            plain MSE as a metric.
        weight_floor: ``floor`` of the weighted MSE.
        learning_rate: Adam's step size.
        vae: Add ``z_mean``/``z_log_var`` heads of the latent size (Dense on the one-cell
            embedding), :class:`~keras_clust.layers.KLDivergence` and
            :class:`~keras_clust.layers.Sampling`.
        beta: KL weight of the VAE.
        upsampling: ``bilinear`` or ``nearest`` upsampling in the decoder.
        scale: The encoder divides its input by it and the decoder multiplies its output by
            it (e.g. the training fields' RMS), so the models take and give fields in their
            own units while the layers see values of order one.
        seed: Seed of the VAE's sampling layer.
        name: Name of the autoencoder model.

    Returns:
        The compiled :class:`FieldAE`; its ``encoder`` gives the deterministic embedding.
    """
    from keras_clust.fields.loss import MagnitudeWeightedMSE
    from keras_clust.layers import GaussianNLL
    from keras_clust.models.vae_head import vae_head

    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or input_shape[0] != input_shape[1]:
        raise UsageError(f"fields must be (H, W, C) with H == W, got {input_shape}")
    if loss not in ("mse", "weighted_mse"):
        raise UsageError(f"loss must be mse or weighted_mse, got {loss!r}")
    if not scale > 0:
        raise UsageError(f"scale must be > 0, got {scale}")
    conv = build_field_encoder(config, input_shape, scale, name=f"{name}_conv_encoder")
    decoder = build_field_decoder(config, input_shape, upsampling, scale, name=f"{name}_decoder")
    inputs = keras.Input(input_shape, name="fields")
    features = conv(inputs)
    optimizer = keras.optimizers.Adam(learning_rate)
    if not vae:
        outputs = decoder(features)
        model = keras.Model(inputs, outputs, name=name)
        encoder = keras.Model(inputs, features, name=f"{name}_encoder")
        model.compile(
            optimizer=optimizer,
            loss=MagnitudeWeightedMSE(weight_floor) if loss == "weighted_mse" else "mse",
            metrics=[keras.metrics.MeanSquaredError(name="mse")],
        )
        return FieldAE(model, encoder, decoder, config)
    head = vae_head(features, config.latent, beta, seed)
    reconstruction = decoder(head.z)
    outputs = GaussianNLL(name="likelihood")([inputs, reconstruction])
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=optimizer, loss=None)
    encoder = keras.Model(inputs, head.z_mean_kl, name=f"{name}_encoder")
    return FieldAE(model, encoder, decoder, config)


@dataclass(frozen=True)
class CostEstimate:
    """What a configuration costs, estimated from its shapes alone.

    Attributes:
        activation_bytes: Training memory of the activations for one batch: every
            layer output of encoder and decoder kept for the backward pass, plus as much
            again for their gradients (float32).
        parameter_bytes: Weights, their gradients and Adam's two moments (float32).
        macs: Multiply-accumulates of one forward pass of one field (the convolutions).
        parameters: Trainable parameters of encoder and decoder.
    """

    activation_bytes: int
    parameter_bytes: int
    macs: int
    parameters: int

    @property
    def total_bytes(self) -> int:
        return self.activation_bytes + self.parameter_bytes

    @property
    def train_gmacs_per_field(self) -> float:
        """Forward + backward (about 3x the forward) per field, in 10^9 multiply-accumulates."""
        return 3 * self.macs / 1e9


def estimate_cost(config: FieldAEConfig, input_shape: Sequence[int], batch_size: int) -> CostEstimate:
    """Estimate the memory and compute of training ``config`` on ``input_shape`` fields.

    Encoder block ``i`` at side ``s`` stores its conv output and activation (``s^2 * out``
    each) and its pooled output (``(s / p)^2 * out``); decoder block ``i`` stores its
    upsampled input, conv output and activation at side ``s``. Each stored value has a
    gradient of the same size in the backward pass. A convolution costs
    ``s^2 * k^2 * in * out`` multiply-accumulates.
    """
    size, _, c = (int(d) for d in input_shape)
    config.check(size)
    stored, macs, params = size * size * c, 0, 0  # the input itself
    side = size
    for i, (cin, cout) in enumerate(config.block_channels(c)):
        k2 = config.kernels[i] ** 2
        stored += 2 * side * side * cout
        macs += side * side * k2 * cin * cout
        params += k2 * cin * cout + cout
        side //= config.pools[i]
        stored += side * side * cout
    for i in reversed(range(config.num_layers)):
        cin, cout = config.block_channels(c)[i]  # the decoder maps cout -> cin
        side *= config.pools[i]
        k2 = config.kernels[i] ** 2
        stored += side * side * cout + 2 * side * side * cin
        macs += side * side * k2 * cout * cin
        params += k2 * cout * cin + cin
    return CostEstimate(
        activation_bytes=int(2 * 4 * stored * batch_size),
        parameter_bytes=16 * params,
        macs=int(macs),
        parameters=params,
    )
