"""The Fashion-MNIST report's CAE: every shape as the report lists it."""

import keras
import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.models.conv_ae import build_conv_autoencoder


@pytest.mark.parametrize("n, latent", [(8, 14), (4, 2), (16, 32)])
def test_report_shapes(n, latent):
    ae = build_conv_autoencoder(n, latent)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in ae.encoder.layers}
    assert shapes["enc_conv_0"] == (15, 15, n)
    assert shapes["enc_conv_1"] == (8, 8, 2 * n)
    assert shapes["enc_conv_2"] == (3, 3, 4 * n)
    assert shapes["enc_flatten"] == (36 * n,)
    assert shapes["enc_dense"] == (64,) and shapes["latent"] == (latent,)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in ae.decoder.layers}
    assert shapes["dec_dense_1"] == (36 * n,) and shapes["dec_reshape"] == (3, 3, 4 * n)
    assert shapes["dec_deconv_0"] == (7, 7, 2 * n)
    assert shapes["dec_deconv_1_crop"] == (14, 14, n)
    assert shapes["dec_deconv_2_crop"] == (28, 28, 1)
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    out = ae.autoencoder.predict(x, verbose=0)
    assert out.shape == (2, 28, 28, 1) and 0.0 <= out.min() and out.max() <= 1.0


def test_crop_matches_pytorch_padding():
    """ConvTranspose(padding=1, output_padding=1) == valid transposed conv cropped (1, 0)."""
    ae = build_conv_autoencoder(1, 2)
    layer = ae.decoder.get_layer("dec_deconv_1")
    crop = ae.decoder.get_layer("dec_deconv_1_crop")
    assert layer.padding == "valid" and crop.cropping == ((1, 0), (1, 0))


def test_one_epoch_lowers_mse_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((128, 28, 28, 1)) > 0.7).astype(np.float32)
    ae = build_conv_autoencoder(4, 8)
    ae.autoencoder.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    before = ae.autoencoder.evaluate(x, x, verbose=0)
    ae.autoencoder.fit(x, x, epochs=1, batch_size=16, verbose=0)
    assert ae.autoencoder.evaluate(x, x, verbose=0) < before
    ae.encoder.save(tmp_path / "enc.keras")
    again = keras.models.load_model(tmp_path / "enc.keras")
    np.testing.assert_allclose(again.predict(x[:4], verbose=0), ae.encoder.predict(x[:4], verbose=0), atol=1e-6)


def test_bad_sizes():
    with pytest.raises(UsageError):
        build_conv_autoencoder(0, 14)
