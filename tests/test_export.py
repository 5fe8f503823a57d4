import keras
import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.export import (
    export_savedmodel,
    load_signature,
    saved_model_cli_show,
    verify_export,
    write_models_config,
)
from keras_clust.layers import Sampling
from keras_clust.models import build_dense_vae, standardised_vae_models


def _encoder():
    inp = keras.Input((6,), name="images")
    h = keras.layers.Dense(4, activation="relu", name="h")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="latent")(h), name="enc")


def test_export_round_trip_and_versions(tmp_path):
    model = _encoder()
    x = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    first = export_savedmodel(model, "enc", tmp_path)
    second = export_savedmodel(model, "enc", tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert (tmp_path / "enc" / "2" / "saved_model.pb").is_file()
    assert (tmp_path / "enc" / "2" / "model.keras").is_file()
    assert not [p for p in (tmp_path / "enc").iterdir() if p.name.startswith(".")]
    assert verify_export(second, model, x) <= 1e-5
    fn = load_signature(second.path)
    assert list(fn.structured_input_signature[1]) == ["images"]
    assert fn.structured_input_signature[1]["images"].shape.as_list() == [None, 6]
    assert list(fn.structured_outputs) == ["embedding"]
    reloaded = keras.models.load_model(second.path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_saved_model_cli_reads_named_signature(tmp_path):
    exported = export_savedmodel(_encoder(), "enc", tmp_path, output_names="codes")
    text = saved_model_cli_show(exported.path)
    assert "signature_def['serving_default']" in text
    assert "inputs['images']" in text and "outputs['codes']" in text
    assert "shape: (-1, 6)" in text and "DT_FLOAT" in text


def test_models_config_lists_every_model(tmp_path):
    export_savedmodel(_encoder(), "a_model", tmp_path)
    export_savedmodel(_encoder(), "b-model", tmp_path)
    (tmp_path / "not_a_model").mkdir()
    text = (tmp_path / "models.config").read_text()
    assert text.startswith("model_config_list {")
    assert text.count("config {") == 2
    assert 'name: "a_model"' in text and 'base_path: "/models/b-model"' in text
    assert "not_a_model" not in text
    custom = write_models_config(tmp_path, base_path="/srv/models/").read_text()
    assert 'base_path: "/srv/models/a_model"' in custom


def test_vae_exports_deterministic_z_mean(tmp_path):
    """A real VAE encoder (KL and Sampling layers live in its graph): the full encoder's
    sampled z changes between served calls, the exported serving encoder gives z_mean,
    the same on every call and equal to the z_mean layer."""
    m = build_dense_vae(6, 2, (8,), seed=1, name="vae")
    assert isinstance(m.encoder.get_layer("z"), Sampling)
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    z_mean_layer = keras.Model(m.encoder.inputs, m.encoder.get_layer("z_mean").output)
    want = z_mean_layer.predict(x, verbose=0)

    full = export_savedmodel(m.encoder, "vae_full", tmp_path, output_names=("z_mean", "z_log_var", "z"))
    fn = load_signature(full.path)
    a, b = fn(images=x), fn(images=x)
    np.testing.assert_allclose(a["z_mean"].numpy(), want, atol=1e-6)
    assert not np.allclose(a["z"].numpy(), b["z"].numpy())  # the Sampling layer really samples when served

    mean, std = np.linspace(-1, 1, 6).astype(np.float32), np.linspace(0.5, 2, 6).astype(np.float32)
    serving = standardised_vae_models(m, mean, std)[0]  # data units in: the standardisation is built in
    for model, inputs in ((m.mean_encoder, x), (serving, x * std + mean)):
        exported = export_savedmodel(model, "vae_enc", tmp_path, output_names="z_mean")
        fn = load_signature(exported.path)
        first, second = fn(images=inputs)["z_mean"].numpy(), fn(images=inputs)["z_mean"].numpy()
        np.testing.assert_array_equal(first, second)  # no sampling at serving time
        np.testing.assert_allclose(first, want, atol=1e-5)


def test_multi_output_names_and_bad_names(tmp_path):
    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, [keras.layers.Dense(2)(inp), keras.layers.Dense(1)(inp)])
    exported = export_savedmodel(model, "two", tmp_path, input_name="features", output_names=("probs", "score"))
    assert set(load_signature(exported.path)(features=np.ones((2, 3), np.float32))) == {"probs", "score"}
    with pytest.raises(UsageError, match="2 outputs but 1 names"):
        export_savedmodel(model, "two", tmp_path)
    with pytest.raises(UsageError, match="may use only"):
        export_savedmodel(_encoder(), "../evil", tmp_path)


def test_failed_export_leaves_no_version(tmp_path, monkeypatch):
    import keras_clust.export as ex

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "save", boom)  # fails after the SavedModel is written
    with pytest.raises(RuntimeError, match="disk full"):
        ex.export_savedmodel(_encoder(), "enc", tmp_path)
    assert list((tmp_path / "enc").iterdir()) == []
