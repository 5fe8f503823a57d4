import keras
import numpy as np
import pytest

from keras_clust.layers import DepthToSpace, GaussianNLL, KLDivergence, Sampling, gaussian_nll, kl_divergence


def _vae_like(beta=1.0):
    inp = keras.Input((3,), name="x")
    mean = keras.layers.Dense(2, name="z_mean")(inp)
    log_var = keras.layers.Dense(2, name="z_log_var")(inp)
    mean, log_var = KLDivergence(beta=beta, name="kl")([mean, log_var])
    z = Sampling(seed=7, name="z")([mean, log_var])
    return keras.Model(inp, [mean, log_var, z])


def test_kl_hand_computed():
    mean = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32)
    log_var = np.array([[0.0, 0.0], [0.0, np.log(2.0)]], np.float32)
    # KL = 0.5 * sum(mu^2 + var - log var - 1)
    want = [0.0, 0.5 * (1.0 + (2.0 - np.log(2.0) - 1.0))]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl_divergence(mean, log_var)), want, rtol=1e-6)


def test_kl_layer_adds_weighted_loss():
    layer = KLDivergence(beta=0.5)
    mean = np.array([[1.0, 0.0]], np.float32)
    log_var = np.zeros((1, 2), np.float32)
    out = layer([mean, log_var])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out[0]), mean)
    assert float(keras.ops.convert_to_numpy(layer.losses[0])) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        KLDivergence(beta=-1)


def test_free_bits_charge_each_dimension_only_above_its_floor():
    import tensorflow as tf

    # batch-mean KL per dimension: 2.0 (means +-2) and 0.125 (means +-0.5); the floor is 0.5 nats
    mean = tf.constant([[2.0, 0.5], [-2.0, -0.5]])
    log_var = tf.zeros((2, 2))
    layer = KLDivergence(beta=2.0, free_bits=0.5)
    with tf.GradientTape() as tape:
        tape.watch(mean)
        layer([mean, log_var])
        loss = layer.losses[0]
    assert float(loss) == pytest.approx(2.0 * (2.0 + 0.5))
    assert float(layer.kl_tracker.result()) == pytest.approx(2.125)  # the metric is the true KL
    grad = tape.gradient(loss, mean).numpy()
    np.testing.assert_allclose(grad[:, 1], 0.0)  # below its floor a dimension's KL costs nothing
    np.testing.assert_allclose(grad[:, 0], [2.0, -2.0])  # beta * d(mean KL)/d mu = 2 * mu / 2
    no_floor = KLDivergence(beta=2.0)
    no_floor([mean, log_var])
    assert float(no_floor.losses[0]) == pytest.approx(2.0 * 2.125)
    restored = KLDivergence.from_config(layer.get_config())
    assert (restored.beta, restored.free_bits) == (2.0, 0.5)
    with pytest.raises(ValueError):
        KLDivergence(free_bits=-0.1)


def test_sampling_statistics():
    layer = Sampling(seed=3)
    mean = np.full((20000, 2), 2.0, np.float32)
    log_var = np.full((20000, 2), np.log(4.0), np.float32)
    z = keras.ops.convert_to_numpy(layer([mean, log_var]))
    assert z.mean() == pytest.approx(2.0, abs=0.05)
    assert z.std() == pytest.approx(2.0, abs=0.05)


def test_sampling_seeded_reproducible():
    mean = np.zeros((5, 2), np.float32)
    a = keras.ops.convert_to_numpy(Sampling(seed=11)([mean, mean]))
    b = keras.ops.convert_to_numpy(Sampling(seed=11)([mean, mean]))
    np.testing.assert_array_equal(a, b)


def test_keras_file_round_trip(tmp_path):
    model = _vae_like(beta=0.3)
    x = np.random.default_rng(0).random((4, 3), dtype=np.float32)
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0)[0], model.predict(x, verbose=0)[0], atol=1e-6)
    assert loaded.get_layer("kl").beta == pytest.approx(0.3)
    assert loaded.get_layer("z").seed == 7
    assert isinstance(loaded.get_layer("z"), Sampling)


def test_kl_loss_enters_training():
    model = _vae_like()
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).random((16, 3), dtype=np.float32)
    before = float(np.mean(keras.ops.convert_to_numpy(kl_divergence(*model.predict(x, verbose=0)[:2]))))
    hist = model.fit(x, epochs=20, verbose=0)
    after = float(np.mean(keras.ops.convert_to_numpy(kl_divergence(*model.predict(x, verbose=0)[:2]))))
    assert hist.history["loss"][0] > 0 and after < before


def test_gaussian_nll_hand_computed_with_constants():
    x = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
    mean = np.array([[1.0, 1.0], [2.0, 1.0]], np.float32)
    log_var = np.array([0.0, np.log(4.0)], np.float32)
    # sample 1: 0.5 * [(1/1 + 0 + log 2pi) + (0/4 + log 4 + log 2pi)] = 0.5 + log 2 + log 2pi
    # sample 2: 0.5 * [(0 + 0 + log 2pi) + (4/4 + log 4 + log 2pi)] = 0.5 + log 2 + log 2pi
    want = [0.5 + np.log(2.0) + np.log(2 * np.pi)] * 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gaussian_nll(x, mean, log_var)), want, rtol=1e-6)
    # a standard normal at its mean: 0.5 log 2pi per feature (the constant is not dropped)
    got = gaussian_nll(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32), 0.0)
    assert float(keras.ops.convert_to_numpy(got)[0]) == pytest.approx(1.5 * np.log(2 * np.pi), rel=1e-6)


def test_gaussian_nll_layer_fixed_and_learned_sigma(tmp_path):
    x = np.array([[0.0, 1.0]], np.float32)
    mean = np.array([[1.0, 1.0]], np.float32)
    fixed = GaussianNLL(sigma=2.0)
    out = fixed([x, mean])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), mean)
    want = 0.5 * (1.0 / 4.0 + 2 * np.log(4.0) + 2 * np.log(2 * np.pi))
    assert float(keras.ops.convert_to_numpy(fixed.losses[0])) == pytest.approx(want, rel=1e-6)
    assert not fixed.trainable_weights

    learned = GaussianNLL(init_log_var=np.log(4.0))
    learned([x, mean])
    assert [w.shape for w in learned.trainable_weights] == [(2,)]
    assert float(keras.ops.convert_to_numpy(learned.losses[0])) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError):
        GaussianNLL(sigma=0.0)

    inp = keras.Input((2,), name="x")
    model = keras.Model(inp, GaussianNLL(name="likelihood")([inp, keras.layers.Dense(2, name="mu")(inp)]))
    model.get_layer("likelihood").log_var.assign([0.5, -0.5])
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.get_layer("likelihood").log_var), [0.5, -0.5])


def test_gaussian_nll_log_var_scale_same_likelihood_faster_sigma():
    """A scaled log sigma^2 starts at the same likelihood, survives get_config, and Adam moves
    sigma about scale times farther per step than the unscaled layer."""
    x = np.array([[0.0, 1.0]], np.float32)
    mean = np.array([[1.0, 1.0]], np.float32)
    plain, scaled = GaussianNLL(init_log_var=-1.0), GaussianNLL(init_log_var=-1.0, log_var_scale=10.0)
    plain([x, mean]), scaled([x, mean])
    assert float(keras.ops.convert_to_numpy(scaled.losses[0])) == pytest.approx(
        float(keras.ops.convert_to_numpy(plain.losses[0])), rel=1e-6
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled.observation_log_var()), [-1.0, -1.0], rtol=1e-6)
    assert GaussianNLL.from_config(scaled.get_config()).log_var_scale == 10.0
    with pytest.raises(ValueError):
        GaussianNLL(log_var_scale=0.0)

    def moved(scale: float) -> float:
        inp = keras.Input((2,))
        layer = GaussianNLL(init_log_var=-1.0, log_var_scale=scale, name="likelihood")
        model = keras.Model(inp, layer([inp, keras.ops.zeros_like(inp)]))
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(np.ones((32, 2), np.float32), epochs=1, batch_size=8, verbose=0)  # 4 steps toward log var 0
        return float(np.mean(keras.ops.convert_to_numpy(layer.observation_log_var()))) + 1.0

    slow, fast = moved(1.0), moved(10.0)
    assert slow > 0 and fast == pytest.approx(10 * slow, rel=0.05)


def test_gaussian_nll_min_sigma_floors_a_learned_sigma():
    """With a floor, sigma starts at init_log_var, never falls below min_sigma however far the
    free weight goes, and the floor survives get_config."""
    x = np.zeros((1, 3), np.float32)
    layer = GaussianNLL(init_log_var=-4.0, log_var_scale=10.0, min_sigma=0.01)
    layer([x, x])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.observation_log_var()), [-4.0] * 3, rtol=1e-5)
    layer.log_var.assign(np.array([-100.0, -1.0, 0.0], np.float32))  # free log var -1000, -10, 0
    got = keras.ops.convert_to_numpy(layer.observation_log_var())
    floor = 2 * np.log(0.01)
    assert got[0] == pytest.approx(floor, abs=1e-6) and got[1] > floor and got[2] == pytest.approx(0.0, abs=1e-3)
    # a perfect reconstruction scores -log N(0; 0, sigma^2) per feature with the floored sigma
    layer([x, x])
    want = 0.5 * np.sum(got + np.log(2 * np.pi))
    assert float(keras.ops.convert_to_numpy(layer.losses[-1])) == pytest.approx(want, rel=1e-5)
    clone = GaussianNLL.from_config(layer.get_config())
    assert clone.min_sigma == 0.01
    with pytest.raises(ValueError):
        GaussianNLL(init_log_var=-10.0, min_sigma=0.01)  # starts below its floor
    with pytest.raises(ValueError):
        GaussianNLL(sigma=1.0, min_sigma=0.01)  # a fixed sigma has nothing to floor
    tiny = GaussianNLL(init_log_var=-4.0, min_sigma=1e-300)  # a floor far below: no overflow
    tiny([x, x])
    assert float(keras.ops.convert_to_numpy(tiny.observation_log_var())[0]) == pytest.approx(-4.0, abs=1e-3)


def test_depth_to_space_matches_tensorflow_in_2d_and_places_each_channel_block_in_3d(tmp_path):
    import tensorflow as tf

    x = np.random.default_rng(0).random((2, 3, 4, 12)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(DepthToSpace(2)(x)), tf.nn.depth_to_space(x, 2).numpy())
    # 3-D, block 2, 2 channels out: channels ((i*2 + j)*2 + k)*2 + c go to offset (i, j, k)
    x = np.random.default_rng(1).random((2, 3, 2, 4, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(DepthToSpace(2)(x))
    assert y.shape == (2, 6, 4, 8, 2)
    for i in range(2):
        for j in range(2):
            for k in range(2):
                first = ((i * 2 + j) * 2 + k) * 2
                np.testing.assert_array_equal(y[:, i::2, j::2, k::2], x[..., first : first + 2])
    # a sub-pixel convolution in a saved model loads back with its block (3, not the default)
    inputs = keras.Input((4, 4, 4, 3))
    model = keras.Model(inputs, DepthToSpace(3, name="shuffle")(keras.layers.Conv3D(27, 3, padding="same")(inputs)))
    assert model.output.shape == (None, 12, 12, 12, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("shuffle").block == 3
    probe = np.random.default_rng(2).random((1, 4, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(probe, verbose=0), model.predict(probe, verbose=0), atol=1e-6)
    # maps of any size: the spatial axes may be unknown until called
    flexible = keras.Model(inputs := keras.Input((None, None, 12)), DepthToSpace(2)(inputs))
    assert flexible.output.shape == (None, None, None, 3)
    assert flexible.predict(np.zeros((2, 5, 3, 12), "float32"), verbose=0).shape == (2, 10, 6, 3)
    with pytest.raises(ValueError, match="cannot be shared among 2"):
        DepthToSpace(2)(keras.Input((4, 4, 4, 6)))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        DepthToSpace(2)(keras.Input((4, 8)))
