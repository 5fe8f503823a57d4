"""Can a coordinate VAE's own samples be physical? Autoregressive decoders (issue 24, item 2)

Exploratory, not a timing. The sorted-coordinate VAE's decoder is a factorised Gaussian: each of
the 90 coordinates is drawn on its own, so nothing keeps two particles apart, and every
configuration it generates has a pair under 0.8 sigma. Exclusion is a correlation between
particles. This script trains the run's DeepSets encoder with a decoder that draws the particles
one at a time, lowest first (they are sorted by height), each given the code and the particles
drawn before it. Two decoders (``--decoder``):

* ``made``: a MADE (Germain et al., 2015; masked dense layers, every hidden layer also fed the
  code) over all 90 coordinates, whose output for each coordinate is a mixture of Gaussians, so
  that a particle's x given its height could have a hole where a lower particle sits. Within a
  particle the order is height, then x, then y.
* ``pair``: a MADE of the same kind over the 30 heights; then each particle's (x, y) as a cell of
  a ``--grid`` x ``--grid`` lattice (uniform within it), with logits from the code and its height
  minus a learned pair potential summed over the ``--window`` particles drawn just before it
  (:class:`PairLogits`): exclusion is written into the conditional, its strength learned. With
  ``--subgrid S`` the position within the cell is drawn on an ``S x S`` lattice of its own, by the
  same potential at the sub-cells' centres, so the lattice the potential sees is S times finer at
  little cost (one categorical over S^2 sub-cells after one over the cells).

It scores, against the validation split's Monte Carlo per gamma as ``lj-fluid run`` does
(:func:`keras_clust.apps.lj_fluid.physical.score_by_gamma`): configurations generated from prior
draws (each given the gamma a linear discriminant of the training codes finds most likely) and
reconstructions of the test configurations (a draw of the decoder given each one's code), raw,
with no relaxation. Drawn coordinates are clipped into the box. Beside the physical scores, each
row has the mean number of pairs under 0.8 sigma per configuration and the median closest pair,
which still move when every configuration has a close pair. ``--baseline`` also trains the run's
Gaussian decoder (``lj-fluid run``'s coordinate VAE, same seed) and scores its likelihood samples of
the same prior draws; uniform configurations and the Monte Carlo's test split are the other rows.
Results are appended to ``--out`` (default ``bench/results/lj_autoregressive.json``).

Usage:
    .venv/bin/keras-clust lj-fluid simulate --seed 100 --samples 6000 --output /tmp/lj_design.npz
    .venv/bin/python bench/explore_lj_autoregressive_decoder.py --dataset /tmp/lj_design.npz --baseline
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from study_lj_free_bits import physics_r2  # noqa: E402  (this folder: the study's read-out)

from keras_clust.apps.lj_fluid.config import Config  # noqa: E402
from keras_clust.apps.lj_fluid.data import acquire, split_data  # noqa: E402
from keras_clust.apps.lj_fluid.physical import (  # noqa: E402
    decode,
    likelihood_sample,
    score_by_gamma,
    weighted_scores,
)
from keras_clust.apps.lj_fluid.pipeline import train_view, trained_log_var, trained_terms  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.generation import prior_samples  # noqa: E402
from keras_clust.lj.representations import unsort_coordinates  # noqa: E402
from keras_clust.lj.structure import CLOSE_PAIR, pair_distances  # noqa: E402
from keras_clust.models.vae_head import vae_head  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import model_seed, seed_model  # noqa: E402

LOG_2PI = float(np.log(2.0 * np.pi))


class MaskedDense(keras.layers.Layer):
    """``Dense`` whose kernel is multiplied by a fixed 0/1 mask (MADE's autoregressive wiring)."""

    def __init__(self, mask, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.mask_values = np.asarray(mask, np.float32)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        n_in, n_out = self.mask_values.shape
        self.kernel = self.add_weight(shape=(n_in, n_out), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(n_out,), initializer="zeros", name="bias")
        self.mask = keras.ops.convert_to_tensor(self.mask_values)

    def call(self, x):
        return self.activation(keras.ops.matmul(x, self.kernel * self.mask) + self.bias)


class MixtureNLL(keras.layers.Layer):
    """Adds ``-sum_d log sum_k pi_dk N(x_d; mu_dk, s_dk)`` (nats per sample) to the losses."""

    def __init__(self, components: int, **kwargs):
        super().__init__(**kwargs)
        self.components = components

    def call(self, inputs):
        x, params = inputs
        mu, log_s, logits = split_params(params, self.components)
        x = keras.ops.expand_dims(x, -1)
        log_n = -0.5 * (LOG_2PI + 2.0 * log_s + keras.ops.square((x - mu) / keras.ops.exp(log_s)))
        log_pi = logits - keras.ops.logsumexp(logits, axis=-1, keepdims=True)
        nll = -keras.ops.sum(keras.ops.logsumexp(log_pi + log_n, axis=-1), axis=-1)
        self.add_loss(keras.ops.mean(nll))
        return nll


def lattice_cell(xy, grid: int):
    """The cell of each (x, y) (box units) on a ``grid x grid`` lattice, per axis, as floats."""
    return keras.ops.clip(keras.ops.floor(xy * grid), 0, grid - 1)


def lattice_sub_cell(xy, cell, grid: int, sub: int):
    """The sub-cell of each (x, y) within its ``cell`` (:func:`lattice_cell`) on a ``sub x sub``
    lattice, per axis, as floats."""
    return keras.ops.clip(keras.ops.floor((xy * grid - cell) * sub), 0, sub - 1)


class PairLogits(keras.layers.Layer):
    """Logits of the cell, on a ``grid x grid`` lattice of the plane, of each particle's (x, y)
    given its height and the particles before it: a background (an input, from the code and the
    height) minus a learned pair potential ``phi(r) = sum_m softplus(w_m) relu(r_m - r)`` (hinges
    at ``hinges`` sigma, default ``HINGES``: repulsive, decreasing) summed over the ``window`` particles drawn just
    before it (the particles are sorted by height, so these are the ones below it, nearest first).

    With ``sub`` > 1 each cell is cut into a ``sub x sub`` lattice of its own, and a second output
    gives the logits of the sub-cells of each particle's own cell (the one its (x, y) is in): the
    same potential at the sub-cells' centres, no background (uniform but for the potential).

    ``core`` ``(cell, sub)`` (sigma), if given, adds a fixed hard core to the potential, a hinge of
    slope :attr:`CORE_SLOPE` below ``cell`` at the cells' centres and below ``sub`` at the
    sub-cells' centres; :func:`training_cores` sets both below every distance of the training
    data at that level, so the core never touches a training particle and only takes probability
    off places no training particle sits."""

    HINGES = (0.7, 0.85, 1.0, 1.15, 1.3, 1.6)
    CORE_SLOPE = 1000.0  # nats per sigma inside the core: 0.01 sigma in costs 10 nats

    def __init__(self, grid: int, box: float, window: int = 12, sub: int = 1, hinges=HINGES, core=None, **kwargs):
        super().__init__(**kwargs)
        self.grid, self.box, self.window, self.sub = int(grid), float(box), int(window), int(sub)
        self.hinge_at = tuple(sorted(float(h) for h in hinges))
        self.core = None if core is None else tuple(float(c) for c in core)

    def build(self, input_shape):
        n = input_shape[0][1]
        self.w = self.add_weight(shape=(len(self.hinge_at),), initializer="zeros", name="pair_weights")
        c = (np.arange(self.grid) + 0.5) / self.grid
        cx, cy = np.meshgrid(c, c, indexing="ij")
        self.cells = keras.ops.convert_to_tensor(np.stack([cx.ravel(), cy.ravel()], -1).astype(np.float32))
        o = ((np.arange(self.sub) + 0.5) / self.sub - 0.5) / self.grid
        ox, oy = np.meshgrid(o, o, indexing="ij")
        self.offsets = np.stack([ox.ravel(), oy.ravel()], -1).astype(np.float32)  # sub-cell centres - cell's
        back = np.arange(n)[:, None] - np.arange(1, self.window + 1)[None, :]  # (N, W): k-1, k-2, ...
        self.valid = keras.ops.convert_to_tensor((back >= 0).astype(np.float32))
        self.index = keras.ops.convert_to_tensor(np.maximum(back, 0).ravel().astype(np.int32))
        self.hinges = keras.ops.convert_to_tensor(np.asarray(self.hinge_at, np.float32))

    def potential(self, r):
        """``phi(r)``, ``r`` in sigma."""
        w = keras.ops.softplus(self.w)
        phi = w[0] * keras.ops.relu(self.hinges[0] - r)
        for m in range(1, len(self.hinge_at)):
            phi = phi + w[m] * keras.ops.relu(self.hinges[m] - r)
        return phi

    def _summed(self, d, dz, valid=1.0, level=0):
        """``-sum phi`` over the last particle axis, from the in-plane displacements ``d``
        ``(..., P, K, 2)`` of P points from K particles and their height differences ``dz``
        ``(..., K)`` (box units); ``valid`` weighs each term (the window's particles that exist);
        ``level`` 0 for cells' centres, 1 for sub-cells' (which core)."""
        r2 = keras.ops.sum(d * d, axis=-1) + (dz * dz)[..., None, :]  # (..., P, K)
        r = self.box * keras.ops.sqrt(r2 + 1e-8)
        phi = self.potential(r)
        if self.core is not None:
            phi = phi + self.CORE_SLOPE * keras.ops.relu(self.core[level] - r)
        return -keras.ops.sum(phi * valid, axis=-1)

    def _from_window(self, points, prev_xy, dz, level=0):
        """:meth:`_summed` at ``points`` ``(B, N, P, 2)`` from each particle's window ``(B, N, W, 2)``."""
        d = points[:, :, :, None, :] - prev_xy[:, :, None, :, :]  # (B, N, P, W, 2)
        return self._summed(d, dz, self.valid[None, :, None, :], level)

    def call(self, inputs):
        heights, xy, background = inputs  # (B, N), (B, N, 2), (B, N, G^2); in box units
        n = heights.shape[1]
        prev_xy = keras.ops.reshape(keras.ops.take(xy, self.index, axis=1), (-1, n, self.window, 2))
        prev_h = keras.ops.reshape(keras.ops.take(heights, self.index, axis=1), (-1, n, self.window))
        dz = heights[:, :, None] - prev_h  # (B, N, W)
        logits = background + self._from_window(self.cells[None, None], prev_xy, dz)
        if self.sub == 1:
            return logits
        centre = (lattice_cell(xy, self.grid) + 0.5) / self.grid
        return logits, self._from_window(centre[:, :, None, :] + self.offsets, prev_xy, dz, level=1)

    def sub_logits(self, centre, prev_xy, dz) -> np.ndarray:
        """The sub-cell logits of one particle per row: its cell's ``centre`` ``(B, 2)``, the
        particles before it ``(B, K, 2)`` and their height differences ``(B, K)`` (box units)."""
        d = centre[:, None, None, :] + self.offsets[None, :, None, :] - prev_xy[:, None, :, :]  # (B, S^2, K, 2)
        return np.asarray(self._summed(d, dz, level=1))


def training_cores(coords: np.ndarray, n_particles: int, dim: int, grid: int, sub: int, box: float, window: int):
    """The closest any training particle's cell centre, and its sub-cell centre, comes to a
    particle in its window (the ``window`` particles before it in height order), in sigma:
    ``(cell, sub)``, what :class:`PairLogits`'s ``core`` may be at most. ``coords`` are the
    sorted coordinates in box units, as the model sees them."""
    x = coords.reshape(len(coords), n_particles, dim)
    model_cell = lattice_cell(x[..., : dim - 1], grid)  # indexed as the model indexes them
    s = np.asarray(lattice_sub_cell(x[..., : dim - 1], model_cell, grid, sub), np.float64)
    idx = np.asarray(model_cell, np.float64)
    x = x.astype(np.float64)
    xy, h = x[..., : dim - 1], x[..., dim - 1]
    cell = (idx + 0.5) / grid
    sub_centre = (idx + (s + 0.5) / sub) / grid
    closest = [np.inf, np.inf]
    for k in range(1, n_particles):
        below = slice(max(k - window, 0), k)
        dz2 = (h[:, k, None] - h[:, below]) ** 2
        for level, centre in enumerate((cell, sub_centre)):
            r = box * np.sqrt(((centre[:, k, None, :] - xy[:, below]) ** 2).sum(-1) + dz2)
            closest[level] = min(closest[level], float(r.min()))
    return tuple(closest)


class CellNLL(keras.layers.Layer):
    """``-sum_k log p(x_k, y_k)`` with p uniform within the cell the logits give (a density in
    box units, comparable with a Gaussian's), or within the sub-cell the second logits give;
    adds its batch mean to the losses."""

    def __init__(self, grid: int, sub: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.grid, self.sub = int(grid), int(sub)

    @staticmethod
    def _picked(logits, index):
        log_p = logits - keras.ops.logsumexp(logits, axis=-1, keepdims=True)
        return keras.ops.take_along_axis(log_p, index[..., None], axis=-1)[..., 0]

    def call(self, inputs):
        xy, logits = inputs[0], inputs[1]
        idx = lattice_cell(xy, self.grid)
        cell = keras.ops.cast(idx[..., 0] * self.grid + idx[..., 1], "int32")
        log_p = keras.ops.sum(self._picked(logits, cell), axis=-1)
        if self.sub > 1:
            s = lattice_sub_cell(xy, idx, self.grid, self.sub)
            sub = keras.ops.cast(s[..., 0] * self.sub + s[..., 1], "int32")
            log_p = log_p + keras.ops.sum(self._picked(inputs[2], sub), axis=-1)
        nll = -log_p - xy.shape[1] * 2.0 * float(np.log(self.grid * self.sub))
        self.add_loss(keras.ops.mean(nll))
        return nll


def split_params(params, k: int):
    """``(B, D * 3k)`` -> means, log scales (floored), mixture logits, each ``(B, D, k)``."""
    p = keras.ops.reshape(params, (keras.ops.shape(params)[0], -1, 3 * k))
    mu, log_s, logits = p[..., :k], p[..., k : 2 * k], p[..., 2 * k :]
    return mu, keras.ops.maximum(log_s, -7.0), logits


def pair_counts(positions: np.ndarray) -> dict:
    """How close the closest pairs are: pairs under :data:`CLOSE_PAIR` per configuration, and
    the median over configurations of the closest pair's distance (sigma)."""
    n = positions.shape[1]
    d = pair_distances(positions).reshape(len(positions), n * (n - 1) // 2)
    return {
        "close_pairs_per_configuration": float((d < CLOSE_PAIR).sum(axis=1).mean()),
        "closest_pair_median": float(np.median(d.min(axis=1))),
    }


def close_pairs_by_order(positions: np.ndarray, window: int) -> float:
    """Share of the pairs under :data:`CLOSE_PAIR` whose particles are more than ``window`` apart in
    the order they were drawn (the pair decoder's potential does not see those)."""
    n = positions.shape[1]
    i, j = np.triu_indices(n, k=1)
    close = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1) < CLOSE_PAIR
    return float(close[:, (j - i) > window].sum() / max(close.sum(), 1))


def scored_row(positions: np.ndarray, gamma: np.ndarray, data, cfg, name: str) -> dict:
    gamma = np.asarray(gamma, np.float32)
    scored = score_by_gamma(positions, gamma, data, cfg, name)
    per_gamma = {
        f"close_pairs_per_configuration_gamma_{g:g}": pair_counts(positions[np.isclose(gamma, g)])[
            "close_pairs_per_configuration"
        ]
        for g in cfg.gammas
        if np.isclose(gamma, g).any()
    }
    return {**weighted_scores([s.to_dict() for s in scored.values()]), **pair_counts(positions), **per_gamma}


def degrees(n_particles: int, dim: int) -> np.ndarray:
    """The draw order of each flat coordinate ``(particle, axis)``: particle by particle, height
    first, then the other axes in order (1-based, as MADE's degrees)."""
    within = [dim - 1, *range(dim - 1)]  # height first
    deg = np.empty(n_particles * dim, np.int64)
    for p in range(n_particles):
        for rank, axis in enumerate(within):
            deg[p * dim + axis] = p * dim + rank + 1
    return deg


def set_encoder(coords, n_particles, dim, latent, free_bits, seed):
    """The run's DeepSets encoder (``build_particle_set_vae``'s, default widths)."""
    x = keras.layers.Reshape((n_particles, dim), name="particles")(coords)
    for i, u in enumerate((64, 64)):
        x = keras.layers.Dense(u, activation="relu", name=f"phi_{i}")(x)
    x = keras.layers.Concatenate(name="pooled")(
        [keras.layers.GlobalAveragePooling1D()(x), keras.layers.GlobalMaxPooling1D()(x)]
    )
    for i, u in enumerate((45, 22)):
        x = keras.layers.Dense(u, activation="relu", name=f"rho_{i}")(x)
    z_mean, z_log_var, z, _, _ = vae_head(x, latent, 1.0, seed, free_bits=free_bits)
    return keras.Model(coords, [z_mean, z_log_var, z], name="encoder")


def made(z_in, given, d_in: np.ndarray, hidden, components: int, rng, prefix: str):
    """MADE over ``given`` (degrees ``d_in``), every layer also fed the code: mixture parameters
    ``(B, D * 3 components)`` of each input given the inputs of lower degree."""
    features = len(d_in)
    h, prev = given, d_in
    for i, units in enumerate(hidden):
        m = rng.integers(1, max(features, 2), size=units)  # degrees 1 .. D-1
        h = MaskedDense((m[None, :] >= prev[:, None]).astype(np.float32), name=f"{prefix}made_{i}")(h)
        h = keras.layers.Add()([h, keras.layers.Dense(units, name=f"{prefix}cond_{i}")(z_in)])
        h = keras.layers.Activation("relu")(h)
        prev = m
    out_deg = np.repeat(d_in, 3 * components)
    params = MaskedDense((out_deg[None, :] > prev[:, None]).astype(np.float32), name=f"{prefix}mixture")(h)
    cond = keras.layers.Dense(features * 3 * components, name=f"{prefix}cond_out")(z_in)
    return keras.layers.Add()([params, cond])


def build(
    kind,
    n_particles,
    dim,
    latent,
    hidden,
    components,
    free_bits,
    seed,
    grid=16,
    box=5.0,
    window=12,
    sub=1,
    hinges=PairLogits.HINGES,
    core=None,
):
    """``kind`` "made": one MADE over all coordinates; "pair": a MADE over the heights, then each
    particle's (x, y) on a lattice given its height, the code and a learned pair potential with
    the particles before it (:class:`PairLogits`). Returns the training model, the encoder, the
    decoder (``[code, coordinates] ->`` what :func:`draw` reads) and the likelihood model
    (``[code, coordinates] ->`` -log p per configuration)."""
    features = n_particles * dim
    rng = np.random.default_rng(seed)
    coords = keras.Input((features,), name="coordinates")
    encoder = set_encoder(coords, n_particles, dim, latent, free_bits, seed)
    z_in = keras.Input((latent,), name="latent")
    given = keras.Input((features,), name="given")
    if kind == "made":
        params = made(z_in, given, degrees(n_particles, dim), hidden, components, rng, "")
        decoder = keras.Model([z_in, given], params, name="decoder")
        nll = MixtureNLL(components, name="likelihood")([given, params])
    else:
        particles = keras.layers.Reshape((n_particles, dim), name="given_particles")(given)
        heights, xy = particles[..., dim - 1], particles[..., : dim - 1]
        h_params = made(z_in, heights, np.arange(1, n_particles + 1), hidden, components, rng, "h_")
        b = keras.layers.Concatenate()(
            [keras.layers.RepeatVector(n_particles)(z_in), keras.layers.Reshape((n_particles, 1))(heights)]
        )
        for i in range(2):
            b = keras.layers.Dense(128, activation="relu", name=f"background_{i}")(b)
        b = keras.layers.Dense(grid * grid, name="background")(b)
        logits = PairLogits(grid, box, window, sub, hinges, core, name="pair_logits")([heights, xy, b])
        logits = list(logits) if sub > 1 else [logits]
        decoder = keras.Model([z_in, given], [h_params, *logits], name="decoder")
        nll = keras.layers.Add()(
            [
                MixtureNLL(components, name="height_nll")([heights, h_params]),
                CellNLL(grid, sub, name="xy_nll")([xy, *logits]),
            ]
        )
    nll_model = keras.Model([z_in, given], nll, name="likelihood_model")
    vae = keras.Model(coords, nll_model([encoder(coords)[2], coords]))
    return vae, encoder, decoder, nll_model


def _mixture_draw(params, j: int, components: int, rng) -> np.ndarray:
    mu, log_s, logits = (np.asarray(v) for v in split_params(params, components))
    mu, log_s = mu[:, j], log_s[:, j]
    k = _categorical_draw(logits[:, j], rng)
    rows = np.arange(len(k))
    return np.clip(mu[rows, k] + np.exp(log_s[rows, k]) * rng.standard_normal(len(k)), 0.0, 1.0)


def draw_pair(
    decoder, latent, n_particles, dim, components, grid, seed, sharpen=1.0, sort_heights=False, chunk=128
) -> np.ndarray:
    """Sequential draws of the "pair" decoder: every height (MADE), then each particle's cell
    in order, uniform within it; ``sharpen`` > 1 draws the cells from the logits times it (a
    lower temperature: the likely cells likelier, the ones next to a particle less so);
    ``sort_heights`` puts each configuration's drawn heights in increasing order before the cells
    are drawn, the order the decoder was trained in (its window of particles below then holds the
    nearest heights)."""
    rng = np.random.default_rng(seed)
    heights_of = keras.Model(decoder.inputs, decoder.outputs[0])  # the MADE alone: no pair terms per height
    pair = decoder.get_layer("pair_logits")
    out = []
    for i in range(0, len(latent), chunk):
        z = latent[i : i + chunk]
        x = np.zeros((len(z), n_particles, dim), np.float32)
        for k in range(n_particles):
            h_params = heights_of([z, x.reshape(len(z), -1)])
            x[:, k, dim - 1] = _mixture_draw(h_params, k, components, rng)
        if sort_heights:
            x[:, :, dim - 1] = np.sort(x[:, :, dim - 1], axis=1)
        for k in range(n_particles):
            logits = decoder([z, x.reshape(len(z), -1)])[1]
            cell = _categorical_draw((sharpen * np.asarray(logits)[:, k]).astype(np.float64), rng)
            corner = np.stack([cell // grid, cell % grid], -1).astype(np.float64)
            if pair.sub > 1:  # the sub-cell, given the particles in the window below
                below = slice(max(k - pair.window, 0), k)
                centre = ((corner + 0.5) / grid).astype(np.float32)
                dz = x[:, k, dim - 1][:, None] - x[:, below, dim - 1]
                sub = _categorical_draw(
                    (sharpen * pair.sub_logits(centre, x[:, below, : dim - 1], dz)).astype(np.float64), rng
                )
                corner += np.stack([sub // pair.sub, sub % pair.sub], -1) / pair.sub
            jitter = rng.random((len(z), 2))
            x[:, k, 0] = (corner[:, 0] + jitter[:, 0] / pair.sub) / grid
            x[:, k, 1] = (corner[:, 1] + jitter[:, 1] / pair.sub) / grid
        out.append(x.reshape(len(z), -1))
    return np.concatenate(out)


def _categorical_draw(logits, rng) -> np.ndarray:
    """One index per row of ``logits`` ``(B, K)``, in their precision."""
    lg = np.asarray(logits)
    p = np.exp(lg - lg.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


def draw(decoder, latent: np.ndarray, n_particles: int, dim: int, components: int, seed: int) -> np.ndarray:
    """Sequential draws of the "made" decoder given ``latent``: one coordinate per degree."""
    rng = np.random.default_rng(seed)
    d_in = degrees(n_particles, dim)
    x = np.zeros((len(latent), n_particles * dim), np.float32)
    for d in range(1, len(d_in) + 1):
        j = int(np.flatnonzero(d_in == d)[0])
        x[:, j] = _mixture_draw(decoder.predict([latent, x], batch_size=1024, verbose=0), j, components, rng)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--decoder", choices=("made", "pair"), default="made")
    ap.add_argument("--grid", type=int, default=16, help="the pair decoder's lattice of (x, y) cells per axis")
    ap.add_argument("--window", type=int, default=12, help="the pair decoder's particles below each one it sees")
    ap.add_argument(
        "--subgrid", type=int, default=1, help="the pair decoder's lattice of sub-cells per axis within each cell"
    )
    ap.add_argument(
        "--sharpen", default="1", help="the pair decoder's generated rows: its cell logits times each of these"
    )
    ap.add_argument(
        "--hinges",
        default=",".join(f"{h:g}" for h in PairLogits.HINGES),
        help="the pair decoder's potential: distances in sigma where its hinges sit",
    )
    ap.add_argument(
        "--core-margin",
        type=float,
        default=None,
        help="the pair decoder: a hard core this far (sigma) below the training data's closest"
        " cell and sub-cell centres to a particle below (none if not given)",
    )
    ap.add_argument("--hidden", default="512,512")
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--latent", type=int, default=2)
    ap.add_argument("--free-bits", type=float, default=0.25)
    ap.add_argument("--baseline", action="store_true", help="also train and sample the run's Gaussian decoder")
    ap.add_argument("--limit", type=int, default=None, help="train on this many configurations (smoke runs)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_autoregressive.json")
    a = ap.parse_args()
    a.sharpen = [float(v) for v in a.sharpen.split(",")]
    a.hinges = sorted(float(v) for v in a.hinges.split(","))
    cfg = Config(dataset=a.dataset, seed=a.seed)
    sim, cfg = acquire(cfg, progress=False)
    data = split_data(sim, cfg)
    n, dim = sim.positions.shape[1], sim.positions.shape[2]
    hidden = tuple(int(h) for h in a.hidden.split(","))
    core = closest = test_closest = None
    if a.decoder == "pair" and a.core_margin is not None:
        closest = training_cores(data.train.coords[: a.limit], n, dim, a.grid, a.subgrid, cfg.box, a.window)
        core = tuple(c - a.core_margin for c in closest)
        print(f"hard core: cells {core[0]:.3f} sigma, sub-cells {core[1]:.3f} sigma", flush=True)
        test_closest = training_cores(data.test.coords[: a.limit], n, dim, a.grid, a.subgrid, cfg.box, a.window)
        print(f"the test split's closest: cells {test_closest[0]:.3f}, sub-cells {test_closest[1]:.3f}", flush=True)
    seed_model(a.seed, "autoregressive")
    vae, encoder, decoder, nll_model = build(
        a.decoder,
        n,
        dim,
        a.latent,
        hidden,
        a.components,
        a.free_bits,
        model_seed(a.seed, "z"),
        a.grid,
        cfg.box,
        a.window,
        a.subgrid,
        a.hinges,
        core,
    )
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    train, val = data.train.coords[: a.limit], data.val.coords[: a.limit]
    t0 = time.perf_counter()
    hist = vae.fit(
        train,
        validation_data=(val,),
        epochs=a.epochs,
        batch_size=64,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)],
    )
    seconds = time.perf_counter() - t0
    print(f"trained {len(hist.history['loss'])} epochs in {seconds:.0f} s", flush=True)
    test = data.test.coords[: a.limit]
    test_gamma = data.test.gamma[: a.limit]
    z_mean, z_log_var, _ = encoder.predict(test, verbose=0)
    kl = np.mean(-0.5 * (1.0 + z_log_var - z_mean**2 - np.exp(z_log_var)), axis=0)
    z = z_mean + np.exp(0.5 * z_log_var) * np.random.default_rng(model_seed(a.seed, "elbo")).standard_normal(
        z_mean.shape
    )
    recon_nll = float(np.mean(nll_model.predict([z, test], batch_size=256, verbose=0)))
    train_codes = encoder.predict(train, verbose=0)[0]
    head = {
        k: SimpleNamespace(positions=p.positions[: a.limit], gamma=p.gamma[: a.limit])
        for k, p in (("train", data.train), ("test", data.test))
    }
    physics = physics_r2(train_codes, head["train"], z_mean, head["test"])
    lda = LinearDiscriminantAnalysis().fit(train_codes, data.train.gamma[: a.limit])
    latent = prior_samples(len(test), a.latent, model_seed(a.seed, "generated"))
    rows = {}
    assigned = lda.predict(latent)
    sets = [("generated", latent, assigned, 1.0, False), ("reconstructed", z_mean, test_gamma, 1.0, False)]
    if a.decoder == "pair":
        sets += [(f"generated, cells sharpened x{v:g}", latent, assigned, v, False) for v in a.sharpen if v != 1.0]
        sets += [("generated, heights sorted", latent, assigned, 1.0, True)]
    for name, codes_, gamma, sharpen, sort_heights in sets:
        started = time.perf_counter()
        if a.decoder == "made":
            drawn = draw(decoder, codes_, n, dim, a.components, a.seed)
        else:
            drawn = draw_pair(
                decoder, codes_.astype(np.float32), n, dim, a.components, a.grid, a.seed, sharpen, sort_heights
            )
        print(f"{name}: drawn in {time.perf_counter() - started:.0f} s", flush=True)
        pos = unsort_coordinates(drawn, cfg.box, dim)
        rows[f"{a.decoder}: {name}"] = scored_row(pos, gamma, data, cfg, name)
        if a.decoder == "pair":
            rows[f"{a.decoder}: {name}"]["close_pairs_beyond_window"] = close_pairs_by_order(pos, a.window)
    rows["Monte Carlo (test split)"] = scored_row(data.test.positions, data.test.gamma, data, cfg, "mc")
    uniform = np.random.default_rng([a.seed, 2]).uniform(0.0, cfg.box, data.test.positions[: a.limit].shape)
    rows["uniform in the box"] = scored_row(uniform, test_gamma, data, cfg, "uniform")
    if a.baseline:  # the run's Gaussian decoder, trained and sampled as lj-fluid run does
        t = train_view("coords", data, cfg, lambda key: seed_model(a.seed, key))
        gaussian_neg_elbo = float(trained_terms(t, data.test, cfg, model_seed(a.seed, "elbo"))["neg_elbo"].mean())
        g_codes = t.vae.encoder.predict(data.train.coords, verbose=0)[0]
        g_physics = physics_r2(g_codes, data.train, t.vae.encoder.predict(data.test.coords, verbose=0)[0], data.test)
        g_lda = LinearDiscriminantAnalysis().fit(g_codes, data.train.gamma)
        sample = likelihood_sample("coords", decode(t.vae, latent), trained_log_var(t.vae.vae), [a.seed, 1])
        pos = unsort_coordinates(sample, cfg.box, dim)
        rows["Gaussian: generated, likelihood sample"] = {
            **scored_row(pos, g_lda.predict(latent), data, cfg, "gaussian"),
            "test_neg_elbo": gaussian_neg_elbo,
            "physics_r2": g_physics,
            "physics_r2_mean": float(np.mean(g_physics)),
        }
    result = {
        "dataset": a.dataset,
        "seed": a.seed,
        "decoder": a.decoder,
        "grid": a.grid if a.decoder == "pair" else None,
        "window": a.window if a.decoder == "pair" else None,
        "subgrid": a.subgrid if a.decoder == "pair" else None,
        "sharpen": a.sharpen if a.decoder == "pair" else None,
        "hinges": a.hinges if a.decoder == "pair" else None,
        "core_margin": a.core_margin if a.decoder == "pair" else None,
        "training_closest": list(closest) if closest else None,
        "core": list(core) if core else None,
        "test_closest": list(test_closest) if test_closest else None,
        "hidden": list(hidden),
        "components": a.components,
        "latent": a.latent,
        "free_bits": a.free_bits,
        "epochs": len(hist.history["loss"]),
        "train_seconds": round(seconds, 1),
        "best_val_loss": float(min(hist.history["val_loss"])),
        "test_recon_nll": recon_nll,
        "test_kl": float(kl.sum()),
        "test_neg_elbo": recon_nll + float(kl.sum()),
        "kl_per_dim": kl.round(3).tolist(),
        "physics_r2": physics,
        "physics_r2_mean": float(np.mean(physics)),
        "rows": rows,
        "command": " ".join(sys.argv),
    }
    print(json.dumps(result, indent=1), flush=True)
    if a.limit is None:  # smoke runs are not results
        append_json_row(a.out, result, {"machine": machine_info()})


if __name__ == "__main__":
    main()
