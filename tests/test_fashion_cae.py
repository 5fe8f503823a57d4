"""End to end: the fashion-cae app as a user runs it (quick mode on the Debian data)."""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.apps.fashion_cae.config import REPORT_BEST, RunConfig, TuneConfig
from keras_clust.errors import DataError
from keras_clust.experiment import config_from_saved
from keras_clust.export import load_signature, saved_model_cli_show
from keras_clust.tuning import CAE_SPACE

needs_data = pytest.mark.needs_dataset("fashion-mnist")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("fashion_cae")
    # a VAE of 8 conv channels (150k parameters, not 730k) and 200 codes per t-SNE map: every step,
    # figure and export of the quick run, in about 30 s
    res = cli_in_process(
        "fashion-cae",
        "run",
        "--quick",
        "--seed",
        "2",
        "--cluster",
        "idec",
        "--vae-channels",
        "8",
        "--tsne-points",
        "200",
        cwd=work,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "fashion-cae").iterdir()
    return work, run, res


@pytest.fixture(scope="module")
def quick_tune(tmp_path_factory):
    work = tmp_path_factory.mktemp("fashion_tune")
    res = cli_in_process(
        "fashion-cae", "tune", "--quick", "--engine", "both", "--tuner", "random", "--tensorboard", cwd=work
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "fashion-cae").iterdir()
    return work, run, res


@needs_data
def test_quick_run_writes_everything(quick_run):
    work, run, res = quick_run
    for name in ("config.json", "metrics.json", "history.csv", "report.md"):
        assert (run / name).is_file()
    figures = {p.name for p in (run / "figures").iterdir()}
    expected = {
        "loss_cae.png",
        "reconstructions_cae.png",
        "loss_vae.png",
        "reconstructions_vae.png",
        "generated.png",
        "confusion_cae.png",
        "confusion_vae.png",
        "classifier_frozen.png",
        "classifier_finetuned.png",
    }
    expected |= {f"latent_{m}_{p}.png" for m in ("cae", "vae") for p in ("pca", "tsne")}
    assert expected <= figures
    m = json.loads((run / "metrics.json").read_text())
    assert m["cae"]["params"] == REPORT_BEST and m["cae"]["epochs_run"] == 2
    v = m["vae"]["test"]
    assert v["neg_elbo"] == pytest.approx(v["recon"] + v["kl"])
    assert v["loss"] == pytest.approx(v["neg_elbo"], rel=1e-5)  # Keras' evaluate = the ELBO computed apart
    assert set(m["kmeans"]) == {"cae", "vae", "pixels"}
    labels = np.load(run / "labels.npz")  # each clustering's cluster of every test image, in their order
    assert sorted(labels.files) == ["cae_idec", "cae_kmeans", "pixels_kmeans", "vae_kmeans"]
    assert {labels[k].shape for k in labels.files} == {(m["n_test"],)}
    assert {k["n_init"] for k in m["kmeans"].values()} == {10}  # one n_init for every row of the comparison
    assert set(m["model_seeds"]) == {"cae", "vae", "classifier_frozen", "classifier_finetuned"}
    assert m["transfer"]["frozen"]["encoder_weights_unchanged"] is True
    assert m["transfer"]["finetuned"]["encoder_weights_unchanged"] is False
    assert m["transfer"]["frozen"]["trainable_parameters"] < m["transfer"]["finetuned"]["trainable_parameters"]
    history = (run / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    assert {"model", "epoch", "loss", "val_loss", "kl", "recon", "accuracy"} <= set(header)
    assert len(history) == 1 + 4 * 2  # cae, vae, two classifiers, two epochs each
    import csv

    rows = list(csv.DictReader(history))
    for mode in ("frozen", "finetuned"):  # the kept epoch is the one of the best validation accuracy
        val = [float(r["val_accuracy"]) for r in rows if r["model"] == f"classifier_{mode}"]
        t = m["transfer"][mode]
        assert t["best_epoch"] == val.index(max(val)) + 1 and t["best_val_accuracy"] == pytest.approx(max(val))
    report = (run / "report.md").read_text()
    assert "figures/latent_vae_tsne.png" in report and "| raw pixels |" in report
    assert "CAE test MSE" in res.stdout and m["data"]["note"] in res.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["quick"] and config["seed"] == 2 and config["data"]["origin"]
    assert config["config_version"] == 4 and config["clf_encoder_lr_factor"] == 1.0 and config["kmeans_n_init"] == 10
    deep = json.loads((run / "metrics.json").read_text())["deep_cluster"]  # --cluster idec on the CAE encoder
    assert deep["method"] == "idec" and deep["test"]["n_clusters"] > 1 and deep["test"]["acc"] > 0.2
    assert "CAE encoder + IDEC" in (run / "report.md").read_text()
    assert (run / "figures/confusion_cae_idec.png").is_file()
    assert "## Run" in report and "| fashion_classifier |" in report
    assert "the encoder learns at 1 times that rate" in report


@needs_data
def test_quick_run_exports_named_signatures(quick_run):
    work, run, _ = quick_run
    models = work / "saved_models"
    expected = {
        "fashion_cae_encoder": ("images", ["embedding"], "(-1, 14)"),
        "fashion_vae_encoder": ("images", ["z_mean"], "(-1, 14)"),
        "fashion_vae_decoder": ("latent", ["images"], "(-1, 28, 28, 1)"),
        "fashion_classifier": ("images", ["probabilities", "log_probabilities"], "(-1, 10)"),
    }
    for name, (inp, outs, shape) in expected.items():
        text = saved_model_cli_show(models / name / "1")
        assert f"inputs['{inp}']" in text and shape in text, text
        for out in outs:
            assert f"outputs['{out}']" in text
    config = (models / "models.config").read_text()
    assert all(f'name: "{n}"' in config for n in expected)
    m = json.loads((run / "metrics.json").read_text())
    assert all(e["max_abs_diff"] < 1e-5 for e in m["exports"])


@needs_data
def test_evaluate_reproduces_and_export_adds_version(quick_run):
    work, run, _ = quick_run
    res = cli_in_process("fashion-cae", "evaluate", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {r["metric"]: r for r in json.loads((run / "evaluation.json").read_text())["rows"]}
    for key in ("cae_test_mse", "kmeans_acc_cae", "kmeans_acc_vae", "accuracy_frozen", "accuracy_finetuned"):
        assert rows[key]["now"] == pytest.approx(rows[key]["stored"], abs=1e-5), key
    res = cli_in_process("fashion-cae", "export", "--run", run.name, cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (work / "saved_models" / "fashion_vae_encoder" / "2" / "saved_model.pb").is_file()
    import numpy as np

    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    a = load_signature(work / "saved_models" / "fashion_vae_encoder" / "1")(images=x)["z_mean"]
    b = load_signature(work / "saved_models" / "fashion_vae_encoder" / "2")(images=x)["z_mean"]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)  # deterministic z_mean, same weights


@needs_data
def test_quick_tune_both_engines(quick_tune):
    work, run, res = quick_tune
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["engines"]) == {"optuna", "kerastuner"}
    for name, e in m["engines"].items():
        values = [t["value"] for t in e["trials"] if t["state"] == "complete"]
        assert e["summary"]["trials"] == 2 and e["summary"]["best_value"] == min(values)
        # the best parameters retrained for as many epochs score as the best trial's checkpoint does
        assert e["test"]["final_test_mse"] == pytest.approx(e["test"]["checkpoint_test_mse"], rel=0.1)
        for fig in ("history", "parallel", "intermediate"):
            assert (run / "figures" / f"{name}_{fig}.png").is_file()
        assert (run / "figures" / f"reconstructions_{name}.png").is_file()
    assert m["best_params"]["encoded_space_dim"] >= 4
    assert (run / "study.db").is_file()
    # --tensorboard: each Optuna trial's fit (and the retraining) in this process, and KerasTuner's trials
    assert len(list((run / "tensorboard").glob("*-cae/train/events.out.tfevents.*"))) >= 2
    assert list((run / "tensorboard" / "kerastuner").rglob("events.out.tfevents.*"))
    assert "study fashion-cae: finished trials: 2/2" in res.stderr
    report = (run / "report.md").read_text()
    assert "| optuna |" in report and "| kerastuner |" in report
    assert "--study-name fashion-cae" in res.stdout
    # on the skeleton: a versioned config.json of the 'tune' action that reads back, the report's tail
    config = json.loads((run / "config.json").read_text())
    assert (config["action"], config["config_version"], config["trials"], config["epochs"]) == ("tune", 1, 2, 1)
    assert config["space"] == json.loads(json.dumps([dataclasses.asdict(p) for p in CAE_SPACE.params]))
    assert config_from_saved(TuneConfig, config, str(run), "fashion-cae").engine == "both"
    assert "## Run" in report and set(m["model_seeds"]) == {"optuna_best", "kerastuner_best"}
    folder = Path("runs") / "fashion-cae" / run.name  # as --out gave it
    assert f"--params-from {folder}\n" in res.stdout and f"run folder: {folder}\n" in res.stdout


# slow: 26 s: fashion-cae's tune resumed through the app; resuming a study is tested on the engine in
# test_tuning.py::test_resume_keeps_finished_trials, and fashion-cae's tune itself by the quick_tune fixture
@pytest.mark.slow
@needs_data
def test_tune_resumes_a_study_from_its_storage(quick_tune):
    work, run, _ = quick_tune
    url = f"sqlite:///{run / 'study.db'}"
    res = cli_in_process(
        "fashion-cae",
        "tune",
        "--quick",
        "--storage",
        url,
        "--trials",
        "4",
        "--workers",
        "2",
        "--final-epochs",
        "0",
        cwd=work,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 finished trials kept, 2 to run" in res.stderr and "with 2 workers" in res.stderr
    newest = max((work / "runs" / "fashion-cae").iterdir(), key=lambda p: p.stat().st_mtime)
    e = json.loads((newest / "metrics.json").read_text())["engines"]["optuna"]
    old = json.loads((run / "metrics.json").read_text())["engines"]["optuna"]
    assert e["resumed_trials"] == 2 and e["summary"]["trials"] in (4, 5)  # two workers may both start a 4th
    assert len({t["number"] for t in e["trials"]}) == len(e["trials"])
    assert [t["params"] for t in e["trials"][:2]] == [t["params"] for t in old["trials"]]


def test_params_from_a_tune_run(tmp_path):
    from keras_clust.apps.fashion_cae.config import cae_params_from_args

    run = tmp_path / "runs" / "fashion-cae" / "t1"
    run.mkdir(parents=True)
    best = {
        "encoded_space_dim": 20,
        "n_channels": 16,
        "optimizer": "sgd",
        "learning_rate": 0.05,
        "weight_decay": 1e-4,
        "momentum": 0.8,
    }
    (run / "config.json").write_text("{}")
    (run / "metrics.json").write_text(json.dumps({"best_params": best}))
    keys = ("encoded_space_dim", "n_channels", "optimizer", "learning_rate", "weight_decay", "momentum")
    args = argparse.Namespace(params_from="t1", **dict.fromkeys(keys))
    assert cae_params_from_args(args, tmp_path / "runs") == (best, str(run))
    args.n_channels, args.optimizer = 4, "adam"  # explicit options win; momentum is dropped for Adam
    params, _ = cae_params_from_args(args, tmp_path / "runs")
    assert params["n_channels"] == 4 and "momentum" not in params
    args = argparse.Namespace(params_from=None, **dict.fromkeys(keys))
    assert cae_params_from_args(args, tmp_path / "runs") == (REPORT_BEST, None)
    (run / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="not a finished"):
        cae_params_from_args(argparse.Namespace(params_from="t1", **dict.fromkeys(keys)), tmp_path / "runs")


@pytest.mark.parametrize(
    "args, code, fragments",
    [
        (["tune", "--trials", "0"], 2, ["--trials", "positive"]),
        (["tune", "--engine", "grid"], 2, ["--engine", "invalid choice"]),
        (["tune", "--tuner", "genetic"], 2, ["--tuner", "invalid choice"]),
        (["run", "--optimizer", "rmsprop"], 2, ["--optimizer", "invalid choice"]),
        (["run", "--momentum", "1.5"], 2, ["--momentum", "between 0 and 1"]),
        (["run", "--params-from", "nope"], 1, ["no complete run at nope"]),
        (["evaluate"], 1, ["no complete run"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, code, fragments):
    res = cli_in_process("fashion-cae", *args, "--out", tmp_path / "runs", cwd=tmp_path)
    assert_one_line_error(res, code, *fragments)
    assert not list(Path(tmp_path / "runs").glob("fashion-cae/*"))


@needs_data
def test_bad_storage_leaves_nothing(tmp_path):
    res = cli_in_process("fashion-cae", "tune", "--quick", "--storage", "nosuchdb://x", cwd=tmp_path)
    assert_one_line_error(res, 2, "Optuna storage", "sqlite:///")
    assert not [p for p in (tmp_path / "runs" / "fashion-cae").iterdir()]


def test_evaluate_skips_tune_folders(tmp_path):
    root = tmp_path / "runs" / "fashion-cae"
    (root / "t1").mkdir(parents=True)
    (root / "t1" / "config.json").write_text(json.dumps({"action": "tune"}))
    (root / "t1" / "metrics.json").write_text("{}")
    res = cli_in_process("fashion-cae", "evaluate", cwd=tmp_path)
    assert_one_line_error(res, 1, "no complete 'run' folder", "(only 'tune' folders)")


def test_report_best_is_a_point_of_the_search_space():
    assert CAE_SPACE.validate(REPORT_BEST) == REPORT_BEST


def _saved(**changes) -> dict:
    from dataclasses import asdict

    raw = {
        "experiment": "fashion-cae",
        "action": "run",
        "config_version": 2,
        **asdict(RunConfig()),
        "data": {"note": "x"},
        "run_id": "r",
        "versions": {},
        "machine": {},
    }
    raw.update(changes)
    return raw


def test_runs_before_config_version_2_load_as_what_they_did():
    """A version-1 run (no fine-tuning schedule, no kmeans_n_init) reads back through the declared
    migration as what it ran: one learning rate, constant, no early stopping, 10 KMeans restarts."""
    raw = _saved()
    for key in ("config_version", "clf_encoder_lr_factor", "clf_schedule", "clf_patience", "kmeans_n_init", "cluster"):
        raw.pop(key)
    cfg = config_from_saved(RunConfig, raw, "runs/fashion-cae/old", "fashion-cae")
    assert (cfg.clf_encoder_lr_factor, cfg.clf_schedule, cfg.clf_patience, cfg.kmeans_n_init) == (
        1.0,
        "constant",
        0,
        10,
    )
    assert cfg.cae == REPORT_BEST and cfg.seed == 0 and cfg.cluster == "kmeans"
    assert config_from_saved(RunConfig, _saved(seed=5), "r").seed == 5
    with pytest.raises(DataError, match=r"unknown keys vae_warmup\)"):
        config_from_saved(RunConfig, _saved(vae_warmup=3), "r", "fashion-cae")
    raw = _saved()
    raw.pop("beta")
    with pytest.raises(DataError, match=r"\(missing beta\); re-run it with 'keras-clust fashion-cae run'"):
        config_from_saved(RunConfig, raw, "r", "fashion-cae")


def test_runs_before_k_auto_cluster_with_ten():
    """A version-3 run (before ``--k``) reads back with k = 10 and the k chooser's defaults."""
    raw = _saved(config_version=3)
    for key in ("k_range", "k_criterion"):
        raw.pop(key)
    cfg = config_from_saved(RunConfig, raw, "runs/fashion-cae/old", "fashion-cae")
    assert (cfg.n_clusters, tuple(cfg.k_range), cfg.k_criterion) == (10, (2, 20), "silhouette")


def test_every_kmeans_row_uses_the_same_restarts(monkeypatch):
    import numpy as np

    from keras_clust.apps.fashion_cae import pipeline
    from keras_clust.data.splits import Split

    calls = []

    def spy(*args, **kwargs):
        calls.append((kwargs["n_init"], kwargs["scaling"]))
        return "scored"

    monkeypatch.setattr(pipeline, "evaluate_kmeans", spy)
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28, 1), dtype=np.float32)
    y = np.arange(20) % 2
    prep = Split(x, y, x[:4], y[:4], x[:6], y[:6], None)
    codes = {"cae": (rng.random((20, 3)), rng.random((6, 3))), "vae": (rng.random((20, 2)), rng.random((6, 2)))}
    out = pipeline.cluster_rows(RunConfig(kmeans_n_init=7), prep, codes)
    assert list(out) == ["cae", "vae", "pixels"]
    assert calls == [(7, "standard"), (7, "standard"), (7, "none")]


def test_tune_folders_written_before_the_skeleton_read_back():
    """A tune config.json of before the skeleton (no config_version, no fast) is version 1 of TuneConfig."""
    raw = {
        "experiment": "fashion-cae",
        "action": "tune",
        **dataclasses.asdict(TuneConfig(quick=True)),
        "data": {"note": "x"},
        "run_id": "t",
        "versions": {},
        "machine": {},
    }
    cfg = config_from_saved(TuneConfig, json.loads(json.dumps(raw)), "runs/fashion-cae/t", "fashion-cae")
    assert json.dumps(dataclasses.asdict(cfg)) == json.dumps(dataclasses.asdict(TuneConfig(quick=True)))
    assert cfg.trials == 2 and cfg.space[0]["name"] == CAE_SPACE.params[0].name


def test_config_json_repeats_a_run_and_a_search(tmp_path, monkeypatch):
    """``--config`` puts a saved config.json under the command line of ``run`` (the CAE's
    hyper-parameters included) and of ``tune``; options given override it. No training."""
    import importlib

    from keras_clust.apps.fashion_cae import actions
    from keras_clust.cli import main

    tune = importlib.import_module("keras_clust.apps.fashion_cae.tune")  # the package's `tune` is the action
    from keras_clust import experiment
    from keras_clust.experiment import FinishedRun, saved_config

    made = []

    def fake_run_experiment(spec, cfg, out, **options):
        made.append(cfg)
        return FinishedRun(tmp_path, {"best_params": REPORT_BEST})

    monkeypatch.setattr(experiment, "run_experiment", fake_run_experiment)  # under run_from_args
    monkeypatch.setattr(tune, "run_experiment", fake_run_experiment)
    out = ["--out", str(tmp_path / "runs")]
    for action, spec, options in (
        ("run", actions.SPEC, ["--quick", "--seed", "3", "--optimizer", "sgd", "--n-channels", "4", "--beta", "0.5"]),
        ("tune", tune.tune_spec(tmp_path), ["--quick", "--trials", "3", "--engine", "both", "--timeout", "9"]),
    ):
        assert main(["fashion-cae", action, *options, *out]) == 0
        saved = tmp_path / f"{action}.json"
        raw = saved_config(spec, made[-1], {"note": "x"})
        saved.write_text(json.dumps({**raw, "run_id": "r", "versions": {}, "machine": {}}))
        assert main(["fashion-cae", action, "--config", str(saved), *out]) == 0
        assert made[-1] == made[-2]
        assert main(["fashion-cae", action, "--config", str(saved), "--seed", "7", *out]) == 0
        assert made[-1] == dataclasses.replace(made[-2], seed=7)
    run_cfg = made[0]
    assert run_cfg.cae == {**REPORT_BEST, "optimizer": "sgd", "n_channels": 4, "momentum": 0.9}
    assert (run_cfg.quick, run_cfg.cae_epochs, run_cfg.batch_size, run_cfg.beta) == (True, 2, 64, 0.5)
    res = cli_in_process("fashion-cae", "run", "--config", tmp_path / "tune.json", cwd=tmp_path)
    assert_one_line_error(res, 1, "'fashion-cae tune'", "not 'fashion-cae run'")
