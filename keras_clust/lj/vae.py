"""The models of ``lj-fluid``: a convolutional VAE on density grids (2-D or 3-D), a Conv2D VAE
on distance matrices, a VAE of sorted coordinates whose encoder reads the particles as a set,
and the dense network that maps a distance matrix to coordinates.

The VAEs hold their whole loss in layers (reconstruction likelihood + ``beta`` x KL), so at
``beta = 1`` ``fit`` minimises the negative ELBO in nats per configuration; compile them with
an optimizer only and fit on the inputs alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_clust.errors import UsageError
from keras_clust.layers import BernoulliNLL, DepthToSpace, GaussianNLL, SymmetricZeroDiagonal, UpperTriangle
from keras_clust.lj.representations import CONTACT_MIN_DISTANCE, GRID_BLOCKS, GRID_LIKELIHOODS
from keras_clust.models.conv_vae import VAE
from keras_clust.models.dense_vae import dense_decoder
from keras_clust.models.vae_head import vae_head

_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_DECONV = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}
_POOL = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}


def build_grid_vae(
    cells: int,
    dim: int = 3,
    filters: Sequence[int] = (8, 16, 32),
    kernel_size: int = 3,
    latent_dim: int = 16,
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "grid_vae",
    free_bits: float = 0.0,
    blocks: str = "pool",
    likelihood: str = "bernoulli",
    init_log_var: float = -4.0,
    log_var_scale: float = 1.0,
    min_sigma: float | None = None,
    peak_power: int = 0,
) -> VAE:
    """Conv VAE for ``(cells,)*dim + (1,)`` density grids (Conv3D for ``dim`` 3).

    ``blocks`` says how each of the ``len(filters)`` blocks halves (and doubles back) the grid:

    * ``"pool"`` (the write-up's): encoder ``Conv{dim}D(f, kernel_size, same, ReLU)`` + 2x
      max-pooling per block; decoder one ``Conv{dim}DTranspose(stride 2, ReLU)`` per block with
      the filters in reverse order, then a ``Conv{dim}D(1)`` giving one logit per cell.
    * ``"strided"`` (cheaper on a CPU): encoder ``Conv{dim}D(f, kernel_size, stride 2, ReLU)``
      per block, so no convolution runs at the full resolution; decoder ``Conv{dim}DTranspose``
      (stride 2, ReLU) with the filters in reverse order and the last one giving the logits, so no
      multi-channel map is ever made at the full resolution. The transposed Convs take
      ``kernel_size`` rounded up to even, so that every output cell gets as many taps as the next.
    * ``"pool-deconv"``: the pool design's encoder and the strided design's decoder, so that the
      decoder's multi-channel stage at full resolution (the pool design's costliest) goes while
      the encoder still sees every cell before it halves.
    * ``"pool-shuffle"``: pool's encoder, and pool's decoder with its last block kept at half the
      resolution: its transposed Conv becomes a ``Conv{dim}D(filters[0], kernel_size, ReLU)``, and
      the output is a sub-pixel Conv, ``Conv{dim}D(2**dim, kernel_size)`` whose channels
      :class:`DepthToSpace` lays out as the full grid's cells. Nothing in the decoder runs at full
      resolution.

    Every design: flatten, heads ``z_mean`` and ``z_log_var``, :class:`KLDivergence` and
    :class:`Sampling`, and a ``Dense`` from the latent vector to the encoder's last feature map.
    ``likelihood`` (see :data:`GRID_LIKELIHOODS`): ``"bernoulli"`` for occupancy grids,
    :class:`BernoulliNLL` (cross-entropy summed over cells, from logits); ``"gaussian"`` for
    smooth density grids, :class:`GaussianNLL` with one learned ``sigma`` per cell (starting at
    ``log sigma^2 = init_log_var``, learned ``log_var_scale`` times faster than the decoder, see
    :class:`GaussianNLL`, never below ``min_sigma`` when given) around a linear last Conv. ``free_bits``: nats of KL per
    latent dimension the loss does not charge (:class:`KLDivergence`).

    ``peak_power`` (``"gaussian"`` only; 0: none): the likelihood also has a Gaussian over each
    cell's density raised to this power (:class:`CellPower`), one learned ``sigma`` each, around
    the decoded mean's. Two particles closer than a blob's width make a peak about 1.5 times a lone
    particle's, which the power turns into tens of times, so the -ELBO sees a close pair; the bound
    is then that of the cells and their powers taken as two observations.

    Returns:
        :class:`VAE` whose ``decoder`` maps a latent vector to occupancy probabilities
        (``"bernoulli"``) or to the density's mean (``"gaussian"``).
    """
    filters = tuple(int(f) for f in filters)
    if dim not in _CONV:
        raise UsageError(f"dim must be 2 or 3, got {dim}")
    if not filters or min(filters) < 1 or latent_dim < 1 or kernel_size < 1:
        raise UsageError("filters, kernel_size and latent_dim must be >= 1 (at least one block)")
    factor = 2 ** len(filters)
    if cells < factor or cells % factor:
        raise UsageError(f"a {cells}-cell grid cannot be halved {len(filters)} times; use a multiple of {factor}")
    if blocks not in GRID_BLOCKS:
        raise UsageError(f"blocks must be one of {', '.join(GRID_BLOCKS)}, got {blocks!r}")
    if likelihood not in GRID_LIKELIHOODS:
        raise UsageError(f"likelihood must be one of {', '.join(GRID_LIKELIHOODS)}, got {likelihood!r}")
    gaussian = likelihood == "gaussian"
    if peak_power < 0 or (peak_power and not gaussian):
        raise UsageError(f"peak_power needs the Gaussian likelihood of smooth grids and must be >= 0, got {peak_power}")
    strided = blocks == "strided"
    strided_up = blocks in ("strided", "pool-deconv")  # the decoder's design
    shuffle = blocks == "pool-shuffle"
    conv, deconv, pool = _CONV[dim], _DECONV[dim], _POOL[dim]
    grids = keras.Input((*([cells] * dim), 1), name="density_grid")
    x = grids
    stride = 2 if strided else 1
    for i, f in enumerate(filters):
        x = conv(f, kernel_size, strides=stride, padding="same", activation="relu", name=f"enc_conv_{i}")(x)
        if not strided:
            x = pool(2, name=f"enc_pool_{i}")(x)
    small = cells // factor
    x = keras.layers.Flatten(name="enc_flatten")(x)
    z_mean, z_log_var, z, _, _ = vae_head(x, latent_dim, beta, seed, free_bits=free_bits)
    encoder = keras.Model(grids, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(grids, z_mean, name=f"{name}_mean_encoder")

    latent = keras.Input((latent_dim,), name="latent")
    x = keras.layers.Dense(small**dim * filters[-1], activation="relu", name="dec_dense")(latent)
    x = keras.layers.Reshape((*([small] * dim), filters[-1]), name="dec_reshape")(x)
    ups = tuple(reversed(filters[:-1])) if strided_up else tuple(reversed(filters))
    # strided: an even kernel, so that every output cell of a stride-2 transposed Conv gets the same
    # number of taps (an odd one gives alternate cells 1 or 2 taps per axis: a checkerboard)
    up_kernel = kernel_size + kernel_size % 2 if strided_up else kernel_size
    for i, f in enumerate(ups):
        if shuffle and i == len(ups) - 1:  # the sub-pixel layer doubles last: this block keeps the size
            x = conv(f, kernel_size, padding="same", activation="relu", name=f"dec_conv_{i}")(x)
        else:
            x = deconv(f, up_kernel, strides=2, padding="same", activation="relu", name=f"dec_deconv_{i}")(x)
    last = "density_mean" if gaussian else "occupancy_logits"
    if shuffle:
        x = conv(2**dim, kernel_size, padding="same", name=f"{last}_subcells")(x)
        out = DepthToSpace(2, name=last)(x)
    elif strided_up:
        out = deconv(1, up_kernel, strides=2, padding="same", name=last)(x)
    else:
        out = conv(1, kernel_size, padding="same", name=last)(x)
    if gaussian:
        decoder = keras.Model(latent, out, name=f"{name}_decoder")
        recon = GaussianNLL(
            sigma=None,
            init_log_var=init_log_var,
            log_var_scale=log_var_scale,
            min_sigma=min_sigma,
            name="likelihood",
        )
        observed, expected = grids, decoder(encoder(grids)[2])
        if peak_power:
            power = CellPower(peak_power, name="cell_power")
            observed, expected = _with(power, observed, "grid_with_power"), _with(power, expected, "decoded_with_power")
        reconstruction = recon([observed, expected])
    else:
        decoder_logits = keras.Model(latent, out, name=f"{name}_decoder_logits")
        probabilities = keras.layers.Activation("sigmoid", name="occupancy")(decoder_logits(latent))
        decoder = keras.Model(latent, probabilities, name=f"{name}_decoder")
        reconstruction = BernoulliNLL(name="likelihood")([grids, decoder_logits(encoder(grids)[2])])
    vae = keras.Model(grids, reconstruction, name=name)
    return VAE(vae, encoder, mean_encoder, decoder)


@keras.saving.register_keras_serializable(package="keras_clust")
class CellPower(keras.layers.Layer):
    """Every value raised to the integer ``exponent`` (a density grid's cells, to make peaks stand out)."""

    def __init__(self, exponent: int, **kwargs):
        super().__init__(**kwargs)
        if int(exponent) != exponent or exponent < 1:
            raise ValueError(f"exponent must be an integer >= 1, got {exponent}")
        self.exponent = int(exponent)

    def call(self, x):
        return keras.ops.power(x, self.exponent)

    def get_config(self):
        return {**super().get_config(), "exponent": self.exponent}


def _with(transform: keras.layers.Layer, x, name: str):
    """``x`` and ``transform(x)``, each flattened, side by side: an observation and a function of
    it as one vector of features for a likelihood (the grid's cells and their powers, the
    distances and their contacts)."""
    flat = [keras.layers.Flatten(name=f"{name}_{part}")(v) for part, v in (("x", x), ("f", transform(x)))]
    return keras.layers.Concatenate(name=name)(flat)


def _padded(n: int, factor: int = 4) -> int:
    return -(-n // factor) * factor


@keras.saving.register_keras_serializable(package="keras_clust")
class PairContacts(keras.layers.Layer):
    """Distances in the matrices' units -> contacts ``(sigma / r)^6``, with ``r`` the distance
    times ``diagonal`` (sigma) floored at ``min_distance``; the Keras twin of
    :func:`keras_clust.lj.representations.contacts`."""

    def __init__(self, diagonal: float, min_distance: float = CONTACT_MIN_DISTANCE, **kwargs):
        super().__init__(**kwargs)
        if not diagonal > 0 or not min_distance > 0:
            raise ValueError(f"diagonal and min_distance must be > 0, got {diagonal} and {min_distance}")
        self.diagonal = float(diagonal)
        self.min_distance = float(min_distance)

    def call(self, x):
        r = keras.ops.maximum(x * self.diagonal, self.min_distance)
        return keras.ops.power(r, -6.0)

    def get_config(self):
        return {**super().get_config(), "diagonal": self.diagonal, "min_distance": self.min_distance}


def build_distance_vae(
    n_particles: int,
    latent_dim: int = 64,
    filters: Sequence[int] = (16, 32),
    hidden_units: int = 256,
    beta: float = 1.0,
    seed: int | None = None,
    init_log_var: float = -4.0,
    name: str = "distance_vae",
    free_bits: float = 0.0,
    contacts_diagonal: float | None = None,
) -> VAE:
    """Conv2D VAE for ``(N, N, 1)`` distance matrices scaled into [0, 1].

    Encoder: zero-pad to a multiple of 4, two ``Conv2D(f, 3, stride 2, ReLU)``, ``Dense(hidden)``,
    heads. Decoder: ``Dense(hidden)``, ``Dense`` to the encoder's last map, two
    ``Conv2DTranspose(stride 2)`` (the last with a sigmoid), crop back to ``N x N``, then
    :class:`SymmetricZeroDiagonal` so every output is shaped like a distance matrix.

    Likelihood: Gaussian over the ``N (N - 1) / 2`` distinct distances (:class:`UpperTriangle`),
    one learned ``sigma`` per distance (:class:`GaussianNLL`), so each distance counts once
    and ``beta = 1`` is the ELBO. ``free_bits``: as for :func:`build_grid_vae`.

    ``contacts_diagonal`` (the box diagonal in sigma, the matrices' unit): the likelihood also
    has a Gaussian over each distinct distance's contact ``(sigma / r)^6`` (:class:`PairContacts`),
    one learned ``sigma`` each, around the decoded distance's contact. One close pair moves one
    distance by a fraction of its spread but its contact by tens of its spread, so the -ELBO sees
    it; the decoder is pushed away from distances no configuration has. The bound is then that of
    the distances and their contacts taken as two observations.
    """
    if n_particles < 2 or latent_dim < 1 or hidden_units < 1 or len(filters) != 2 or min(filters) < 1:
        raise UsageError("the distance VAE needs N >= 2, latent_dim >= 1, hidden_units >= 1 and two filter counts")
    n, p = int(n_particles), _padded(int(n_particles))
    matrices = keras.Input((n, n, 1), name="distance_matrix")
    x = keras.layers.ZeroPadding2D(((0, p - n), (0, p - n)), name="enc_pad")(matrices)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"enc_conv_{i}")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="enc_dense")(x)
    z_mean, z_log_var, z, _, _ = vae_head(x, latent_dim, beta, seed, free_bits=free_bits)
    encoder = keras.Model(matrices, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(matrices, z_mean, name=f"{name}_mean_encoder")

    latent = keras.Input((latent_dim,), name="latent")
    x = keras.layers.Dense(hidden_units, activation="relu", name="dec_dense_0")(latent)
    x = keras.layers.Dense((p // 4) ** 2 * filters[-1], activation="relu", name="dec_dense_1")(x)
    x = keras.layers.Reshape((p // 4, p // 4, filters[-1]), name="dec_reshape")(x)
    x = keras.layers.Conv2DTranspose(filters[0], 3, strides=2, padding="same", activation="relu", name="dec_deconv_0")(
        x
    )
    x = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid", name="dec_deconv_1")(x)
    x = keras.layers.Cropping2D(((0, p - n), (0, p - n)), name="dec_crop")(x)
    out = SymmetricZeroDiagonal(name="distance_matrix_out")(x)
    decoder = keras.Model(latent, out, name=f"{name}_decoder")
    triangle = UpperTriangle(n, name="upper_triangle")
    recon = decoder(encoder(matrices)[2])
    observed, expected = triangle(matrices), triangle(recon)
    if contacts_diagonal is not None:
        contact = PairContacts(contacts_diagonal, name="contacts")
        observed, expected = (
            _with(contact, observed, "observed_with_contacts"),
            _with(contact, expected, "decoded_with_contacts"),
        )
    likelihood = GaussianNLL(sigma=None, init_log_var=init_log_var, name="likelihood")([observed, expected])
    vae = keras.Model(matrices, likelihood, name=name)
    return VAE(vae, encoder, mean_encoder, decoder)


def particle_set_features(
    coordinates, n_particles: int, dim: int, set_units: Sequence[int], hidden_units: Sequence[int]
):
    """The DeepSets encoder's body on ``coordinates`` ``(batch, N * dim)`` (a Functional-API
    tensor): the particles ``(N, dim)``, ``Dense(u, ReLU)`` on each for each entry of ``set_units``
    (``phi_<i>``), their mean and maximum side by side (``mean_pool``, ``max_pool``), then
    ``Dense(h, ReLU)`` for each entry of ``hidden_units`` (``rho_<i>``). Returns ``(batch,
    hidden_units[-1])``, what a VAE head reads."""
    x = keras.layers.Reshape((n_particles, dim), name="particles")(coordinates)
    for i, units in enumerate(set_units):
        x = keras.layers.Dense(units, activation="relu", name=f"phi_{i}")(x)
    x = keras.layers.Concatenate(name="pooled")(
        [keras.layers.GlobalAveragePooling1D(name="mean_pool")(x), keras.layers.GlobalMaxPooling1D(name="max_pool")(x)]
    )
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"rho_{i}")(x)
    return x


def build_particle_set_vae(
    n_particles: int,
    dim: int,
    latent_dim: int = 2,
    hidden_units: Sequence[int] = (45, 22),
    set_units: Sequence[int] = (64, 64),
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "set_vae",
    free_bits: float = 0.0,
) -> VAE:
    """A VAE of sorted coordinates ``(N * dim)`` whose encoder reads the particles as a set
    (DeepSets, Zaheer et al. 2017), so its code does not depend on their order.

    Encoder: the input reshaped to ``(N, dim)`` particles, ``Dense(u, ReLU)`` applied to each
    particle for each entry of ``set_units`` (``phi_<i>``), the mean and the maximum over the
    particles side by side (``mean_pool``, ``max_pool``), ``Dense(h, ReLU)`` for each entry of
    ``hidden_units`` (``rho_<i>``), then the VAE head. Decoder: the dense VAE's
    (:func:`~keras_clust.models.dense_vae.dense_decoder`), giving the coordinates in the input's
    order, scored by a :class:`GaussianNLL` with a learned sigma per coordinate (the layer
    ``likelihood``): at ``beta = 1`` the loss is the negative ELBO.
    """
    hidden_units, set_units = tuple(int(h) for h in hidden_units), tuple(int(u) for u in set_units)
    if n_particles < 1 or dim < 1 or latent_dim < 1:
        raise UsageError("the particle-set VAE needs N >= 1 particles, dim >= 1 and latent_dim >= 1")
    if not hidden_units or not set_units or min(hidden_units + set_units) < 1:
        raise UsageError("the particle-set VAE needs at least one per-particle and one hidden width, each >= 1")
    features = n_particles * dim
    inputs = keras.Input((features,), name="coordinates")
    x = particle_set_features(inputs, n_particles, dim, set_units, hidden_units)
    z_mean, z_log_var, z, _, _ = vae_head(x, latent_dim, beta, seed, free_bits=free_bits)
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(inputs, z_mean, name=f"{name}_mean_encoder")

    decoder = dense_decoder(latent_dim, hidden_units, features, name=f"{name}_decoder")
    likelihood = GaussianNLL(sigma=None, name="likelihood")([inputs, decoder(encoder(inputs)[2])])
    vae = keras.Model(inputs, likelihood, name=name)
    return VAE(vae, encoder, mean_encoder, decoder)


def build_coordinate_net(
    n_particles: int, dim: int = 3, hidden_units: Sequence[int] = (512, 256), name: str = "coordinate_net"
) -> keras.Model:
    """The write-up's "second model": a dense network from a ``(N, N, 1)`` distance matrix
    (in [0, 1]) to the ``(N, dim)`` coordinates divided by the box side (sigmoid output).

    Trained with MSE on true matrices and coordinates (particles in the matrix's order,
    nearest the origin first), then applied to decoded matrices.
    """
    hidden_units = tuple(int(h) for h in hidden_units)
    if n_particles < 2 or not hidden_units or min(hidden_units) < 1:
        raise UsageError("the coordinate network needs N >= 2 and hidden widths >= 1")
    matrices = keras.Input((n_particles, n_particles, 1), name="distance_matrix")
    x = UpperTriangle(n_particles, name="upper_triangle")(matrices)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
    x = keras.layers.Dense(n_particles * dim, activation="sigmoid", name="coordinates_flat")(x)
    out = keras.layers.Reshape((n_particles, dim), name="coordinates")(x)
    return keras.Model(matrices, out, name=name)
