import keras
import numpy as np
import pytest

from keras_clust.layers import summed_binary_crossentropy
from keras_clust.models.conv_vae import build_conv_vae


@pytest.fixture
def images():
    return (np.random.default_rng(0).random((64, 28, 28, 1)) > 0.6).astype(np.float32)


def test_shapes_and_deterministic_mean_encoder(images):
    m = build_conv_vae(latent_dim=3, n_channels=4, hidden_units=16, seed=1)
    mean, log_var, z = m.encoder.predict(images[:5], verbose=0)
    assert mean.shape == log_var.shape == z.shape == (5, 3)
    assert m.decoder.output.shape[1:] == (28, 28, 1)
    assert m.vae.predict(images[:5], verbose=0).shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(
        m.mean_encoder.predict(images[:5], verbose=0), m.mean_encoder.predict(images[:5], verbose=0)
    )
    np.testing.assert_allclose(m.mean_encoder.predict(images[:5], verbose=0), mean, atol=1e-6)
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in m.encoder.layers)
    n_conv = sum(isinstance(layer, keras.layers.Conv2D) for layer in m.encoder.layers)
    assert n_conv == 3 and n_bn == 4


def test_fit_logs_reconstruction_and_kl_and_lowers_loss(images, tmp_path):
    m = build_conv_vae(latent_dim=2, n_channels=4, hidden_units=16, seed=1)
    m.vae.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=summed_binary_crossentropy, metrics=[summed_binary_crossentropy]
    )
    hist = m.vae.fit(images, images, epochs=3, batch_size=16, verbose=0).history
    assert {"loss", "kl", "summed_binary_crossentropy"} <= set(hist)
    assert hist["loss"][-1] < hist["loss"][0]
    # total loss = reconstruction + beta * KL (beta = 1), per epoch average
    np.testing.assert_allclose(hist["loss"][-1], hist["summed_binary_crossentropy"][-1] + hist["kl"][-1], rtol=1e-3)
    m.mean_encoder.save(tmp_path / "enc.keras")
    again = keras.models.load_model(tmp_path / "enc.keras")
    np.testing.assert_allclose(
        again.predict(images[:4], verbose=0), m.mean_encoder.predict(images[:4], verbose=0), atol=1e-5
    )


def test_summed_bce_hand_computed():
    y = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.5, 0.5]], np.float32)
    got = keras.ops.convert_to_numpy(summed_binary_crossentropy(y, p))
    np.testing.assert_allclose(got, [2 * np.log(2.0)], rtol=1e-5)
