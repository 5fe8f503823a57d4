"""Representations of particle configurations, MDS/Kabsch, and the lj-fluid models."""

import math

import keras
import numpy as np
import pytest

from keras_clust.errors import DataError, UsageError
from keras_clust.layers import BernoulliNLL, DepthToSpace, GaussianNLL, SymmetricZeroDiagonal, UpperTriangle
from keras_clust.lj.geometry import classical_mds, kabsch_align, min_pair_distance, rmsd
from keras_clust.lj.representations import (
    cell_indices,
    density_grid,
    density_grid_tf,
    distance_matrices,
    grid_cells,
    grid_dataset,
    grids_of,
    matrices_to_distances,
    order_by_origin,
    pair_distances,
    smoothed_density_grid,
    sorted_coordinates,
    unsort_coordinates,
)
from keras_clust.lj.vae import build_coordinate_net, build_distance_vae, build_grid_vae, build_particle_set_vae


@pytest.fixture
def configs():
    return np.random.default_rng(0).random((6, 12, 3)) * 5.0


def random_rotation(rng, dim=3):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


# --- representations ---------------------------------------------------------------------


def test_sorted_coordinates_ignore_particle_order(configs):
    perm = np.random.default_rng(1).permutation(12)
    a = sorted_coordinates(configs, 5.0)
    assert a.shape == (6, 36) and a.dtype == np.float32
    np.testing.assert_array_equal(a, sorted_coordinates(configs[:, perm], 5.0))
    x = a.reshape(6, 12, 3)[..., 0]
    assert np.all(np.diff(x, axis=1) >= 0) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(
        np.sort(unsort_coordinates(a, 5.0, 3)[..., 0], 1), np.sort(configs[..., 0], 1), rtol=1e-6
    )
    by_height = sorted_coordinates(configs, 5.0, axis=2).reshape(6, 12, 3)
    np.testing.assert_array_equal(by_height.reshape(6, 36), sorted_coordinates(configs[:, perm], 5.0, axis=2))
    assert np.all(np.diff(by_height[..., 2], axis=1) >= 0)
    # whole particles move: row k is the k-th lowest particle's (x, y, z), not each column sorted on its own
    for s in range(6):
        lowest = np.argsort(configs[s, :, 2])
        np.testing.assert_allclose(by_height[s], configs[s, lowest] / 5.0, rtol=1e-6)


def test_distance_matrices_are_scaled_ordered_and_permutation_invariant(configs):
    m = distance_matrices(configs, 5.0)
    assert m.shape == (6, 12, 12, 1)
    assert 0 <= m.min() and m.max() <= 1
    np.testing.assert_allclose(m[..., 0], np.swapaxes(m[..., 0], 1, 2))
    np.testing.assert_array_equal(m[:, np.arange(12), np.arange(12), 0], 0)
    perm = np.random.default_rng(2).permutation(12)
    np.testing.assert_allclose(m, distance_matrices(configs[:, perm], 5.0))
    ordered = order_by_origin(configs)
    assert np.all(np.diff(np.linalg.norm(ordered, axis=-1), axis=1) >= 0)
    d = matrices_to_distances(m, 5.0, 3)
    np.testing.assert_allclose(d, pair_distances(ordered), rtol=1e-5, atol=1e-5)


def test_density_grid_counts_every_particle_once_and_matches_tensorflow(configs):
    g = density_grid(configs, 5.0, 16)
    assert g.shape == (6, 16, 16, 16, 1)
    assert g.max() == 1.0
    # a cell of side 5/16 cannot hold two of these particles unless they are closer than its diagonal
    counts = g.reshape(6, -1) * 1.0
    np.testing.assert_array_equal(
        np.count_nonzero(counts, axis=1), [len(np.unique(r)) for r in cell_indices(configs, 5.0, 16)]
    )
    np.testing.assert_allclose(density_grid_tf(configs, 5.0, 16, 3).numpy(), g)
    # a particle at x is in cell floor(x / h), the wall at L in the last cell
    one = np.array([[[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [1.0, 2.5, 4.99]]])
    flat = cell_indices(one, 5.0, 8)[0]
    assert list(flat) == [0, 8**3 - 1, (1 * 8 + 4) * 8 + 7]


def test_density_grid_of_two_particles_in_one_cell_is_normalised_by_the_largest_count():
    pos = np.array([[[0.1, 0.1], [0.2, 0.2], [3.0, 3.0]]])
    g = density_grid(pos, 4.0, 8)[0, ..., 0]
    assert g[0, 0] == 1.0 and g[6, 6] == 0.5 and g.sum() == 1.5


def test_grid_dataset_builds_batches_like_the_numpy_reference(configs):
    batches = [b.numpy() for b in grid_dataset(configs, 5.0, 8, batch_size=4)]
    assert [len(b) for b in batches] == [4, 2]
    np.testing.assert_allclose(np.concatenate(batches), density_grid(configs, 5.0, 8))
    a = np.concatenate([b.numpy() for b in grid_dataset(configs, 5.0, 8, 6, shuffle=True, seed=3)])
    assert sorted(a.reshape(6, -1).sum(1).tolist()) == sorted(
        density_grid(configs, 5.0, 8).reshape(6, -1).sum(1).tolist()
    )


def test_smoothed_grid_is_a_sum_of_unit_blobs_and_matches_tensorflow(configs):
    # one particle at a cell centre peaks at exactly 1; its blob's sum is the Gaussian's integral / h^dim
    h, w = 0.25, 0.3
    one = np.array([[[2.125, 2.125, 2.125]]])  # the centre of cell (8, 8, 8) of 16 on a 4-wide box
    g = smoothed_density_grid(one, 4.0, 16, w)[0, ..., 0]
    assert g.shape == (16, 16, 16) and g[8, 8, 8] == pytest.approx(1.0) and g.max() == g[8, 8, 8]
    assert g.sum() == pytest.approx((2 * np.pi * w**2) ** 1.5 / h**3, rel=1e-3)
    # a pair closer than a particle's diameter makes a peak well above a lone particle's (the overlap
    # anomaly is a local density spike); a pair at contact (1 sigma) does not
    # (width 0.35: 2 exp(-0.25^2 / 2 0.35^2) = 1.55 between a pair at 0.5 sigma)
    pair = smoothed_density_grid(np.array([[[2.0, 2.0], [2.5, 2.0]], [[1.5, 2.0], [2.5, 2.0]]]), 4.0, 32, 0.35)
    assert pair[0].max() > 1.5 and pair[1].max() < 1.05
    # order-free, and the tf.data pipeline makes the same grids
    np.testing.assert_allclose(
        smoothed_density_grid(configs[:, ::-1], 5.0, 8, 0.3), smoothed_density_grid(configs, 5.0, 8, 0.3), atol=1e-5
    )
    batches = np.concatenate([b.numpy() for b in grid_dataset(configs, 5.0, 8, 4, smoothing=0.3)])
    np.testing.assert_allclose(batches, smoothed_density_grid(configs, 5.0, 8, 0.3), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(grids_of(configs, 5.0, 8, 0.3), smoothed_density_grid(configs, 5.0, 8, 0.3))
    np.testing.assert_array_equal(grids_of(configs, 5.0, 8), density_grid(configs, 5.0, 8))
    with pytest.raises(UsageError, match="smoothing width must be > 0"):
        smoothed_density_grid(configs, 5.0, 8, 0.0)


def test_grid_cells_accepts_multiples_of_eight_and_names_an_h_that_works():
    assert grid_cells(5.0, 5.0 / 32) == 32 and grid_cells(4.0, 0.5) == 8
    with pytest.raises(UsageError, match=r"h = 0.1 .* 50 cells.*h = 0.104167 \(48 cells\)"):
        grid_cells(5.0, 0.1)
    with pytest.raises(UsageError, match="whole number of cells"):
        grid_cells(5.0, 0.3)
    with pytest.raises(UsageError):
        grid_cells(5.0, -1.0)


# --- geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_mds_of_an_exact_distance_matrix_gives_the_configuration_back(dim):
    rng = np.random.default_rng(dim)
    x = rng.random((4, 20, dim)) * 5
    back = kabsch_align(classical_mds(pair_distances(x), dim), x)
    assert rmsd(back, x).max() < 1e-6


def test_kabsch_undoes_rotation_translation_and_reflection():
    rng = np.random.default_rng(5)
    x = rng.random((15, 3)) * 5
    rot = random_rotation(rng)
    mirror = np.diag([1.0, 1.0, -1.0])
    moved = x @ rot.T @ mirror + np.array([3.0, -1.0, 2.0])
    assert rmsd(kabsch_align(moved, x, reflection=True), x) < 1e-10
    # a proper rotation cannot undo the mirror image
    assert rmsd(kabsch_align(moved, x, reflection=False), x) > 0.1
    assert rmsd(kabsch_align(x @ rot.T + 1.0, x, reflection=False), x) < 1e-10


def test_geometry_errors_and_min_pair_distance():
    with pytest.raises(DataError, match="shape"):
        classical_mds(np.zeros((3, 4)), 2)
    with pytest.raises(DataError, match="align"):
        kabsch_align(np.zeros((3, 2)), np.zeros((4, 2)))
    pos = np.array([[[0, 0, 0], [3, 4, 0], [0, 0, 1]]], float)
    np.testing.assert_allclose(min_pair_distance(pos), [1.0])


# --- layers and models -----------------------------------------------------------------------


def test_bernoulli_nll_is_the_summed_cross_entropy():
    rng = np.random.default_rng(0)
    x = (rng.random((4, 3, 3, 1)) > 0.7).astype("float32")
    logits = rng.normal(size=(4, 3, 3, 1)).astype("float32") * 3
    layer = BernoulliNLL()
    out = layer([x, logits])
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = np.mean(-np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1), axis=1))
    assert math.isclose(float(layer.losses[0]), expected, rel_tol=1e-5)
    np.testing.assert_allclose(np.asarray(out), p, rtol=1e-5)


def test_upper_triangle_and_symmetric_zero_diagonal():
    m = np.arange(2 * 16, dtype="float32").reshape(2, 4, 4, 1)
    tri = np.asarray(UpperTriangle(4)(m))
    np.testing.assert_array_equal(tri[0], [1, 2, 3, 6, 7, 11])
    s = np.asarray(SymmetricZeroDiagonal()(m))[..., 0]
    np.testing.assert_allclose(s, np.swapaxes(s, 1, 2))
    assert np.all(s[:, np.arange(4), np.arange(4)] == 0)
    assert s[0, 0, 1] == (1 + 4) / 2
    assert UpperTriangle.from_config(UpperTriangle(4).get_config()).n == 4


def _full_resolution_channels(model: keras.Model, cells: int) -> list[int]:
    """Channels of every layer output (in ``model`` and the models inside it) at the full grid size."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _full_resolution_channels(layer, cells)
        elif not isinstance(layer, keras.layers.InputLayer):
            for output in keras.tree.flatten(layer.output):
                if len(output.shape) >= 4 and all(d == cells for d in output.shape[1:-1]):
                    found.append(output.shape[-1])
    return found


@pytest.mark.parametrize("blocks", ["pool", "strided", "pool-deconv", "pool-shuffle"])
@pytest.mark.parametrize("dim", [2, 3])
def test_grid_vae_shapes_names_and_elbo_loss(dim, blocks):
    keras.utils.set_random_seed(0)
    m = build_grid_vae(8, dim, (2, 2, 4), 3, latent_dim=3, seed=1, blocks=blocks)
    # the strided design never makes a multi-channel map at full resolution (what makes it cheap);
    # pool-deconv and pool-shuffle only in their decoders, their encoder is pool's
    channels = _full_resolution_channels(m.vae, 8)
    assert (max(channels) == 1) == (blocks == "strided"), channels
    assert (max(_full_resolution_channels(m.decoder, 8)) == 1) == (blocks != "pool")
    encoder = [layer.name for layer in m.mean_encoder.layers]
    assert ("enc_pool_0" in encoder) == (blocks != "strided")
    if blocks == "pool-shuffle":  # the last block: 2**dim channels at half the size, laid out as its cells
        logits = m.vae.get_layer("grid_vae_decoder_logits")
        assert logits.get_layer("occupancy_logits_subcells").output.shape == (None, *([4] * dim), 2**dim)
        assert isinstance(logits.get_layer("occupancy_logits"), DepthToSpace)
    if dim == 2:  # a grid whose smallest map is 3 cells, as the run's 24 cells with three blocks
        wide = build_grid_vae(24, dim, (2, 2, 4), 3, latent_dim=3, seed=1, blocks=blocks)
        assert wide.decoder.predict(np.zeros((1, 3), "float32"), verbose=0).shape == (1, 24, 24, 1)
    x = density_grid(np.random.default_rng(0).random((5, 6, dim)) * 4, 4.0, 8)
    assert x.shape == (5, *([8] * dim), 1)
    assert m.mean_encoder.predict(x, verbose=0).shape == (5, 3)
    decoded = m.decoder.predict(np.zeros((2, 3), "float32"), verbose=0)
    assert decoded.shape == (2, *([8] * dim), 1) and 0 < decoded.min() and decoded.max() < 1
    m.vae.compile(optimizer="adam")
    logs = m.vae.evaluate(x, verbose=0, return_dict=True)
    assert math.isclose(logs["loss"], logs["recon"] + logs["kl"], rel_tol=1e-3, abs_tol=0.5)
    assert [layer.name for layer in m.mean_encoder.layers][0] == "density_grid"
    with pytest.raises(UsageError, match="halved"):
        build_grid_vae(12, dim, (2, 2, 2), blocks=blocks)
    with pytest.raises(UsageError, match="blocks must be one of pool, strided"):
        build_grid_vae(8, dim, (2, 2, 2), blocks="dilated")


@pytest.mark.parametrize("blocks", ["pool", "strided", "pool-deconv", "pool-shuffle"])
def test_gaussian_grid_vae_decodes_a_density_and_its_loss_is_the_elbo(blocks):
    keras.utils.set_random_seed(0)
    m = build_grid_vae(8, 3, (2, 2, 4), 3, latent_dim=3, seed=1, blocks=blocks, likelihood="gaussian")
    x = smoothed_density_grid(np.random.default_rng(0).random((5, 6, 3)) * 4, 4.0, 8, 0.4)
    decoded = m.decoder.predict(np.zeros((2, 3), "float32"), verbose=0)
    assert decoded.shape == (2, 8, 8, 8, 1) and m.decoder.layers[-1].name == "density_mean"
    layer = m.vae.get_layer("likelihood")
    assert isinstance(layer, GaussianNLL) and layer.log_var.shape == (8**3,)  # one sigma per cell
    m.vae.compile(optimizer="adam")
    logs = m.vae.evaluate(x, verbose=0, return_dict=True)
    assert math.isclose(logs["loss"], logs["recon"] + logs["kl"], rel_tol=1e-3, abs_tol=0.5)
    with pytest.raises(UsageError, match="likelihood must be one of bernoulli, gaussian"):
        build_grid_vae(8, 3, (2, 2, 2), likelihood="poisson")


def test_distance_vae_decodes_symmetric_matrices_and_learns(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = distance_matrices(rng.random((64, 10, 3)) * 5, 5.0)
    m = build_distance_vae(10, latent_dim=4, filters=(4, 8), hidden_units=16, seed=0)
    out = m.decoder.predict(rng.normal(size=(3, 4)).astype("float32"), verbose=0)[..., 0]
    assert out.shape == (3, 10, 10)
    np.testing.assert_allclose(out, np.swapaxes(out, 1, 2), atol=1e-6)
    m.vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    hist = m.vae.fit(x, epochs=15, batch_size=16, verbose=0).history
    assert hist["loss"][-1] < hist["loss"][0] - 10  # 45 distances, learned sigma: the NLL must fall clearly
    path = tmp_path / "dec.keras"
    m.decoder.save(path)
    z = rng.normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(z, verbose=0), m.decoder.predict(z, verbose=0), atol=1e-6
    )


def test_particle_set_encoder_ignores_the_particles_order_and_its_loss_is_the_elbo(tmp_path, configs):
    """The DeepSets encoder's code is the same for any order of the particles (a dense encoder's is
    not); the decoder gives N * dim coordinates; with a point-mass posterior the loss is the
    Gaussian NLL of the decoded coordinates plus the closed-form KL; the encoder survives a save."""
    keras.utils.set_random_seed(0)
    m = build_particle_set_vae(12, 3, latent_dim=2, hidden_units=(8,), set_units=(16, 16), seed=0)
    x = sorted_coordinates(configs, 5.0, axis=2)
    shuffled = (configs[:, np.random.default_rng(2).permutation(12)] / 5.0).reshape(6, 36).astype("float32")
    codes = m.mean_encoder.predict(x, verbose=0)
    np.testing.assert_allclose(m.mean_encoder.predict(shuffled, verbose=0), codes, atol=1e-5)
    assert np.abs(codes - codes[:1]).max() > 1e-4  # different configurations, different codes
    assert m.decoder.predict(np.zeros((2, 2), "float32"), verbose=0).shape == (2, 36)
    # the loss at a point-mass posterior: z = z_mean exactly
    m.encoder.get_layer("z_log_var").set_weights([np.zeros((8, 2), "float32"), np.full(2, -30.0, "float32")])
    z_mean = m.mean_encoder.predict(x, verbose=0).astype(np.float64)
    mu = m.decoder.predict(z_mean.astype("float32"), verbose=0).astype(np.float64)
    log_var = np.asarray(keras.ops.convert_to_numpy(m.vae.get_layer("likelihood").observation_log_var()), np.float64)
    nll = 0.5 * np.sum(np.log(2 * np.pi) + log_var + (x - mu) ** 2 / np.exp(log_var), axis=1)
    kl = 0.5 * np.sum(z_mean**2 + np.exp(-30.0) - 1.0 + 30.0, axis=1)
    m.vae.compile(optimizer="adam")
    loss = m.vae.evaluate(x, batch_size=6, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(float(np.mean(nll + kl)), rel=1e-4)
    path = tmp_path / "enc.keras"
    m.mean_encoder.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), codes, atol=1e-6)
    with pytest.raises(UsageError):
        build_particle_set_vae(12, 3, set_units=())


def test_coordinate_net_maps_matrices_to_boxed_coordinates():
    net = build_coordinate_net(7, 2, (8,))
    y = net.predict(np.zeros((3, 7, 7, 1), "float32"), verbose=0)
    assert y.shape == (3, 7, 2) and 0 < y.min() and y.max() < 1
    with pytest.raises(UsageError):
        build_coordinate_net(1, 2)


def test_contacts_are_the_attractive_pair_term_and_the_layer_agrees():
    from keras_clust.lj.representations import contacts
    from keras_clust.lj.vae import PairContacts

    r = np.array([0.0, 0.1, 0.5, 0.8, 1.0, 2.0, 8.0])
    t = contacts(r)
    np.testing.assert_allclose(t, [4096.0, 4096.0, 64.0, 0.8**-6, 1.0, 1 / 64, 8.0**-6])  # floored at 0.25
    layer = PairContacts(diagonal=4.0)
    np.testing.assert_allclose(np.asarray(layer(np.float32(r / 4.0)[None])), t[None], rtol=1e-5)
    again = PairContacts.from_config(layer.get_config())
    assert (again.diagonal, again.min_distance) == (4.0, 0.25)
    with pytest.raises(ValueError, match="must be > 0"):
        PairContacts(diagonal=0.0)


def test_cell_power_layer_and_its_limits():
    from keras_clust.lj.vae import CellPower, build_grid_vae

    layer = CellPower(8)
    np.testing.assert_allclose(
        np.asarray(layer(np.array([[0.5, 1.0, 1.5, -1.0]], np.float32))), [[0.5**8, 1, 1.5**8, 1]]
    )
    assert CellPower.from_config(layer.get_config()).exponent == 8
    with pytest.raises(ValueError, match="integer >= 1"):
        CellPower(2.5)
    with pytest.raises(UsageError, match="peak_power needs the Gaussian"):
        build_grid_vae(8, 3, (2, 2, 2), latent_dim=2, peak_power=8)  # occupancy grids: Bernoulli
