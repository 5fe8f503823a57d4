"""Contract test over every model builder, the dense AE's default widths and the BS6207 report's."""

import keras
import numpy as np
import pytest

from keras_clust.apps.mnist_l1 import report_hidden_units
from keras_clust.errors import UsageError
from keras_clust.models import build_conv_autoencoder, build_dense_autoencoder, halving_hidden_units

BUILDERS = {
    "dense_ae_z2": lambda: build_dense_autoencoder(16, 2, hidden_units=(8, 4)),
    "dense_ae_z3": lambda: build_dense_autoencoder(16, 3),
    "conv_ae_n2_z3": lambda: build_conv_autoencoder(2, 3),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builder_contract(name, tmp_path):
    """Every builder: named input, encoder/decoder shapes chain, .keras round trip."""
    ae = BUILDERS[name]()
    assert ae.encoder.inputs[0].name == "images"
    x = np.random.default_rng(0).random((4, *ae.autoencoder.inputs[0].shape[1:]), dtype=np.float32)
    codes = ae.encoder.predict(x, verbose=0)
    recon = ae.decoder.predict(codes, verbose=0)
    assert recon.shape == x.shape
    np.testing.assert_allclose(ae.autoencoder.predict(x, verbose=0), recon, atol=1e-6)
    ae.autoencoder.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), recon, atol=1e-6)


@pytest.mark.parametrize(
    "latent, widths",
    [(2, (256, 128, 64, 32, 16, 8, 4)), (16, (256, 128, 64)), (256, ()), (10, (256, 128, 64, 32, 16))],
)
def test_report_widths(latent, widths):
    assert report_hidden_units(latent) == widths


@pytest.mark.parametrize(
    "latent, start, widths",
    [
        (2, 256, (256, 128, 64, 32, 16, 8, 4)),
        (16, 256, (256, 128, 64, 32)),
        (256, 256, ()),
        (300, 256, ()),
        (10, 64, (64, 32, 16)),
        (1, 8, (8, 4, 2)),
    ],
)
def test_halving_widths(latent, start, widths):
    assert halving_hidden_units(latent, start) == widths


def test_bad_latent_sizes():
    with pytest.raises(UsageError):
        halving_hidden_units(0)
    with pytest.raises(UsageError):
        report_hidden_units(0)


@pytest.mark.parametrize(
    "latent, widths", [(2, (256, 128, 64, 32, 16, 8, 4)), (16, (256, 128, 64)), (256, ()), (10, (256, 128, 64, 32, 16))]
)
def test_dense_encoder_and_mirrored_decoder_have_the_given_widths(latent, widths):
    """The report's architecture: 8 dense layers for latent 2, 4 for 16, 1 for 256; decoder mirrored."""
    ae = build_dense_autoencoder(784, latent, hidden_units=report_hidden_units(latent))
    enc = [layer.units for layer in ae.encoder.layers if isinstance(layer, keras.layers.Dense)]
    dec = [layer.units for layer in ae.decoder.layers if isinstance(layer, keras.layers.Dense)]
    assert enc == [*widths, latent]
    assert dec == [*reversed(widths), 784]
    assert ae.decoder.layers[-1].activation.__name__ == "sigmoid"
    assert ae.encoder.output.shape[-1] == latent
    # parameters: a dense chain 784 -> widths -> latent -> reversed widths -> 784
    chain = [784, *widths, latent, *reversed(widths), 784]
    assert ae.autoencoder.count_params() == sum(a * b + b for a, b in zip(chain, chain[1:], strict=False))


def test_default_widths_halve_from_256():
    ae = build_dense_autoencoder(784, 16)
    enc = [layer.units for layer in ae.encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert enc == [256, 128, 64, 32, 16]


def test_one_epoch_lowers_l1_loss():
    rng = np.random.default_rng(0)
    x = (rng.random((256, 16)) > 0.5).astype(np.float32)
    ae = build_dense_autoencoder(16, 4, hidden_units=(32,))
    ae.autoencoder.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    before = ae.autoencoder.evaluate(x, x, verbose=0)
    ae.autoencoder.fit(x, x, epochs=1, batch_size=32, verbose=0)
    assert ae.autoencoder.evaluate(x, x, verbose=0) < before
