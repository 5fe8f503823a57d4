"""A coordinate VAE whose decoder keeps particles apart: the pair decoder (issue 24, item 2).

The run's coordinate VAE decodes each of the 90 sorted coordinates on its own (a Gaussian per
coordinate), so nothing keeps two particles apart and its samples overlap. The pair decoder draws
the particles one at a time, lowest first, each given the code and the particles drawn before it:

* the heights by a MADE (Germain et al., 2015: masked dense layers, each also fed the code) whose
  output per height is a mixture of Gaussians (:class:`MixtureNLL`);
* then each particle's position in the plane as a cell of a lattice, a sub-cell within it, and
  uniform within that (:class:`~keras_clust.lj.pair_lattice.PairLattice`), with logits: a
  background from the code and the particle's height, less a pair potential summed over the
  particles drawn before it (:class:`PairPotential`): learned repulsive hinges, and optionally
  a fixed hard core no training particle is inside.

The encoder is the run's DeepSets encoder (:func:`~keras_clust.lj.vae.particle_set_features`).
The likelihood is a density in the sorted coordinates' box units, as the Gaussian decoder's is,
so the two negative ELBOs compare. The model reads the lattice's pair sums beside the coordinates
(:meth:`~keras_clust.lj.pair_lattice.PairLattice.features`), computed once per configuration: the
distances do not depend on any weight, only the potential's strengths do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from keras_clust.errors import UsageError
from keras_clust.lj.pair_lattice import PairLattice
from keras_clust.lj.vae import particle_set_features
from keras_clust.models.vae_head import vae_head

LOG_2PI = float(np.log(2.0 * np.pi))
CORE_SLOPE = 1000.0
"""Nats per sigma inside the hard core: 0.01 sigma in costs 10 nats."""
MIN_LOG_SCALE = -7.0
"""Floor of a mixture component's log scale (box units)."""


@keras.saving.register_keras_serializable(package="keras_clust")
class MaskedDense(keras.layers.Layer):
    """``Dense`` whose kernel is masked by degrees: MADE's autoregressive wiring. Output ``j`` sees
    input ``i`` when ``out_degrees[j] >= in_degrees[i]`` (``strict``: ``>``, for the outputs, so
    that no input reaches its own parameters)."""

    def __init__(self, in_degrees, out_degrees, strict: bool = False, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.in_degrees = [int(d) for d in in_degrees]
        self.out_degrees = [int(d) for d in out_degrees]
        self.strict = bool(strict)
        self.activation = keras.activations.get(activation)

    def mask(self) -> np.ndarray:
        """``(inputs, units)`` 0/1."""
        i, o = np.asarray(self.in_degrees)[:, None], np.asarray(self.out_degrees)[None, :]
        return ((o > i) if self.strict else (o >= i)).astype(np.float32)

    def build(self, input_shape):
        shape = (len(self.in_degrees), len(self.out_degrees))
        self.kernel = self.add_weight(shape=shape, initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(shape[1],), initializer="zeros", name="bias")
        self._mask = keras.ops.convert_to_tensor(self.mask(), dtype=self.kernel.dtype)

    def call(self, x):
        return self.activation(keras.ops.matmul(x, self.kernel * self._mask) + self.bias)

    def get_config(self):
        return {
            **super().get_config(),
            "in_degrees": self.in_degrees,
            "out_degrees": self.out_degrees,
            "strict": self.strict,
            "activation": keras.activations.serialize(self.activation),
        }


def split_mixture(params, components: int):
    """``(B, D * 3 components)`` -> means, log scales (floored at :data:`MIN_LOG_SCALE`) and
    mixture logits, each ``(B, D, components)``."""
    p = keras.ops.reshape(params, (keras.ops.shape(params)[0], -1, 3 * components))
    mu, log_s, logits = p[..., :components], p[..., components : 2 * components], p[..., 2 * components :]
    return mu, keras.ops.maximum(log_s, MIN_LOG_SCALE), logits


@keras.saving.register_keras_serializable(package="keras_clust")
class MixtureNLL(keras.layers.Layer):
    """Takes ``[x (B, D), params (B, D * 3 components)]`` and returns
    ``-sum_d log sum_k pi_dk N(x_d; mu_dk, s_dk)`` per sample (:func:`split_mixture`), adding its
    batch mean to the losses."""

    def __init__(self, components: int, **kwargs):
        super().__init__(**kwargs)
        self.components = int(components)

    def call(self, inputs):
        x, params = inputs
        mu, log_s, logits = split_mixture(params, self.components)
        x = keras.ops.expand_dims(x, -1)
        log_n = -0.5 * (LOG_2PI + 2.0 * log_s + keras.ops.square((x - mu) / keras.ops.exp(log_s)))
        log_pi = logits - keras.ops.logsumexp(logits, axis=-1, keepdims=True)
        nll = -keras.ops.sum(keras.ops.logsumexp(log_pi + log_n, axis=-1), axis=-1)
        self.add_loss(keras.ops.mean(nll))
        return nll

    def get_config(self):
        return {**super().get_config(), "components": self.components}


@keras.saving.register_keras_serializable(package="keras_clust")
class PairPotential(keras.layers.Layer):
    """Logits of each particle's cell: ``background - sum_m c_m S_m``, where ``S_m`` are the
    lattice's pair sums (:meth:`PairLattice.features`) and ``c_m`` the ``n_hinges`` hinges'
    strengths, ``softplus`` of learned weights (so the potential is repulsive; ``signed``: the
    weights themselves, so that it may have a well), then ``core_slope``
    (default :data:`CORE_SLOPE`) for the core's sum if ``core``. ``levels``: 1, one set of
    strengths for the cells and the sub-cells; 2, a set for each. Takes ``[background (B, N, cells),
    cell sums (B, N, cells, sums), sub-cell sums (B, N, sub_cells, sums)]`` and returns the cells'
    logits and the sub-cells' (the potential alone: uniform within a cell but for it)."""

    def __init__(
        self,
        n_hinges: int,
        core: bool = False,
        core_slope: float = CORE_SLOPE,
        signed: bool = False,
        levels: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_hinges, self.core, self.core_slope = int(n_hinges), bool(core), float(core_slope)
        self.signed, self.levels = bool(signed), int(levels)
        if self.levels not in (1, 2):
            raise UsageError(f"the pair potential has 1 or 2 levels of strengths, not {levels}")

    def build(self, input_shape):
        shape = (self.n_hinges,) if self.levels == 1 else (self.levels, self.n_hinges)
        self.w = self.add_weight(shape=shape, initializer="zeros", name="pair_weights")

    def strengths(self, level: int = 0):
        """The weight of each pair sum at ``level`` (0: cells, 1: sub-cells), ``(sums,)``."""
        w = self.w if self.levels == 1 else self.w[level]
        c = w if self.signed else keras.ops.softplus(w)
        if self.core:
            c = keras.ops.concatenate([c, keras.ops.convert_to_tensor([self.core_slope], dtype=c.dtype)])
        return c

    def call(self, inputs):
        background, cell_sums, sub_sums = inputs
        cells = background - keras.ops.tensordot(cell_sums, self.strengths(0), axes=1)
        return cells, -keras.ops.tensordot(sub_sums, self.strengths(1), axes=1)

    def get_config(self):
        return {
            **super().get_config(),
            "n_hinges": self.n_hinges,
            "core": self.core,
            "core_slope": self.core_slope,
            "signed": self.signed,
            "levels": self.levels,
        }


@keras.saving.register_keras_serializable(package="keras_clust")
class CellNLL(keras.layers.Layer):
    """``-sum_k log p(plane position of particle k)``, p uniform within the sub-cell the logits
    pick, as a density in box units (comparable with a Gaussian's). Takes ``[positions in the
    plane (B, N, plane), cell logits (B, N, cells), sub-cell logits (B, N, sub_cells)]``; adds the
    batch mean to the losses."""

    def __init__(self, grid: int, sub: int, **kwargs):
        super().__init__(**kwargs)
        self.grid, self.sub = int(grid), int(sub)

    @staticmethod
    def _picked(logits, index):
        log_p = logits - keras.ops.logsumexp(logits, axis=-1, keepdims=True)
        return keras.ops.take_along_axis(log_p, index[..., None], axis=-1)[..., 0]

    def _flat(self, index, size):
        flat = index[..., 0]
        for a in range(1, index.shape[-1]):
            flat = flat * size + index[..., a]
        return keras.ops.cast(flat, "int32")

    def call(self, inputs):
        xy, logits, sub_logits = inputs
        cell = keras.ops.clip(keras.ops.floor(xy * self.grid), 0, self.grid - 1)
        sub = keras.ops.clip(keras.ops.floor((xy * self.grid - cell) * self.sub), 0, self.sub - 1)
        log_p = self._picked(logits, self._flat(cell, self.grid)) + self._picked(sub_logits, self._flat(sub, self.sub))
        n, plane = xy.shape[1], xy.shape[2]
        nll = -keras.ops.sum(log_p, axis=-1) - n * plane * float(np.log(self.grid * self.sub))
        self.add_loss(keras.ops.mean(nll))
        return nll

    def get_config(self):
        return {**super().get_config(), "grid": self.grid, "sub": self.sub}


def made(code, given, degrees: np.ndarray, units: Sequence[int], components: int, rng, prefix: str):
    """A MADE over ``given`` ``(B, D)`` whose inputs have ``degrees`` (1-based draw order), every
    layer also fed the ``code``: mixture parameters ``(B, D * 3 components)`` of each input given
    the inputs of lower degree. Hidden degrees are drawn from ``rng``."""
    features = len(degrees)
    h, prev = given, np.asarray(degrees)
    for i, width in enumerate(units):
        m = rng.integers(1, max(features, 2), size=width)
        h = MaskedDense(prev, m, name=f"{prefix}made_{i}")(h)
        h = keras.layers.Add(name=f"{prefix}made_{i}_add")(
            [h, keras.layers.Dense(width, name=f"{prefix}cond_{i}")(code)]
        )
        h = keras.layers.Activation("relu", name=f"{prefix}made_{i}_relu")(h)
        prev = m
    out_degrees = np.repeat(degrees, 3 * components)
    params = MaskedDense(prev, out_degrees, strict=True, name=f"{prefix}mixture")(h)
    cond = keras.layers.Dense(features * 3 * components, name=f"{prefix}cond_out")(code)
    return keras.layers.Add(name=f"{prefix}mixture_add")([params, cond])


@dataclass
class PairVAE:
    """The models of a pair-decoder VAE, sharing layers.

    Attributes:
        vae: ``[coordinates, cell sums, sub-cell sums] -> -log p(x | z)`` per configuration, ``z``
            sampled; the KL is in its losses, so ``fit`` minimises the negative ELBO.
        encoder: ``coordinates -> [z_mean, z_log_var, z]``.
        mean_encoder: ``coordinates -> z_mean``.
        likelihood: ``[z, coordinates, cell sums, sub-cell sums] -> -log p(x | z)``.
        heights: ``[z, heights (B, N)] ->`` the heights' mixture parameters.
        background: ``[z, heights] ->`` the cells' background logits ``(B, N, cells)``.
        potential: The :class:`PairPotential` layer.
        lattice: The lattice the sums were computed on.
        components: Mixture components per height.
    """

    vae: keras.Model
    encoder: keras.Model
    mean_encoder: keras.Model
    likelihood: keras.Model
    heights: keras.Model
    background: keras.Model
    potential: PairPotential
    lattice: PairLattice
    components: int

    def inputs(self, coords: np.ndarray) -> list[np.ndarray]:
        """What :attr:`vae` reads for sorted coordinates ``(n, N * dim)``: them and their sums."""
        cell, sub = self.lattice.features(coords)
        return [np.asarray(coords, np.float32), cell, sub]


def build_pair_vae(
    lattice: PairLattice,
    latent_dim: int = 2,
    set_units: Sequence[int] = (64, 64),
    hidden_units: Sequence[int] = (45, 22),
    made_units: Sequence[int] = (256, 256),
    components: int = 8,
    background_units: Sequence[int] = (128, 128),
    free_bits: float = 0.25,
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "pair_vae",
    signed_hinges: bool = False,
    level_strengths: bool = False,
) -> PairVAE:
    """A VAE of sorted coordinates (by height, box units) with the DeepSets encoder and the pair
    decoder on ``lattice`` (see the module's docstring). ``made_units``: the heights' MADE;
    ``background_units``: the ``Dense(ReLU)`` layers from the code and a particle's height to its
    cells' background logits; ``seed`` seeds the sampling layer and the MADE's hidden degrees;
    ``signed_hinges``: the potential's hinges may attract as well as repel; ``level_strengths``: the
    sub-cells weigh their sums with strengths of their own (:class:`PairPotential`'s ``levels``)."""
    big_n, dim, plane = lattice.n_particles, lattice.dim, lattice.plane
    if big_n < 2 or dim < 2 or latent_dim < 1 or components < 1:
        raise UsageError("the pair decoder needs N >= 2 particles, dim >= 2, latent_dim >= 1 and components >= 1")
    if lattice.window < 1 or lattice.grid < 1 or lattice.sub < 1:
        raise UsageError("the pair decoder's window, grid and sub-grid must be >= 1")
    features = big_n * dim
    rng = np.random.default_rng(seed)
    coords = keras.Input((features,), name="coordinates")
    cell_sums = keras.Input((big_n, lattice.cells, lattice.sums), name="cell_sums")
    sub_sums = keras.Input((big_n, lattice.sub_cells, lattice.sums), name="sub_cell_sums")
    body = particle_set_features(coords, big_n, dim, set_units, hidden_units)
    z_mean, z_log_var, z, _, _ = vae_head(body, latent_dim, beta, seed, free_bits=free_bits)
    encoder = keras.Model(coords, [z_mean, z_log_var, z], name=f"{name}_encoder")
    mean_encoder = keras.Model(coords, z_mean, name=f"{name}_mean_encoder")

    code = keras.Input((latent_dim,), name="latent")
    heights_in = keras.Input((big_n,), name="heights")
    h_params = made(code, heights_in, np.arange(1, big_n + 1), made_units, components, rng, "h_")
    heights = keras.Model([code, heights_in], h_params, name=f"{name}_heights")
    b = keras.layers.Concatenate(name="code_and_height")(
        [keras.layers.RepeatVector(big_n, name="code_per_particle")(code), keras.layers.Reshape((big_n, 1))(heights_in)]
    )
    for i, width in enumerate(background_units):
        b = keras.layers.Dense(int(width), activation="relu", name=f"background_{i}")(b)
    b = keras.layers.Dense(lattice.cells, name="background")(b)
    background = keras.Model([code, heights_in], b, name=f"{name}_background")
    potential = PairPotential(
        lattice.learned,
        lattice.core is not None,
        signed=signed_hinges,
        levels=2 if level_strengths else 1,
        name="pair_potential",
    )

    given = keras.Input((features,), name="given")
    given_cells = keras.Input((big_n, lattice.cells, lattice.sums), name="given_cell_sums")
    given_subs = keras.Input((big_n, lattice.sub_cells, lattice.sums), name="given_sub_cell_sums")
    particles = keras.layers.Reshape((big_n, dim), name="given_particles")(given)
    h, xy = particles[..., plane], particles[..., :plane]
    logits, sub_logits = potential([background([code, h]), given_cells, given_subs])
    nll = keras.layers.Add(name="nll")(
        [
            MixtureNLL(components, name="height_nll")([h, heights([code, h])]),
            CellNLL(lattice.grid, lattice.sub, name="plane_nll")([xy, logits, sub_logits]),
        ]
    )
    likelihood = keras.Model([code, given, given_cells, given_subs], nll, name=f"{name}_likelihood")
    vae = keras.Model(
        [coords, cell_sums, sub_sums], likelihood([encoder(coords)[2], coords, cell_sums, sub_sums]), name=name
    )
    return PairVAE(vae, encoder, mean_encoder, likelihood, heights, background, potential, lattice, components)


def _categorical(logits: np.ndarray, rng) -> np.ndarray:
    """One index per row of ``logits`` ``(B, K)``."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


def draw_mixture(params, k: int, components: int, rng) -> np.ndarray:
    """One draw per row of input ``k``'s Gaussian mixture (:func:`split_mixture` of ``params``),
    clipped into ``[0, 1]``, from ``rng``."""
    mu, log_s, logits = (np.asarray(v, np.float64)[:, k] for v in split_mixture(params, components))
    pick = _categorical(logits, rng)
    rows = np.arange(len(pick))
    return np.clip(mu[rows, pick] + np.exp(log_s[rows, pick]) * rng.standard_normal(len(pick)), 0.0, 1.0)


def draw_configurations(
    model: PairVAE,
    latent: np.ndarray,
    seed: int | Sequence[int],
    sharpen: float = 1.0,
    sort_heights: bool = False,
    chunk: int = 512,
    heights: np.ndarray | None = None,
) -> np.ndarray:
    """Draw sorted coordinates ``(n, N * dim)`` (box units) from the decoder given codes
    ``latent`` ``(n, latent_dim)``: every height (the MADE, one at a time), then each particle's
    cell and sub-cell in order given those below it, uniform within the sub-cell. A height drawn
    outside the box (the mixture is not truncated to it) is put on the box's wall. ``sharpen`` > 1
    draws the cells and sub-cells from their logits times it (a lower temperature);
    ``sort_heights`` puts each configuration's drawn heights in increasing order before the
    positions in the plane are drawn; ``heights`` ``(n, N)`` (box units) are taken instead of
    drawn, so that only the positions in the plane are the decoder's."""
    lat, rng = model.lattice, np.random.default_rng(seed)
    big_n, dim, plane, window = lat.n_particles, lat.dim, lat.plane, lat.window
    if heights is not None and np.shape(heights) != (len(latent), big_n):
        raise UsageError(
            f"draw_configurations needs one height per particle and code, shape {(len(latent), big_n)}; "
            f"got {np.shape(heights)}"
        )
    c = [np.asarray(model.potential.strengths(level), np.float64) for level in (0, 1)]
    out = []
    for start in range(0, len(latent), chunk):
        z = np.asarray(latent[start : start + chunk], np.float32)
        rows = len(z)
        x = np.zeros((rows, big_n, dim), np.float32)
        if heights is not None:
            x[..., plane] = heights[start : start + chunk]
        else:
            for k in range(big_n):
                params = model.heights([z, x[..., plane]], training=False)
                x[:, k, plane] = draw_mixture(params, k, model.components, rng)
        if sort_heights:
            x[..., plane] = np.sort(x[..., plane], axis=1)
        background = np.asarray(model.background([z, x[..., plane]], training=False), np.float64)
        for k in range(big_n):
            below = slice(max(k - window, 0), k)
            prev, dz = x[:, below, :plane], x[:, k, plane][:, None] - x[:, below, plane]
            x[:, k, :plane] = draw_plane(lat, c, background[:, k], prev, dz, rng, sharpen)
        out.append(x.reshape(rows, -1))
    return np.concatenate(out)


def gibbs_sweeps(
    model: PairVAE,
    latent: np.ndarray,
    drawn: np.ndarray,
    counts: Sequence[int],
    seed: int | Sequence[int],
    chunk: int = 512,
) -> dict[int, np.ndarray]:
    """Sorted coordinates ``drawn`` ``(n, N * dim)`` (box units; e.g. :func:`draw_configurations`'
    given ``latent``) after each of ``counts`` Gibbs-style sweeps of the decoder's own conditionals:
    each particle in turn has its position in the plane re-drawn as :func:`draw_plane` draws it,
    from its background given the code and its height, less the learned pair potential with every
    other particle (not only those below it, as in the one-pass draw). The heights are kept, so the
    coordinates stay sorted by height. No Lennard-Jones term enters: the draws stay the model's.
    Strictly the chain is pseudo-Gibbs: a particle's pair sums are taken at its cell's and
    sub-cell's centres against the others' exact positions, so its conditionals are the decoder's,
    not those of one joint energy (and with a window shorter than every particle below, the one
    pass sees less than the sweeps do). One chain per configuration, continued from each count to
    the next; 0 in ``counts`` gives ``drawn`` itself; ``chunk``: configurations per call of the
    background model.

    Raises:
        UsageError: on a negative or missing count, or ``drawn`` and ``latent`` that do not match.
    """
    lat = model.lattice
    big_n, dim, plane = lat.n_particles, lat.dim, lat.plane
    counts = sorted({int(c) for c in counts})
    if not counts or counts[0] < 0:
        raise UsageError(f"Gibbs sweep counts must be >= 0 and at least one, got {counts}")
    if np.shape(drawn) != (len(latent), big_n * dim):
        raise UsageError(
            f"gibbs_sweeps needs one configuration of {big_n * dim} coordinates per code, shape "
            f"{(len(latent), big_n * dim)}; got {np.shape(drawn)}"
        )
    rng = np.random.default_rng(seed)
    c = [np.asarray(model.potential.strengths(level), np.float64) for level in (0, 1)]
    x = np.array(drawn, np.float32).reshape(len(drawn), big_n, dim)
    z = np.asarray(latent, np.float32)
    background = np.zeros((len(x), big_n, lat.cells))
    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        background[rows] = np.asarray(model.background([z[rows], x[rows, :, plane]], training=False))
    out, done = {}, 0
    for count in counts:
        for _ in range(count - done):
            for k in range(big_n):
                others = np.delete(np.arange(big_n), k)
                dz = x[:, k, plane][:, None] - x[:, others, plane]
                x[:, k, :plane] = draw_plane(lat, c, background[:, k], x[:, others, :plane], dz, rng)
        done = count
        out[count] = x.reshape(len(x), -1).copy()
    return out


def draw_plane(
    lattice: PairLattice, strengths, background: np.ndarray, others: np.ndarray, dz: np.ndarray, rng, sharpen=1.0
) -> np.ndarray:
    """One particle's position in the plane per row (box units), drawn as the decoder draws it: a
    cell from ``background`` ``(rows, cells)`` less the pair potential with ``others`` ``(rows,
    K, plane)`` at height differences ``dz`` ``(rows, K)``, then a sub-cell by the potential, then
    uniform within it. ``strengths``: the cells' and the sub-cells' (:meth:`PairPotential.strengths`
    at levels 0 and 1)."""
    rows, plane = len(background), lattice.plane
    count = np.full(rows, others.shape[1])
    centres = lattice.cell_centres()
    sums = lattice.window_sums(0, None, others, dz, count)
    cell = _categorical(sharpen * (background - sums @ strengths[0]), rng)
    sums = lattice.window_sums(1, centres[cell], others, dz, count)
    sub = _categorical(sharpen * -(sums @ strengths[1]), rng)
    centre = centres[cell] + lattice.sub_offsets()[sub]
    return centre + (rng.random((rows, plane)) - 0.5) / (lattice.grid * lattice.sub)


def negative_elbo_terms(
    encoder: keras.Model,
    likelihood: keras.Model,
    lattice: PairLattice,
    coords: np.ndarray,
    draws: int,
    seed: int | np.random.Generator,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Per-configuration ``recon`` = E_q[-log p(x | z)] over ``draws`` seeded latent draws, ``kl``
    = KL(q(z | x) || N(0, I)) in closed form, and ``neg_elbo``, their sum (nats), of sorted
    coordinates ``(n, N * dim)`` under a pair-decoder VAE's ``encoder`` (``-> [z_mean, z_log_var,
    ...]``) and ``likelihood`` (:attr:`PairVAE.likelihood`); the pair sums are computed batch by
    batch on ``lattice``. One stream of draws over the batches: the same seed gives the same
    numbers."""
    if draws < 1:
        raise UsageError(f"draws must be >= 1, got {draws}")
    rng = np.random.default_rng(seed)
    recon, kl = [], []
    for start in range(0, len(coords), batch_size):
        x = np.asarray(coords[start : start + batch_size], np.float32)
        cell, sub = lattice.features(x)
        z_mean, z_log_var = (np.asarray(a, np.float64) for a in encoder(x, training=False)[:2])
        kl.append(-0.5 * np.sum(1.0 + z_log_var - z_mean**2 - np.exp(z_log_var), axis=-1))
        total = np.zeros(len(x))
        for _ in range(draws):
            z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape)
            total += np.asarray(likelihood([z.astype(np.float32), x, cell, sub], training=False), np.float64)
        recon.append(total / draws)
    recon_a, kl_a = np.concatenate(recon), np.concatenate(kl)
    return {"recon": recon_a, "kl": kl_a, "neg_elbo": recon_a + kl_a}
