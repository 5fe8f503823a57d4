"""Transfer-learning classifier: freezing, independence from the source encoder, serving model,
per-variable learning rates, the schedule and early stopping on validation accuracy."""

import keras
import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.export import export_savedmodel, load_signature, verify_export
from keras_clust.models import build_conv_encoder, build_transfer_classifier, probability_model
from keras_clust.models.classifier import LayerwiseAdam, best_val_accuracy, compile_transfer_classifier


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    y = np.arange(96) % 3
    x = rng.random((96, 28, 28, 1), dtype=np.float32) * 0.3
    x[y == 1, :14] += 0.6  # classes differ by where the bright half is
    x[y == 2, 14:] += 0.6
    return x.clip(0, 1), y


def _fit(clf, x, y, epochs=3):
    clf.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
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
    exported = export_savedmodel(
        serving, "clf", tmp_path, input_name="images", output_names=("probabilities", "log_probabilities")
    )
    assert verify_export(exported, serving, x[:8]) < 1e-5
    out = load_signature(exported.path)(images=x[:2])
    assert set(out) == {"probabilities", "log_probabilities"}


def test_bad_head():
    with pytest.raises(UsageError):
        build_transfer_classifier(build_conv_encoder(2, 4), n_classes=1)


def _finetune(images, factor, schedule="constant", epochs=1, batch_size=96, seed=7):
    x, y = images
    keras.utils.set_random_seed(seed)
    enc = build_conv_encoder(2, 4)
    keras.utils.set_random_seed(seed)
    clf = build_transfer_classifier(enc, n_classes=3, hidden_units=8, freeze=False, name="clf")
    compile_transfer_classifier(
        clf, 1e-2, encoder_lr_factor=factor, schedule=schedule, decay_steps=epochs * -(-len(x) // batch_size)
    )
    enc_before = [w.copy() for w in clf.get_layer("clf_encoder").get_weights()]
    head_before = clf.get_layer("head_dense").get_weights()[0].copy()
    clf.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    enc_moves = [np.abs(a - b) for a, b in zip(clf.get_layer("clf_encoder").get_weights(), enc_before, strict=True)]
    head_moves = np.abs(clf.get_layer("head_dense").get_weights()[0] - head_before)
    return clf, enc_moves, head_moves


def test_encoder_takes_smaller_steps_than_the_head(images):
    """One Adam step moves each weight by about the learning rate (|m/sqrt(v)| = 1 on the first
    step); the encoder's weights move by a tenth of it, the head's by all of it."""
    clf, enc_moves, head_moves = _finetune(images, 0.1)
    assert float(np.max(head_moves)) == pytest.approx(1e-2, rel=1e-3)
    assert float(np.max(np.concatenate([m.ravel() for m in enc_moves]))) == pytest.approx(1e-3, rel=1e-3)
    assert isinstance(clf.optimizer, LayerwiseAdam)
    assert set(clf.optimizer.lr_multipliers) == {v.path for v in clf.get_layer("clf_encoder").trainable_variables}


def test_encoder_moves_less_than_with_equal_rates_over_several_epochs(images):
    _, low, _ = _finetune(images, 0.1, epochs=3, batch_size=32)
    _, equal, _ = _finetune(images, 1.0, epochs=3, batch_size=32)
    total = [float(sum(m.sum() for m in moves)) for moves in (low, equal)]
    assert total[0] < 0.3 * total[1], total


def test_cosine_schedule_decays_to_zero(images):
    clf, _, _ = _finetune(images, 0.1, schedule="cosine", epochs=2, batch_size=32)
    opt = clf.optimizer
    assert int(opt.iterations) == 6
    assert float(opt.learning_rate) == pytest.approx(0.0, abs=1e-9)  # 6 of 6 decay steps done
    half = keras.optimizers.schedules.CosineDecay(1e-2, 6)(3)
    assert float(half) == pytest.approx(5e-3)


def test_layerwise_optimizer_survives_a_keras_file(images, tmp_path):
    x, y = images
    clf, _, _ = _finetune(images, 0.25)
    clf.save(tmp_path / "clf.keras")
    again = keras.models.load_model(tmp_path / "clf.keras")
    assert isinstance(again.optimizer, LayerwiseAdam) and again.optimizer.lr_multipliers == clf.optimizer.lr_multipliers
    np.testing.assert_allclose(again.predict(x[:4], verbose=0), clf.predict(x[:4], verbose=0), atol=1e-6)
    with pytest.raises(UsageError, match="not trained"):
        opt = LayerwiseAdam(1e-3, lr_multipliers={"no/such/kernel": 0.1})
        opt.build(clf.trainable_variables)


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_restores_the_best_epoch(images):
    """Validation labels shifted by one class: the better the model learns the training labels,
    the worse its validation accuracy, so the best epoch is an early one; training stops after
    ``patience`` epochs without improvement and ends with that epoch's weights."""
    x, y = images
    keras.utils.set_random_seed(3)
    clf = build_transfer_classifier(build_conv_encoder(2, 4), n_classes=3, hidden_units=8, freeze=False)
    compile_transfer_classifier(clf, 1e-2, encoder_lr_factor=0.1, schedule="constant")
    rec, stop = _Recorder(), best_val_accuracy(2)
    hist = clf.fit(
        x, y, validation_data=(x, (y + 1) % 3), epochs=15, batch_size=32, verbose=0, callbacks=[rec, stop]
    ).history
    val = hist["val_accuracy"]
    best = int(np.argmax(val))
    assert len(val) < 15 and len(val) == best + 1 + 2  # stopped `patience` epochs after the best
    assert stop.best_epoch == best and best < len(val) - 1
    for now, then in zip(clf.get_weights(), rec.weights[best], strict=True):
        np.testing.assert_array_equal(now, then)
    acc = clf.evaluate(x, (y + 1) % 3, verbose=0)[1]
    assert acc == pytest.approx(val[best], abs=1e-6)
    with pytest.raises(UsageError):
        best_val_accuracy(0)
