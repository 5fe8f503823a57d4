"""Transfer-learning classifier: freezing, independence from the source encoder, serving model."""

import keras
import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.export import export_savedmodel, load_signature, verify_export
from keras_clust.models import build_conv_encoder, build_transfer_classifier, probability_model


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    y = np.arange(96) % 3
    x = rng.random((96, 28, 28, 1), dtype=np.float32) * 0.3
    x[y == 1, :14] += 0.6  # classes differ by where the bright half is
    x[y == 2, 14:] += 0.6
    return x.clip(0, 1), y


def _fit(clf, x, y, epochs=3):
    clf.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])  # fmt: skip
    return clf.fit(x, y, epochs=epochs, batch_size=32, verbose=0).history


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_encoder_keeps_its_weights(images, freeze):
    x, y = images
    enc = build_conv_encoder(2, 4)
    source = [w.copy() for w in enc.get_weights()]
    clf = build_transfer_classifier(enc, n_classes=3, hidden_units=8, freeze=freeze, name="clf")
    before = [w.copy() for w in clf.get_layer("clf_encoder").get_weights()]
    np.testing.assert_array_equal(before[0], source[0])  # starts from the pre-trained weights
    hist = _fit(clf, x, y)
    after = clf.get_layer("clf_encoder").get_weights()
    same = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert same is freeze
    head = clf.get_layer("head_dense").get_weights()[0]
    assert not np.allclose(head, 0) and hist["loss"][-1] < hist["loss"][0]
    # the source encoder is never touched, frozen or not
    assert all(np.array_equal(a, b) for a, b in zip(source, enc.get_weights(), strict=True))
    n_head = 4 * 8 + 8 + 8 * 3 + 3
    n_trainable = sum(int(np.prod(w.shape)) for w in clf.trainable_weights)
    assert n_trainable == (n_head if freeze else n_head + enc.count_params())


def test_outputs_are_log_probabilities_and_serving_model(images, tmp_path):
    x, y = images
    clf = build_transfer_classifier(build_conv_encoder(2, 4), n_classes=3, hidden_units=8)
    log_p = clf.predict(x[:5], verbose=0)
    np.testing.assert_allclose(np.exp(log_p).sum(1), 1.0, atol=1e-5)
    serving = probability_model(clf)
    probs, log_probs = serving.predict(x[:5], verbose=0)
    np.testing.assert_allclose(np.log(probs), log_p, atol=1e-5)
    np.testing.assert_allclose(log_probs, log_p, atol=1e-6)
    exported = export_savedmodel(serving, "clf", tmp_path, input_name="images",
                                 output_names=("probabilities", "log_probabilities"))  # fmt: skip
    assert verify_export(exported, serving, x[:8]) < 1e-5
    out = load_signature(exported.path)(images=x[:2])
    assert set(out) == {"probabilities", "log_probabilities"}


def test_bad_head():
    with pytest.raises(UsageError):
        build_transfer_classifier(build_conv_encoder(2, 4), n_classes=1)
