"""The pair decoder: its lattice sums against a brute-force count, its likelihood's
normalisation, and its sampler against the model it samples."""

import itertools

import keras
import numpy as np
import pytest
from scipy.stats import norm

from keras_clust.errors import UsageError
from keras_clust.lj.pair_decoder import (
    CORE_SLOPE,
    CellNLL,
    MixtureNLL,
    PairPotential,
    build_pair_vae,
    draw_configurations,
    gibbs_sweeps,
    negative_elbo_terms,
)
from keras_clust.lj.pair_lattice import (
    WALL_CUT,
    WALL_FLOOR,
    PairLattice,
    closest_centres,
    flat_index,
    lattice_cell,
    lattice_sub_cell,
)

N, DIM, BOX = 6, 3, 3.0


def sorted_configurations(n: int, seed: int = 0, n_particles: int = N, dim: int = DIM) -> np.ndarray:
    """``n`` random configurations as sorted coordinates (by height, box units), ``(n, N * dim)``."""
    x = np.random.default_rng(seed).random((n, n_particles, dim)).astype(np.float32)
    x = np.take_along_axis(x, np.argsort(x[..., -1], axis=1)[..., None], axis=1)
    return x.reshape(n, -1)


def brute_force_sums(lattice: PairLattice, coords: np.ndarray):
    """The lattice's sums by their definition, one point and one earlier particle at a time."""
    x = coords.reshape(len(coords), lattice.n_particles, lattice.dim).astype(np.float64)
    g, s, plane = lattice.grid, lattice.sub, lattice.plane
    cells = np.zeros((len(x), lattice.n_particles, lattice.cells, lattice.sums))
    subs = np.zeros((len(x), lattice.n_particles, lattice.sub_cells, lattice.sums))

    def terms(r, level):
        hinges = np.maximum(lattice.radii(level) - r, 0)
        if not lattice.wall:
            return hinges
        wall = (max(r, WALL_FLOOR) / WALL_FLOOR) ** -12 - (WALL_CUT / WALL_FLOOR) ** -12 if r < WALL_CUT else 0.0
        return np.insert(hinges, len(lattice.hinges), wall)  # after the hinges, before the core

    for c, k in itertools.product(range(len(x)), range(lattice.n_particles)):
        own = np.clip(np.floor(x[c, k, :plane].astype(np.float32) * g), 0, g - 1)
        for j in range(max(k - lattice.window, 0), k):
            for index in itertools.product(range(g), repeat=plane):
                point = (np.array(index) + 0.5) / g
                r = lattice.box * np.linalg.norm(np.append(point - x[c, j, :plane], x[c, k, -1] - x[c, j, -1]))
                cells[c, k, flat_index(np.array(index), g)] += terms(r, 0)
            for index in itertools.product(range(s), repeat=plane):
                point = (own + (np.array(index) + 0.5) / s) / g
                r = lattice.box * np.linalg.norm(np.append(point - x[c, j, :plane], x[c, k, -1] - x[c, j, -1]))
                subs[c, k, flat_index(np.array(index), s)] += terms(r, 1)
    return cells, subs


@pytest.mark.parametrize("core,wall", [(None, False), ((0.9, 1.2), False), ((0.9, 1.2), True), (None, True)])
def test_lattice_sums_match_their_definition(core, wall):
    lattice = PairLattice(N, DIM, BOX, grid=3, sub=2, window=2, hinges=(0.5, 1.0, 2.0), core=core, wall=wall)
    coords = sorted_configurations(3)
    cells, subs = lattice.features(coords)
    want_cells, want_subs = brute_force_sums(lattice, coords)
    assert cells.shape == (3, N, 9, lattice.sums) and subs.shape == (3, N, 4, lattice.sums)
    np.testing.assert_allclose(cells, want_cells, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(subs, want_subs, rtol=1e-5, atol=1e-5)
    assert cells[:, 0].max() == 0 and cells[:, 1:].max() > 0  # the lowest particle has nothing below it
    if wall:  # some pairs inside the wall's cut, some at its floor
        assert subs[..., 3].max() > 0.1 and cells[..., 3].max() >= 0.99  # a pair at the floor counts ~1


def test_a_particles_sums_see_only_the_particles_below_it():
    lattice = PairLattice(N, DIM, BOX, grid=4, sub=2, window=N - 1)
    coords = sorted_configurations(4, seed=1)
    moved = coords.reshape(4, N, DIM).copy()
    moved[:, 3:, :2] = np.random.default_rng(2).random((4, N - 3, 2))  # particles 3.. move in the plane
    (cells, subs), (moved_cells, moved_subs) = lattice.features(coords), lattice.features(moved.reshape(4, -1))
    np.testing.assert_array_equal(cells[:, :4], moved_cells[:, :4])  # particle 3's cells: from 0-2 only
    assert not np.array_equal(cells[:, 4:], moved_cells[:, 4:])
    np.testing.assert_array_equal(subs[:, :3], moved_subs[:, :3])  # its sub-cells are those of its own cell
    assert not np.array_equal(subs[:, 3:], moved_subs[:, 3:])


def test_a_core_at_the_closest_centres_touches_none_of_the_configurations():
    coords = sorted_configurations(20, seed=3)
    lattice = PairLattice(N, DIM, BOX, grid=4, sub=3, window=4)
    closest = closest_centres(lattice, coords)
    x = coords.reshape(20, N, DIM)
    cell = lattice_cell(x[..., :2], 4)
    own_cell = flat_index(cell, 4)
    own_sub = flat_index(lattice_sub_cell(x[..., :2], cell, 4, 3), 3)
    for margin, touched in ((1e-4, False), (-1e-4, True)):
        cores = PairLattice(N, DIM, BOX, grid=4, sub=3, window=4, core=(closest[0] - margin, closest[1] - margin))
        cells, subs = cores.features(coords)
        at_own_cell = np.take_along_axis(cells[..., -1], own_cell[..., None], axis=-1)
        at_own_sub = np.take_along_axis(subs[..., -1], own_sub[..., None], axis=-1)
        assert (at_own_cell.max() > 0) == touched and (at_own_sub.max() > 0) == touched


def test_uniform_logits_are_the_uniform_density_of_the_unit_square():
    xy = np.random.default_rng(4).random((5, N, 2)).astype(np.float32)
    nll = CellNLL(4, 2)([xy, np.zeros((5, N, 16), np.float32), np.zeros((5, N, 4), np.float32)])
    np.testing.assert_allclose(np.asarray(nll), 0.0, atol=1e-4)
    # all of a particle's mass on its own cell and sub-cell: density (4 * 2)^2 per particle
    cell = flat_index(lattice_cell(xy, 4), 4)
    sub = flat_index(lattice_sub_cell(xy, lattice_cell(xy, 4), 4, 2), 2)
    sharp = np.where(np.arange(16) == cell[..., None], 0.0, -1e4).astype(np.float32)
    sharp_sub = np.where(np.arange(4) == sub[..., None], 0.0, -1e4).astype(np.float32)
    nll = CellNLL(4, 2)([xy, sharp, sharp_sub])
    np.testing.assert_allclose(np.asarray(nll), -N * 2 * np.log(8.0), rtol=1e-5)


def test_mixture_nll_is_the_mixture_density():
    rng = np.random.default_rng(5)
    x = rng.random((3, 4)).astype(np.float32)
    mu, log_s, logits = rng.random((3, 4, 2)), rng.uniform(-2, -1, (3, 4, 2)), rng.standard_normal((3, 4, 2))
    params = np.concatenate([mu, log_s, logits], -1).reshape(3, -1).astype(np.float32)
    pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    want = -np.log((pi * norm.pdf(x[..., None], mu, np.exp(log_s))).sum(-1)).sum(-1)
    np.testing.assert_allclose(np.asarray(MixtureNLL(2)([x, params])), want, rtol=1e-4)


def test_the_potential_weighs_the_sums_and_the_core_is_fixed():
    rng = np.random.default_rng(6)
    background = rng.standard_normal((2, N, 9)).astype(np.float32)
    cells, subs = rng.random((2, N, 9, 4)).astype(np.float32), rng.random((2, N, 4, 4)).astype(np.float32)
    layer = PairPotential(3, core=True)
    logits, sub_logits = layer([background, cells, subs])
    c = np.array([np.log(2.0)] * 3 + [CORE_SLOPE])  # softplus(0) for the learned hinges
    np.testing.assert_allclose(np.asarray(logits), background - cells @ c, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.asarray(sub_logits), -(subs @ c), rtol=1e-4, atol=1e-3)
    assert [w.name for w in layer.trainable_weights] == ["pair_weights"]


def test_each_level_may_weigh_its_sums_with_its_own_strengths():
    rng = np.random.default_rng(6)
    background = rng.standard_normal((2, N, 9)).astype(np.float32)
    cells, subs = rng.random((2, N, 9, 4)).astype(np.float32), rng.random((2, N, 4, 4)).astype(np.float32)
    layer = PairPotential(3, core=True, signed=True, levels=2)
    layer.build(None)
    layer.w.assign(np.array([[2.0, -1.0, 0.5], [4.0, 3.0, -2.0]], np.float32))
    logits, sub_logits = layer([background, cells, subs])
    c0, c1 = np.array([2.0, -1.0, 0.5, CORE_SLOPE]), np.array([4.0, 3.0, -2.0, CORE_SLOPE])
    np.testing.assert_allclose(np.asarray(logits), background - cells @ c0, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.asarray(sub_logits), -(subs @ c1), rtol=1e-4, atol=1e-3)
    again = PairPotential.from_config(layer.get_config())
    assert again.levels == 2 and again.signed
    repulsive = PairPotential(3, levels=2)
    repulsive.build(None)
    repulsive.w.assign(np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 1.0]], np.float32))
    softplus = np.log1p(np.exp([2.0, 0.0, 1.0]))  # each level's own weights through softplus
    np.testing.assert_allclose(np.asarray(repulsive.strengths(1))[:3], softplus, rtol=1e-6)
    with pytest.raises(UsageError, match="1 or 2 levels"):
        PairPotential(3, levels=3)


def test_a_model_with_two_levels_round_trips_and_an_old_config_reads_as_one(tmp_path):
    keras.utils.set_random_seed(0)
    model = small_model(signed_hinges=True, level_strengths=True)
    model.potential.w.assign(np.random.default_rng(2).standard_normal((2, len(model.lattice.hinges))).astype("f4"))
    inputs = model.inputs(sorted_configurations(4, seed=8))
    z = np.random.default_rng(3).standard_normal((4, 2)).astype(np.float32)
    path = tmp_path / "pair.keras"
    model.likelihood.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded([z, *inputs])), np.asarray(model.likelihood([z, *inputs])), rtol=1e-6)
    old = PairPotential(3, signed=True).get_config()
    del old["levels"]  # as configs were written before levels
    assert PairPotential.from_config(old).levels == 1


def small_model(core=None, seed=0, box=BOX, dim=DIM, **kwargs):
    lattice = PairLattice(N, dim, box, grid=4, sub=2, window=3, core=core)
    return build_pair_vae(lattice, made_units=(16,), components=2, background_units=(8,), seed=seed, **kwargs)


@pytest.mark.parametrize("dim,levels", [(3, 1), (2, 1), (3, 2)])
def test_the_sampler_draws_what_the_model_scores(dim, levels):
    keras.utils.set_random_seed(0)
    model = small_model(box=2.0, dim=dim, signed_hinges=levels == 2, level_strengths=levels == 2)
    # a small box: every particle near the ones below it, and a strong potential (with two levels,
    # the sub-cells' strengths alternate in sign, so that the cells' would pick other sub-cells)
    hinges = len(model.lattice.hinges)
    w = np.full(hinges, 3.0) if levels == 1 else np.stack([np.full(hinges, 3.0), 6.0 * (-1.0) ** np.arange(hinges)])
    model.potential.w.assign(w.astype(np.float32))
    latent = np.random.default_rng(7).standard_normal((8, 2)).astype(np.float32)
    drawn = draw_configurations(model, latent, seed=0, sharpen=1e6)  # each cell the model's likeliest
    assert drawn.shape == (8, N * dim) and 0.0 <= drawn.min() and drawn.max() <= 1.0
    x = drawn.reshape(8, N, dim)
    _, cells, subs = model.inputs(drawn)
    logits, sub_logits = (np.asarray(t) for t in model.potential([model.background([latent, x[..., -1]]), cells, subs]))
    plane = x[..., : dim - 1]
    cell = lattice_cell(plane, 4)
    np.testing.assert_array_equal(flat_index(cell, 4), logits.argmax(-1))
    sub = flat_index(lattice_sub_cell(plane, cell, 4, 2), 2)
    top = np.sort(sub_logits, axis=-1)
    decided = top[..., -1] - top[..., -2] > 1e-3  # with no particle near, the sub-cells tie: any is likeliest
    assert decided.sum() >= 10
    np.testing.assert_array_equal(sub[decided], sub_logits.argmax(-1)[decided])
    again = draw_configurations(model, latent, seed=0, sharpen=1e6)
    np.testing.assert_array_equal(drawn, again)


def test_given_heights_are_kept_and_the_plane_is_drawn_on_them():
    keras.utils.set_random_seed(0)
    model = small_model(box=2.0)
    model.potential.w.assign(np.full(len(model.lattice.hinges), 3.0, np.float32))
    latent = np.random.default_rng(7).standard_normal((5, 2)).astype(np.float32)
    heights = sorted_configurations(5, seed=3).reshape(5, N, DIM)[..., -1]
    drawn = draw_configurations(model, latent, seed=0, sharpen=1e6, heights=heights, chunk=2)
    x = drawn.reshape(5, N, DIM)
    np.testing.assert_array_equal(x[..., -1], heights)
    # each cell is the likeliest one given these heights: the background and the pair sums saw them
    _, cells, subs = model.inputs(drawn)
    logits, _ = model.potential([model.background([latent, heights]), cells, subs])
    np.testing.assert_array_equal(flat_index(lattice_cell(x[..., :-1], 4), 4), np.asarray(logits).argmax(-1))
    with pytest.raises(UsageError, match="one height per particle and code"):
        draw_configurations(model, latent, seed=0, heights=heights[:1])


def test_a_gibbs_sweep_redraws_each_particle_against_every_other_one_and_keeps_the_heights():
    # two particles at one height, the learned hinges switched off: only the hard core acts. The
    # lower particle is re-drawn first, against where the upper one still is; a sampler that saw
    # only the particles below (as the one-pass draw does) would put it anywhere
    keras.utils.set_random_seed(0)
    lattice = PairLattice(2, DIM, 5.0, grid=4, sub=4, window=1, core=(0.9, 0.9))
    model = build_pair_vae(lattice, made_units=(16,), components=2, background_units=(8,), seed=0)
    model.potential.w.assign(np.full(len(lattice.hinges), -30.0, np.float32))  # softplus: ~0
    rows = 300
    rng = np.random.default_rng(4)
    start = np.concatenate([rng.random((rows, 2, 2)), np.full((rows, 2, 1), 0.5)], axis=-1).astype(np.float32)
    latent = rng.standard_normal((rows, 2)).astype(np.float32)
    swept = gibbs_sweeps(model, latent, start.reshape(rows, -1), (0, 1, 3), seed=5)
    assert sorted(swept) == [0, 1, 3]
    np.testing.assert_array_equal(swept[0], start.reshape(rows, -1))
    one = swept[1].reshape(rows, 2, DIM)
    np.testing.assert_array_equal(one[..., -1], start[..., -1])  # heights kept
    sigma = 5.0  # box units to sigma
    # the core's sub-cell centres are >= 0.9 sigma away, a point of the sub-cell within 0.23 of its centre
    assert (sigma * np.linalg.norm(one[:, 0, :2] - start[:, 1, :2], axis=-1) > 0.6).all()
    assert (sigma * np.linalg.norm(one[:, 0, :2] - one[:, 1, :2], axis=-1) > 0.6).all()
    moved = sigma * np.linalg.norm(one[:, 0, :2] - start[:, 0, :2], axis=-1)
    assert np.median(moved) > 0.5  # re-drawn, not left where it was
    # one chain: three sweeps asked alone are the continuation of the first
    alone = gibbs_sweeps(model, latent, start.reshape(rows, -1), (3,), seed=5, chunk=128)  # backgrounds in chunks
    np.testing.assert_allclose(alone[3], swept[3], atol=1e-6)
    with pytest.raises(UsageError, match="sweep counts must be >= 0"):
        gibbs_sweeps(model, latent, start.reshape(rows, -1), (-1,), seed=5)
    with pytest.raises(UsageError, match="one configuration of 6 coordinates per code"):
        gibbs_sweeps(model, latent[:2], start.reshape(rows, -1), (1,), seed=5)


def test_training_lowers_the_negative_elbo_and_the_model_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = small_model(core=(0.3, 0.4))
    coords = sorted_configurations(64, seed=8)
    inputs = model.inputs(coords)
    model.vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.vae.fit(inputs, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "pair.keras"
    model.likelihood.save(path)
    loaded = keras.models.load_model(path)
    z = np.zeros((4, 2), np.float32)
    np.testing.assert_allclose(
        np.asarray(loaded([z, *[v[:4] for v in inputs]])), np.asarray(model.likelihood([z, *[v[:4] for v in inputs]]))
    )


def test_negative_elbo_terms_equal_the_loss_the_layers_train():
    """With a point-mass posterior (z_log_var = -30) a sampled z is z_mean, so the training loss on
    a batch equals recon + KL as negative_elbo_terms computes them (every dimension's KL above the
    free-bits floor, which then charges nothing extra)."""
    keras.utils.set_random_seed(1)
    model = small_model(core=(0.3, 0.4))
    head = model.encoder.get_layer("z_log_var")
    w, b = head.get_weights()
    head.set_weights([np.zeros_like(w), np.full_like(b, -30.0)])
    coords = sorted_configurations(20, seed=9)
    terms = negative_elbo_terms(model.encoder, model.likelihood, model.lattice, coords, draws=3, seed=0, batch_size=7)
    model.vae.compile(optimizer="adam")
    loss = model.vae.evaluate(model.inputs(coords), batch_size=20, verbose=0, return_dict=True)["loss"]
    assert terms["kl"].min() > 0.25 * 2
    np.testing.assert_allclose(terms["neg_elbo"], terms["recon"] + terms["kl"])
    assert float(np.mean(terms["neg_elbo"])) == pytest.approx(loss, rel=1e-4)


def test_a_height_sees_only_the_heights_below_it():
    """MADE's masks: changing height k moves the mixture parameters of heights k+1.. only."""
    keras.utils.set_random_seed(2)
    model = small_model()
    rng = np.random.default_rng(10)
    z, h = rng.standard_normal((1, 2)).astype(np.float32), rng.random((1, N)).astype(np.float32)
    per_height = 3 * model.components
    base = np.asarray(model.heights([z, h])).reshape(N, per_height)
    for k in range(N):
        moved = h.copy()
        moved[0, k] += 0.3
        changed = np.abs(np.asarray(model.heights([z, moved])).reshape(N, per_height) - base).max(axis=1) > 1e-6
        assert not changed[: k + 1].any() and (k == N - 1 or changed[k + 1 :].any()), k


def test_cells_at_their_edges_are_indexed_alike_by_the_model_and_the_lattice():
    """A position on a cell's edge, and one float32 step either side: CellNLL (keras.ops) and the
    lattice's sums (NumPy) must put it in the same cell and sub-cell."""
    grid, sub = 16, 4
    edges = np.arange(grid * sub + 1, dtype=np.float32) / np.float32(grid * sub)
    x = np.concatenate([edges, np.nextafter(edges, np.float32(0)), np.nextafter(edges, np.float32(1))])
    x = np.clip(x, 0, 1).astype(np.float32)
    xy = np.stack([x, x[::-1]], -1)[None]  # (1, P, 2)
    cell = lattice_cell(xy, grid)
    want = flat_index(cell, grid) * sub * sub + flat_index(lattice_sub_cell(xy, cell, grid, sub), sub)
    logits = np.where(np.arange(grid * grid) == flat_index(cell, grid)[..., None], 0.0, -1e4).astype(np.float32)
    sub_logits = np.where(
        np.arange(sub * sub) == flat_index(lattice_sub_cell(xy, cell, grid, sub), sub)[..., None], 0.0, -1e4
    ).astype(np.float32)
    nll = np.asarray(CellNLL(grid, sub)([xy, logits, sub_logits]))
    n = xy.shape[1]
    np.testing.assert_allclose(nll, -n * 2 * np.log(grid * sub), rtol=1e-5)  # every point on its own sub-cell
    assert len(np.unique(want)) > grid  # the edges span the lattice


def test_signed_hinges_may_attract_and_round_trip():
    layer = PairPotential(3, core=True, signed=True)
    layer.build(None)
    layer.w.assign(np.array([2.0, -1.0, 0.5], np.float32))
    np.testing.assert_allclose(np.asarray(layer.strengths()), [2.0, -1.0, 0.5, CORE_SLOPE])
    again = PairPotential.from_config(layer.get_config())
    assert again.signed and again.core_slope == CORE_SLOPE and again.n_hinges == 3
    assert not PairPotential(3).signed  # repulsive by default: softplus strengths
