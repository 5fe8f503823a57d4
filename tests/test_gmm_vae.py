"""The gmm-vae app: dense VAE, serving wrappers, and the command as a user runs it."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from apps.gmm_vae import REPORT, TUNED, Config, loss_table_epochs, serving_models
from helpers import assert_one_line_error, cli
from keras_clust.export import saved_model_cli_show
from keras_clust.models import build_dense_vae


def test_dense_vae_shapes_and_kl_logged():
    m = build_dense_vae(3, 2, (16, 8), beta=1.0, seed=0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    mean, log_var, z = m.encoder.predict(x, verbose=0)
    assert mean.shape == log_var.shape == z.shape == (64, 2)
    assert m.decoder.predict(mean, verbose=0).shape == (64, 3)
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in m.vae.layers)
    m.vae.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    hist = m.vae.fit(x, x, epochs=3, batch_size=16, verbose=0).history
    assert "kl" in hist and hist["loss"][-1] < hist["loss"][0]


def test_serving_models_build_in_the_standardisation():
    m = build_dense_vae(3, 2, (8,), seed=0)
    mean, std = np.array([1.0, -2.0, 5.0], np.float32), np.array([2.0, 0.5, 3.0], np.float32)
    enc, dec = serving_models(m, mean, std)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(enc.predict(x, verbose=0), m.mean_encoder.predict((x - mean) / std, verbose=0),
                               atol=1e-5)  # fmt: skip
    z = np.zeros((2, 2), np.float32)
    np.testing.assert_allclose(dec.predict(z, verbose=0), m.decoder.predict(z, verbose=0) * std + mean, atol=1e-5)


def test_loss_table_epochs_match_the_report():
    assert loss_table_epochs(100) == [1, 25, 50, 75, 100]
    assert loss_table_epochs(3) == [1, 2, 3]
    assert REPORT.epochs == 100 and REPORT.batch_size == 32 and REPORT.latent_dim == 2


def test_rows_default_to_the_report_beside_the_tuned_settings():
    assert Config().primary == "report" and Config().models() == {"report": REPORT, "tuned": TUNED}
    tuned = Config(model=TUNED, preset="tuned")
    assert tuned.primary == "tuned" and list(tuned.models()) == ["report", "tuned"]
    custom = Config(model=replace(REPORT, beta=0.1))
    assert custom.primary == "this_run" and list(custom.models()) == ["report", "this_run"]
    assert list(Config(comparison=False).models()) == ["report"]
    quick = Config(model=replace(TUNED, epochs=5), quick=True)
    assert quick.primary == "tuned" and quick.models()["report"].epochs == 5


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("gmm")
    res = cli("gmm-vae", "run", "--quick", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "gmm-vae").iterdir()
    return work, run, res


def test_quick_run_writes_both_rows_and_figures(quick_run):
    work, run, res = quick_run
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["models"]) == ["report", "tuned"] and m["primary"] == "report"
    assert m["models"]["report"]["settings"]["beta"] == 1.0 and m["models"]["tuned"]["settings"]["beta"] == 0.05
    for key, model in m["models"].items():
        modes = model["modes"]
        assert 0 <= modes["modes_captured"] <= 10 and 0 <= modes["high_quality_fraction"] <= 1
        assert model["kmeans_minmax"]["ks"] == list(range(2, 11))
        for fig in ("samples", "kselect", "loss", "latent_tsne", "latent_raw"):
            name = f"{fig}_{key}.png"
            assert (run / "figures" / name).is_file(), name
        assert (run / "figures" / f"samples_{key}_minmax.png").is_file()
        assert list(model["loss_at"]) == ["1", "2", "4", "5"]
    report = (run / "report.md").read_text()
    assert "| report |" in report and "| tuned |" in report and "min-max" in report
    assert json.loads((run / "mixture.json").read_text())["weights"]
    assert "modes captured" in res.stdout
    text = saved_model_cli_show(work / "saved_models" / "gmm_vae_encoder" / "1")
    assert "inputs['samples']" in text and "outputs['z_mean']" in text and "(-1, 3)" in text
    text = saved_model_cli_show(work / "saved_models" / "gmm_vae_decoder" / "1")
    assert "inputs['latent']" in text and "outputs['samples']" in text


def test_evaluate_rescores_the_stored_samples(quick_run):
    work, run, _ = quick_run
    res = cli("gmm-vae", "evaluate", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    ev = json.loads((run / "evaluation.json").read_text())["models"]
    stored = json.loads((run / "metrics.json").read_text())["models"]
    for key in stored:
        assert ev[key]["stored_samples"] == stored[key]["modes"]
    res = cli("gmm-vae", "export", "--row", "tuned", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "row 'tuned'" in res.stdout
    assert (work / "saved_models" / "gmm_vae_decoder" / "2").is_dir()
    res = cli("gmm-vae", "export", "--row", "best", cwd=work)
    assert_one_line_error(res, 2, "--row best")
    assert not (work / "saved_models" / "gmm_vae_decoder" / "3").exists()


def test_mixture_file_run(tmp_path):
    mix = {"means": [[0, 0], [8, 8]], "weights": [0.5, 0.5]}
    (tmp_path / "m.json").write_text(json.dumps(mix))
    res = cli("gmm-vae", "run", "--quick", "--mixture", "m.json", "--preset", "report", "--epochs", "2",
              "--k-max", "4", "--no-export", "--no-comparison", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = (tmp_path / "runs" / "gmm-vae").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["models"]) == ["this_run"] and m["mixture"]["dim"] == 2
    assert m["models"]["this_run"]["settings"]["epochs"] == 2


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["--mixture", "missing.json"], 1, "not found"),
        (["--mixture", "bad.json"], 1, "sum to 1"),
        (["--min-share", "1.5"], 2, "--min-share"),
        (["--beta", "-1"], 2, "--beta"),
        (["--hidden-units", "8,0"], 2, "--hidden-units"),
        (["--preset", "best"], 2, "--preset"),
    ],
)
def test_bad_input(tmp_path, args, code, fragment):
    (tmp_path / "bad.json").write_text(json.dumps({"means": [[0.0], [1.0]], "weights": [0.5, 0.6]}))
    res = cli("gmm-vae", "run", "--quick", *args, cwd=tmp_path)
    assert_one_line_error(res, code, fragment)
    assert not list((tmp_path / "runs").glob("gmm-vae/*")) if (tmp_path / "runs").exists() else True
