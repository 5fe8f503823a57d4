"""``keras-clust cluster`` and ``cluster-bench`` as a user runs them, and the readers behind
them: rows files, encoders from disk, batched encoding."""

import gzip
import json

import numpy as np
import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.data.idx import write_idx
from keras_clust.data.rows import load_labels, load_rows
from keras_clust.errors import DataError
from keras_clust.models.encoder_io import as_input_rows, encode_in_batches, load_encoder
from keras_clust.validation import check_rows


def _encoder(shape=(8, 8)):
    import keras

    inputs = keras.Input(shape, name="images")
    z = keras.layers.Dense(3, name="latent")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, z, name="enc")


def test_rows_readers(tmp_path):
    x = np.random.default_rng(0).random((6, 4, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    got = load_rows(tmp_path / "x.npy")
    assert isinstance(got, np.memmap) and np.array_equal(got, x)  # stays on disk
    np.savez(tmp_path / "xy.npz", y=np.arange(6), x=x)
    np.testing.assert_array_equal(load_rows(tmp_path / "xy.npz"), x)
    np.testing.assert_array_equal(load_labels(tmp_path / "xy.npz", 6), np.arange(6))
    write_idx(tmp_path / "x-idx3-ubyte", (x * 255).astype(np.uint8))
    with open(tmp_path / "x-idx3-ubyte", "rb") as src, gzip.open(tmp_path / "x.gz", "wb") as dst:
        dst.write(src.read())
    assert load_rows(tmp_path / "x.gz").shape == (6, 4, 4)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    (tmp_path / "x.csv").write_text("1,2\n")
    np.savez(tmp_path / "two.npz", a=x, b=x)
    for name, fragment in (
        ("objects.npy", "pickled"),
        ("flat.npy", "at least 2 rows"),
        ("x.csv", ".npy, .npz"),
        ("missing.npy", "does not exist"),
        ("two.npz", "'x'"),
    ):
        with pytest.raises(DataError, match=fragment):
            load_rows(tmp_path / name)
    with pytest.raises(DataError, match=r"\(6,\)"):
        load_labels(tmp_path / "flat.npy", 6)


def test_check_rows_names_the_first_bad_row_without_copying():
    x = np.zeros((10, 3), np.float32)
    assert check_rows(x) is x
    x[7, 1] = np.inf
    with pytest.raises(DataError, match="row 7"):
        check_rows(x, chunk=4)


def test_encoders_from_keras_files_and_savedmodels(tmp_path):
    from keras_clust.export import export_savedmodel

    model = _encoder()
    x = np.random.default_rng(1).random((10, 64), dtype=np.float32)  # flat rows of 8x8 inputs
    want = model.predict(x.reshape(10, 8, 8), verbose=0)
    model.save(tmp_path / "enc.keras")
    exported = export_savedmodel(model, "enc", tmp_path / "sm", "images", "embedding", update_config=False)
    (exported.path / "model.keras").unlink()  # a bare SavedModel: encode only
    for source, trainable in (
        (model, True),
        (tmp_path / "enc.keras", True),
        (tmp_path / "sm" / "enc", False),
        (exported.path, False),
    ):
        enc = load_encoder(source)
        assert enc.input_shape == (8, 8) and enc.trainable is trainable
        np.testing.assert_allclose(encode_in_batches(enc, x, batch_size=3), want, atol=1e-5)  # 3+3+3+1 rows
    with pytest.raises(DataError, match=r"rows of shape \(5,\) but the encoder takes \(8, 8\)"):
        as_input_rows(np.zeros((2, 5)), (8, 8))
    with pytest.raises(DataError, match="not an encoder"):
        load_encoder(tmp_path / "nothing")


def test_cluster_command_on_a_users_files(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.save(tmp_path / "x.npy", (d.data / 16).astype(np.float32))
    np.save(tmp_path / "y.npy", d.target)
    _encoder((64,)).save(tmp_path / "enc.keras")
    res = cli_in_process(
        "cluster",
        "--data",
        "x.npy",
        "--labels",
        "y.npy",
        "--method",
        "dec",
        "--encoder",
        "enc.keras",
        "--k",
        "10",
        "--quick",
        "--models-dir",
        "sm",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "against the labels: ACC" in res.stdout
    (run,) = (tmp_path / "runs" / "cluster").iterdir()
    labels = np.load(run / "labels.npy")
    metrics = json.loads((run / "metrics.json").read_text())
    assert labels.shape == (1000,) and metrics["scores"]["acc"] > 0.2  # chance is 0.1
    assert sum(metrics["cluster_sizes"].values()) == 1000
    assert {p.name for p in (run / "figures").iterdir()} == {"map_by_cluster.png", "map_by_class.png", "confusion.png"}
    from keras_clust.export import load_signature

    fn = load_signature(tmp_path / "sm" / "cluster_dec" / "1")
    out = fn(images=np.zeros((2, 64), np.float32))
    assert set(out) == {"assignment", "embedding"}
    np.testing.assert_allclose(out["assignment"].numpy().sum(axis=1), 1.0, atol=1e-5)
    np.save(tmp_path / "wrong.npy", np.zeros((20, 5), np.float32))
    # the refusals, in this process (each `cli` call starts TensorFlow, 5 s)
    res = cli_in_process(
        "cluster", "run", "--data", "wrong.npy", "--encoder", "enc.keras", "--method", "n2d", cwd=tmp_path
    )
    assert_one_line_error(res, 1, "rows of shape (5,)", "takes (64,)")
    assert not list((tmp_path / "runs" / "cluster").glob(".*partial"))
    res = cli_in_process("cluster", "--data", "x.npy", "--encoder", "enc.keras", "--method", "idec", cwd=tmp_path)
    assert_one_line_error(res, 2, "needs that encoder's decoder", "--decoder")


def test_bytes_are_scaled_batch_by_batch_and_too_few_rows_are_refused(tmp_path):
    from keras_clust.cluster.deep import DeepSettings, cluster_embedding

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (300, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "bytes.npy", raw)
    mapped = load_rows(tmp_path / "bytes.npy")
    enc = _encoder()
    s = DeepSettings(n_clusters=3, n_init=2)
    as_floats = cluster_embedding("kmeans", raw.astype(np.float32) / 255, s, enc, seed=0)
    for method in ("kmeans", "n2d"):
        got = cluster_embedding(method, mapped, s, enc, seed=0, scale=1 / 255)
        assert isinstance(mapped, np.memmap) and got.embedding.shape[0] == 300
        if method == "kmeans":
            np.testing.assert_allclose(got.embedding, as_floats.embedding, atol=1e-5)
            np.testing.assert_array_equal(got.labels, as_floats.labels)
    with pytest.raises(DataError, match="at least 10 rows"):
        cluster_embedding("kmeans", raw[:5], DeepSettings(n_clusters=10), enc)


# After the in-process N2D above: on a fresh install the first UMAP compiles pynndescent's numba
# code into its cache (15 s); this run's process then loads it, as a user's later runs do.
def test_cluster_bench_quick_on_digits(tmp_path):
    res = cli_in_process("cluster-bench", "--dataset", "digits", "--quick", cwd=tmp_path)  # no second TF start-up
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "cluster-bench").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    methods = ["kmeans (pixels)", "kmeans (AE codes)", "dec", "idec", "n2d"]
    assert [r["method"] for r in metrics["rows"]] == methods
    pixels = [r for r in metrics["rows"] if r["method"] == "kmeans (pixels)"]
    assert all(r["acc"] > 0.7 for r in pixels) and metrics["rows_clustered"] == 600
    # NMI over the arithmetic mean of the entropies never exceeds NMI over their geometric mean
    assert all(r["nmi"] <= r["nmi_geometric"] + 1e-12 for r in metrics["rows"])
    assert all(r["nmi"] > 0.6 for r in pixels)  # KMeans on digits' pixels (about 0.74 here)
    assert {s["method"]: s["seeds"] for s in metrics["seed_summary"]} == dict.fromkeys(methods, 1)
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {f"confusion_{k}.png" for k in ("kmeans_pixels", "dec", "idec", "n2d")} <= figures
    assert sum(name.startswith("map_") for name in figures) == 2
    report = (run / "report.md").read_text()
    assert "NMI (geom.)" in report and "0.474" not in report  # digits has no published row
    assert np.load(run / "labels.npz")["dec_s0"].shape == (600,)
    # the answers that come before any work
    help_text = cli_in_process("cluster-bench", "--help").stdout
    assert "run" in help_text and "--dataset" in cli_in_process("cluster-bench", "run", "--help").stdout
    assert_one_line_error(cli_in_process("cluster-bench", "--method", "dec,spectral", cwd=tmp_path), 2, "spectral")


def test_seed_summary_by_hand():
    from keras_clust.apps.cluster_bench.steps import file_key, seed_summary

    rows = [
        {"method": "dec", "acc": 0.5, "nmi": 0.4},
        {"method": "n2d", "acc": 0.9, "nmi": 0.8},
        {"method": "dec", "acc": 0.7, "nmi": 0.6},
    ]
    dec, n2d = seed_summary(rows)
    assert dec["method"] == "dec" and dec["seeds"] == 2
    assert dec["acc_mean"] == pytest.approx(0.6) and dec["acc_std"] == pytest.approx(0.1)
    assert (dec["acc_min"], dec["acc_max"], dec["nmi_mean"]) == (0.5, 0.7, pytest.approx(0.5))
    assert n2d["seeds"] == 1 and n2d["acc_std"] == 0.0
    assert file_key("kmeans (AE codes)") == "kmeans_ae_codes"


@pytest.mark.parametrize(
    "name, module, options",
    [
        (
            "cluster",
            "keras_clust.apps.cluster_data",
            ["--data", "x.npy", "--quick", "--k", "4", "--tol", "0.01", "--method", "dec", "--no-export"],
        ),
        (
            "cluster-bench",
            "keras_clust.apps.cluster_bench",
            ["--seeds", "1,2", "--method", "dec,n2d", "--update-interval", "5", "--max-rows", "50"],
        ),
    ],
)
def test_config_json_repeats_a_run(tmp_path, monkeypatch, name, module, options):
    """``--config``: a saved config.json under the command line, its DEC/IDEC/N2D settings (saved
    nested) included; options given override it. No training."""
    import dataclasses
    import importlib

    from keras_clust.cli import main
    from keras_clust.experiment import saved_config

    app = importlib.import_module(module)
    made = []
    monkeypatch.setattr(app, "run_experiment", lambda spec, cfg, out, **kw: made.append(cfg))
    assert main([name, *options, "--out", str(tmp_path)]) == 0
    saved = tmp_path / "config.json"
    raw = saved_config(app.SPEC, made[-1], {"note": "x"})
    saved.write_text(json.dumps({**raw, "run_id": "r", "versions": {}, "machine": {}}))
    assert main([name, "--config", str(saved)]) == 0
    assert made[-1] == made[0]
    assert main([name, "--config", str(saved), "--n-neighbors", "7"]) == 0
    assert made[-1] == dataclasses.replace(made[0], settings=dataclasses.replace(made[0].settings, n_neighbors=7))
    if name == "cluster":  # --quick's budgets, saved, are kept; the cluster count is the option's
        assert (made[0].settings.n_clusters, made[0].settings.max_iter, made[0].settings.update_interval) == (4, 40, 10)
    else:  # --seeds given; without it, one repetition with --seed
        assert made[0].seeds == (1, 2) and made[0].methods == ("dec", "n2d") and made[0].settings.update_interval == 5
        assert main([name, "--seed", "3"]) == 0
        assert made[-1].seeds == (3,)
