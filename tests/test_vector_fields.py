"""The vector-fields app as a user runs it: generate, run --quick, cluster, evaluate, export, tune --quick,
bad input; and the app's scoring pieces on hand-made numbers."""

import dataclasses
import json
from dataclasses import replace

import numpy as np
import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.apps.vector_fields.clustering import scores_with_noise
from keras_clust.apps.vector_fields.config import DEFAULT_LATENT
from keras_clust.apps.vector_fields.data import split_fields
from keras_clust.apps.vector_fields.pipeline import reconstruction_scores
from keras_clust.apps.vector_fields.tune import over_budget
from keras_clust.cluster.metrics import cluster_accuracy
from keras_clust.export import saved_model_cli_show
from keras_clust.fields.autoencoder import REPORT, FieldAEConfig, estimate_cost
from keras_clust.fields.dataset import load_fields
from keras_clust.fields.search_space import stage1_params, stage2_params

# --- pieces ----------------------------------------------------------------------------------


def test_scores_count_noise_as_wrong():
    y = np.array([0, 0, 1, 1])
    assert scores_with_noise(y, np.array([5, 5, 7, 7]))["acc"] == 1.0  # permuted ids still score 1
    s = scores_with_noise(y, np.array([5, -1, 7, 7]))
    assert s["acc"] == 0.75 and s["noise"] == 1 and s["clusters"] == 2


def test_split_is_stratified_disjoint_and_scaled():
    x = np.arange(60 * 4, dtype=np.float32).reshape(60, 2, 2, 1)
    y = np.repeat(np.arange(3), 20)
    s = split_fields(x, y, 0.2, 0.2, seed=0)
    idx = np.concatenate([s.idx_train, s.idx_val, s.idx_test])
    assert sorted(idx) == list(range(60))
    assert np.bincount(y[s.idx_test]).tolist() == [4, 4, 4]
    assert s.scale == pytest.approx(np.sqrt(np.mean(np.square(x[s.idx_train], dtype=np.float64))))
    # 11 types x 5 fields: a test split of 8 cannot hold every type, so the split is plain, not an error
    y = np.repeat(np.arange(11), 5)
    s = split_fields(np.ones((55, 2, 2, 1), np.float32), y, 0.15, 0.15, seed=0)
    assert s.sizes == {"train": 39, "val": 8, "test": 8}


def test_flow_types_are_found_whatever_their_strength():
    """The run's default clustering on 100 fields per type (24 per type, --quick's, is too few for
    N2D's 20 neighbours: it finds 2): k found within 11 +- 1 and the types recovered."""
    from keras_clust.apps.vector_fields.clustering import cluster_by_type
    from keras_clust.fields.generator import generate_fields

    fs = generate_fields(100, size=20, seed=1)
    record, labels = cluster_by_type(fs.fields, None, (2, 20), seed=0)
    assert abs(record["k"] - 11) <= 1 and record["k_choice"]["k"] == record["k"] == len(np.unique(labels))
    assert cluster_accuracy(fs.labels, labels) >= 0.9
    strong = fs.fields * np.linspace(0.1, 10.0, len(fs.fields))[:, None, None, None]  # strengths spread 100-fold
    _, same = cluster_by_type(strong, record["k"], (2, 20), seed=0)
    assert np.array_equal(same, labels)  # dividing by the norm leaves nothing of the strength
    _, given = cluster_by_type(fs.fields, 11, (2, 20), seed=0)
    assert len(np.unique(given)) == 11


def test_reconstruction_scores_by_hand():
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 0] = [3.0, 4.0]  # magnitude 5, the other pixel 0
    r = x.copy()
    r[0, 0, 1] = [1.0, 1.0]  # error only where the field is still
    s = reconstruction_scores(x, r, ("u", "v"), floor=0.0)
    assert s["mse"] == pytest.approx(0.5) and s["mse_per_channel"] == {"u": 0.5, "v": 0.5}
    assert s["weighted_mse"] == pytest.approx(0.0)  # weight 0 at the still pixel


def test_budget_prunes_big_configurations():
    kwargs = {**stage1_params(REPORT), **stage2_params(REPORT), "latent": 3}
    assert over_budget(kwargs, (80, 80, 3), 32, max_memory_gib=4, max_gmacs=1) is None
    assert "--max-memory" in over_budget(kwargs, (80, 80, 3), 32, max_memory_gib=0.01, max_gmacs=1)
    assert "--max-gmacs" in over_budget(kwargs, (80, 80, 3), 32, max_memory_gib=4, max_gmacs=0.1)


# --- the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("vf")
    res = cli_in_process("vector-fields", "run", "--quick", cwd=work)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (work / "runs" / "vector-fields").iterdir()
    return work, run, res


def test_quick_run_writes_every_table_figure_and_export(quick_run):
    work, run, res = quick_run
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "clusters.npz",
        "models/encoder.keras",
        "models/decoder.keras",
    ):
        assert (run / name).is_file(), name
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {
        "flow_types.png",
        "loss.png",
        "reconstructions.png",
        "pareto_front.png",
        "silhouette_knives.png",
        "latent_3d.png",
        "latent_2d_clusters.png",
        "latent_2d_types.png",
        "cluster_examples.png",
        "confusion_chosen.png",
        "k_choice.png",
    } <= figures
    report = (run / "report.md").read_text()
    for name in figures:
        assert f"figures/{name}" in report, name
    m = json.loads((run / "metrics.json").read_text())
    arch = replace(REPORT, latent=DEFAULT_LATENT)
    assert FieldAEConfig.from_dict(m["model"]["architecture"]) == arch and m["data"]["fields"] == 24 * 11
    assert m["model"]["parameters"] == estimate_cost(arch, (80, 80, 3), 32).parameters
    scores = m["clustering"]["scores"]
    assert set(scores) == {"by_type", "chosen", "kmeans_codes_true_k", "kmeans_raw_true_k"}
    saved = np.load(run / "clusters.npz")
    assert scores["chosen"]["noise"] == int((saved["cluster"] == -1).sum())
    assert len(saved["codes"]) == 264 and saved["codes"].shape[1] == DEFAULT_LATENT
    assert "| NSGA-II study on the codes (the slides) |" in res.stdout and "synthetic 2-D vector fields" in res.stdout
    # the default clustering: k found without labels, one label per field in the data's row order
    by_type, labels = m["clustering"]["by_type"], np.load(run / "labels.npy")
    assert by_type["k"] == by_type["k_choice"]["k"] == len(np.unique(labels)) and labels.shape == (264,)
    assert cluster_accuracy(saved["labels"], labels) == pytest.approx(scores["by_type"]["acc"])
    assert "## Clustering by flow type (the default)" in report and f"**k = {by_type['k']}**" in report
    show = saved_model_cli_show(work / "saved_models" / "vector_fields_encoder" / "1")
    assert "fields" in show and "embedding" in show
    show = saved_model_cli_show(work / "saved_models" / "vector_fields_decoder" / "1")
    assert "['embedding']" in show and "['fields']" in show
    assert "vector_fields_encoder" in (work / "saved_models" / "models.config").read_text()


def test_evaluate_reproduces_the_stored_numbers(quick_run):
    work, run, _ = quick_run
    res = cli_in_process("vector-fields", "evaluate", "--run", run, cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["test"]["mse"] == pytest.approx(ev["stored"]["mse"], rel=1e-4)
    assert ev["codes_max_abs_difference"] < 1e-4


def test_cluster_action_reclusters_the_codes_with_other_settings(quick_run):
    work, run, _ = quick_run
    res = cli_in_process(
        "vector-fields",
        "cluster",
        "--run",
        run,
        "--algorithms",
        "kmeans",
        "--objectives",
        "silhouette,knives,spacing",
        "--cluster-trials",
        "8",
        cwd=work,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    folders = [p for p in (work / "runs" / "vector-fields").iterdir() if p != run]
    m = json.loads((folders[0] / "metrics.json").read_text())
    assert m["clustering"]["chosen"]["algorithm"] == "kmeans"
    assert set(m["clustering"]["chosen"]["objectives"]) == {"silhouette", "knives", "spacing"}
    codes = np.load(run / "clusters.npz")["codes"]
    np.testing.assert_allclose(np.load(folders[0] / "clusters.npz")["codes"], codes, atol=1e-5)
    res = cli_in_process("vector-fields", "cluster", "--run", run, "--objectives", "silhouette", cwd=work)
    assert_one_line_error(res, 2, "--objectives needs 2 or 3")


def test_generate_then_run_on_the_file(tmp_path):
    out = tmp_path / "f.npz"
    res = cli_in_process(
        "vector-fields", "generate", "--output", out, "--per-class", "6", "--size", "20", "--seed", "3"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    fs = load_fields(out)
    assert fs.fields.shape == (66, 20, 20, 3) and np.bincount(fs.labels).tolist() == [6] * 11
    # a 20x20 field cannot use the 80-cell preset: the error says so before any training
    res = cli_in_process("vector-fields", "run", "--quick", "--dataset", out, cwd=tmp_path)
    assert_one_line_error(res, 2, "does not fit 20x20", "tune --size 20")
    assert not (tmp_path / "runs" / "vector-fields").exists() or not any(
        (tmp_path / "runs" / "vector-fields").iterdir()
    )


def test_bad_input_is_one_line(tmp_path):
    """Through the command; every bad file the reader refuses is tested on the reader (test_vector_field_data)."""
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 80, 80), np.float32))
    assert_one_line_error(
        cli_in_process("vector-fields", "run", "--quick", "--dataset", bad, cwd=tmp_path), 1, "x[..., None]"
    )
    res = cli_in_process("vector-fields", "run", "--quick", "--params-from", tmp_path, cwd=tmp_path)
    assert_one_line_error(res, 2, "--params-from")
    (tmp_path / "metrics.json").write_text("[1, 2]")
    res = cli_in_process("vector-fields", "run", "--quick", "--params-from", tmp_path, cwd=tmp_path)
    assert_one_line_error(res, 2, "best_architecture")
    res = cli_in_process("vector-fields", "run", "--quick", "--size", "40", cwd=tmp_path)
    assert_one_line_error(res, 2, "does not fit 40x40", "tune --size 40")
    res = cli_in_process("vector-fields", "run", "--quick", "--vae", "--loss", "weighted_mse", cwd=tmp_path)
    assert_one_line_error(res, 2, "--vae")
    res = cli_in_process("vector-fields", "run", "--quick", "--per-class", "1", cwd=tmp_path)
    assert_one_line_error(res, 2, "11 fields are too few for --k-max 15")
    assert_one_line_error(cli_in_process("vector-fields", "generate", "--output", tmp_path / "x.txt"), 2, ".npz")
    assert_one_line_error(
        cli_in_process("vector-fields", "tune", "--storage", "nosuch://x", cwd=tmp_path), 2, "storage"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("metrics.json"))


# slow: 35 s: a second vector-fields quick run, for the one-channel and 1-D-code edge cases; the
# default quick run (the fixture) stays in the suite, and DEC itself in test_deep_clustering.py
@pytest.mark.slow
def test_one_channel_and_one_dimensional_codes_run(tmp_path):
    """A field of one channel has no arrows to draw and a 1-D code no plane to map: both still run,
    and so does ``--cluster dec`` on that encoder (a row beside KMeans at the true k)."""
    res = cli_in_process(
        "vector-fields",
        "run",
        "--quick",
        "--channels",
        "magnitude",
        "--latent",
        "1",
        "--no-export",
        "--cluster-trials",
        "6",
        "--cluster",
        "dec",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "vector-fields").iterdir()
    figures = {p.name for p in (run / "figures").iterdir()}
    assert "reconstructions.png" not in figures and "latent_2d_types.png" in figures
    assert "figures/reconstructions.png" not in (run / "report.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    dec = metrics["clustering"]["scores"]["dec_true_k"]
    codes = metrics["clustering"]["scores"]["kmeans_codes_true_k"]
    # DEC starts from KMeans on the same 1-D codes; the quick budget keeps it near that start
    assert dec["clusters"] == 11 and dec["acc"] == pytest.approx(codes["acc"], abs=0.05)
    assert "DEC on the encoder, true k" in (run / "report.md").read_text()
    assert json.loads((run / "config.json").read_text())["deep_cluster"] == "dec"


# slow: 82 s: the two-stage Optuna search end to end; its engine is tested in test_tuning.py and vector-fields'
# quick run stays in the suite
@pytest.mark.slow
def test_tune_quick_then_run_with_its_params(tmp_path):
    res = cli_in_process("vector-fields", "tune", "--quick", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (tune,) = (tmp_path / "runs" / "vector-fields").iterdir()
    m = json.loads((tune / "metrics.json").read_text())
    assert set(m["stages"]) == {"stage1", "stage2"} and m["best_architecture"]
    assert m["stages"]["stage1"]["trial_rows"][0]["num_layers"] == 5  # the slides' shape goes first
    assert (tune / "study.db").is_file() and str(tune.resolve()) in m["stages"]["stage1"]["storage"]
    figures = {p.name for p in (tune / "figures").iterdir()}
    assert {"stage1_history.png", "stage2_history.png", "stage1_parallel.png"} <= figures
    # resuming the stage-1 study with one more trial keeps the earlier ones
    storage = m["stages"]["stage1"]["storage"]
    res = cli_in_process("vector-fields", "tune", "--quick", "--storage", storage, "--stage1-trials", "3", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    newest = max((tmp_path / "runs" / "vector-fields").iterdir(), key=lambda p: p.stat().st_mtime)
    m2 = json.loads((newest / "metrics.json").read_text())
    assert m2["stages"]["stage1"]["resumed_trials"] == 2 and m2["stages"]["stage1"]["summary"]["trials"] == 3
    assert (newest / "figures" / "reconstructions.png").is_file() and "best_test" in m2
    res = cli_in_process("vector-fields", "tune", "--quick", "--storage", storage, "--size", "40", cwd=tmp_path)
    assert_one_line_error(res, 2, "searched fields 80x80x3", "40x40x3")
    res = cli_in_process("vector-fields", "run", "--quick", "--params-from", tune, "--no-export", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = max((tmp_path / "runs" / "vector-fields").iterdir(), key=lambda p: p.stat().st_mtime)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["architecture"] == m["best_architecture"] and cfg["params_from"] == str(tune)


# --- settings: every action's config is declared once and reads back -------------------------------


def test_tune_trials_given_are_kept_under_quick_and_configs_read_back(tmp_path):
    import dataclasses

    from keras_clust.apps.vector_fields.actions import CLUSTER_SPEC, SPEC, run_config
    from keras_clust.apps.vector_fields.config import ClusterConfig, ClusterSettings, Config
    from keras_clust.apps.vector_fields.tune import TUNE_SPEC, TuneConfig, tune_config
    from keras_clust.cli import build_parser, load_experiment
    from keras_clust.experiment import config_from_saved, saved_config, saved_config_defaults

    parser = build_parser(load_experiment("vector-fields"))
    cfg = tune_config(parser.parse_args(["vector-fields", "tune", "--quick", "--stage1-trials", "3"]))
    assert (cfg.stage1_trials, cfg.stage2_trials, cfg.epochs, cfg.per_class) == (3, 2, 1, 12)
    assert (TuneConfig().stage1_trials, TuneConfig(quick=True).stage2_trials) == (14, 2)

    as_json = lambda c: json.loads(json.dumps(dataclasses.asdict(c), default=str))  # noqa: E731
    study = ClusterSettings(algorithms=("kmeans",), trials=8)
    for spec, config in ((TUNE_SPEC, cfg), (CLUSTER_SPEC, ClusterConfig(run="runs/x", cluster=study, seed=2))):
        raw = json.loads(json.dumps(saved_config(spec, config, None), default=str))
        assert as_json(config_from_saved(spec.config, raw, "x", spec.name)) == as_json(config), spec.action

    # --config: the run's settings back, the nested study's and the latent size too; options override them
    argv = ["vector-fields", "run", "--quick", "--latent", "5", "--cluster-trials", "7", "--cluster", "dec"]
    first = run_config(parser.parse_args(argv))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved_config(SPEC, first, None), default=str))
    argv = ["vector-fields", "run", "--config", str(path), "--k-max", "9"]
    args = parser.parse_args(argv)
    args._parser.set_defaults(**saved_config_defaults(Config, path, "vector-fields", "run"))
    again = run_config(parser.parse_args(argv))
    assert again == dataclasses.replace(first, cluster=dataclasses.replace(first.cluster, k_max=9))
    assert (again.architecture["latent"], again.cluster.trials, again.deep_cluster) == (5, 7, "dec")


def test_a_run_folder_from_before_the_clustering_by_type_still_loads():
    from keras_clust.apps.vector_fields.config import Config
    from keras_clust.experiment import config_from_saved

    raw = {**dataclasses.asdict(Config(k=7, k_range=(3, 9))), "config_version": 2}
    del raw["k"], raw["k_range"]
    cfg = config_from_saved(Config, raw, "old-run", "vector-fields")
    assert (cfg.k, cfg.k_range) == (None, (2, 20)) and cfg == Config()
