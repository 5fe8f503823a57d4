"""The experiment skeleton: strict config loading, migrations, the files and report tail of a run."""

import json
from dataclasses import dataclass
from typing import ClassVar

import keras
import numpy as np
import pytest

from keras_clust.errors import DataError
from keras_clust.experiment import (
    ExperimentSpec,
    Export,
    config_from_saved,
    export_models,
    load_run,
    run_experiment,
)


@dataclass
class ToyConfig:
    sizes: tuple[int, ...] = (2, 3)
    pair: tuple[int, int] | None = None
    rate: float = 0.1
    seed: int = 0
    export: bool = True
    models_dir: str = "saved_models"


@dataclass
class ToyConfigV3:
    """Version 3 renamed ``lr`` to ``rate`` (v1 -> v2) and added ``clip`` (v2 -> v3)."""

    CONFIG_VERSION: ClassVar[int] = 3
    MIGRATIONS: ClassVar[dict] = {
        1: lambda d: {**{k: v for k, v in d.items() if k != "lr"}, "rate": d["lr"]},
        2: lambda d: {**d, "clip": None},  # what version-2 runs did: no clipping
    }
    rate: float = 0.1
    clip: float | None = 1.0
    seed: int = 0


SAVED = {
    "experiment": "toy",
    "action": "run",
    "sizes": [2, 3],
    "pair": [1, 2],
    "rate": 0.1,
    "seed": 4,
    "export": False,
    "models_dir": "m",
    "data": {"note": "n"},
    "run_id": "r",
    "versions": {},
    "machine": {},
}


def test_saved_config_round_trips_with_tuples():
    cfg = config_from_saved(ToyConfig, SAVED, "runs/toy/r")
    assert cfg == ToyConfig(sizes=(2, 3), pair=(1, 2), rate=0.1, seed=4, export=False, models_dir="m")
    assert isinstance(cfg.sizes, tuple) and isinstance(cfg.pair, tuple)


def test_unknown_and_missing_keys_are_one_clear_error():
    raw = {k: v for k, v in SAVED.items() if k not in ("rate", "seed")}
    raw.update(old_a=1, old_b=2)
    with pytest.raises(DataError) as err:
        config_from_saved(ToyConfig, raw, "runs/toy/r", "toy")
    msg = str(err.value)
    assert "\n" not in msg
    assert "run runs/toy/r was written with a different config (unknown keys old_a, old_b; missing rate, seed)" in msg
    assert "re-run it with 'keras-clust toy run'" in msg


def test_unknown_key_alone_is_not_dropped():
    with pytest.raises(DataError, match=r"unknown keys extra\)"):
        config_from_saved(ToyConfig, {**SAVED, "extra": 1}, "r")


def test_missing_key_alone_is_not_filled_with_todays_default():
    raw = {k: v for k, v in SAVED.items() if k != "rate"}
    with pytest.raises(DataError, match=r"\(missing rate\)"):
        config_from_saved(ToyConfig, raw, "r")


def test_declared_migrations_upgrade_old_runs_step_by_step():
    v1 = {"lr": 0.5, "seed": 2}  # no config_version: a version-1 run
    assert config_from_saved(ToyConfigV3, v1, "r") == ToyConfigV3(rate=0.5, clip=None, seed=2)
    v2 = {"config_version": 2, "rate": 0.2, "seed": 1}
    assert config_from_saved(ToyConfigV3, v2, "r") == ToyConfigV3(rate=0.2, clip=None, seed=1)
    v3 = {"config_version": 3, "rate": 0.2, "clip": 2.0, "seed": 1}
    assert config_from_saved(ToyConfigV3, v3, "r").clip == 2.0
    with pytest.raises(DataError, match="config version 4, newer"):
        config_from_saved(ToyConfigV3, {**v3, "config_version": 4}, "r")
    with pytest.raises(DataError, match="no migration"):
        config_from_saved(ToyConfig, {**SAVED, "config_version": 0}, "r")


def _dense(name):
    inputs = keras.Input((4,), name="x")
    return keras.Model(inputs, keras.layers.Dense(3, name="d")(inputs), name=name)


def _steps(cfg, run):
    run.set_data({"note": "toy data", "full": False})
    for key in ("a", "b"):
        run.seed_model(key)
        run.save_model(_dense(key), f"{key}.keras")
    run.metrics["score"] = 1.5
    run.history += [{"model": "a", "epoch": 1, "loss": 0.5}]
    run.export_samples["x"] = np.ones((2, 4), np.float32)


SPEC = ExperimentSpec(
    name="toy",
    config=ToyConfig,
    steps=_steps,
    report=lambda cfg, m: f"# toy `{m['run_id']}`\n\nscore {m['score']}",
    summary=lambda cfg, m: f"score {m['score']}\n",
    exports=lambda cfg: [Export(f"toy_{k}", f"{k}.keras", "x", "y") for k in ("a", "b")],
)


def test_run_writes_files_report_tail_and_exports(tmp_path, capsys):
    cfg = ToyConfig(seed=3, models_dir=str(tmp_path / "models"))
    done = run_experiment(SPEC, cfg, tmp_path / "runs")
    out = capsys.readouterr().out.splitlines()
    assert out == ["score 1.5", "data: toy data", f"run folder: {done.path}"]
    m = json.loads((done.path / "metrics.json").read_text())
    assert m["score"] == 1.5 and m["run_id"] == done.path.name and m["data"]["note"] == "toy data"
    assert set(m["model_seeds"]) == {"a", "b"} and m["model_seeds"]["a"] != m["model_seeds"]["b"]
    assert [e["model"] for e in m["exports"]] == ["toy_a", "toy_b"] and m["total_seconds"] >= 0
    config = json.loads((done.path / "config.json").read_text())
    assert config["experiment"] == "toy" and config["action"] == "run" and config["config_version"] == 1
    assert config["sizes"] == [2, 3] and "tensorflow" in config["versions"]
    report = (done.path / "report.md").read_text()
    assert report.startswith(f"# toy `{done.path.name}`\n\nscore 1.5\n\n## Run\n")
    assert "**Seed:** 3; each model re-seeded" in report and "not the full dataset" in report
    assert "tensorflow " in report and "| toy_b |" in report
    assert (done.path / "history.csv").read_text().splitlines() == ["model,epoch,loss", "a,1,0.5"]
    # the run reads back as the same config, and its models export again (version 2)
    loaded = load_run(SPEC, tmp_path / "runs")
    assert loaded.path == done.path and loaded.config == cfg
    rows = export_models(SPEC.exports(cfg), done.path, cfg.models_dir, seed=cfg.seed)
    assert [r["version"] for r in rows] == [2, 2]


def test_each_model_gets_the_same_weights_whatever_was_built_before(tmp_path):
    """A model built alone and one built after another model start from identical weights."""

    def steps(keys):
        def _s(cfg, run):
            run.set_data(note="none")
            for key in keys:
                run.seed_model(key)
                run.save_model(_dense(key), f"{key}.keras")

        return _s

    spec_alone = ExperimentSpec("one", ToyConfig, steps(["b"]), report=lambda c, m: "")
    spec_after = ExperimentSpec("two", ToyConfig, steps(["a", "b"]), report=lambda c, m: "")
    cfg = ToyConfig(export=False)
    alone = run_experiment(spec_alone, cfg, tmp_path)
    after = run_experiment(spec_after, cfg, tmp_path)
    w1 = keras.models.load_model(alone.path / "models" / "b.keras").get_weights()
    w2 = keras.models.load_model(after.path / "models" / "b.keras").get_weights()
    np.testing.assert_array_equal(w1[0], w2[0])
    assert "None in this run" in (alone.path / "report.md").read_text()


def test_load_run_refuses_other_actions_and_changed_configs(tmp_path):
    root = tmp_path / "toy"
    (root / "t1").mkdir(parents=True)
    (root / "t1" / "config.json").write_text(json.dumps({"action": "tune"}))
    (root / "t1" / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="no complete 'run' folder under .* \\(only 'tune' folders\\)"):
        load_run(SPEC, tmp_path)
    with pytest.raises(DataError, match="is a 'tune' folder"):
        load_run(SPEC, tmp_path, "t1")
    (root / "r1").mkdir()
    (root / "r1" / "config.json").write_text(json.dumps({**SAVED, "dropped_option": 3}))
    (root / "r1" / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="unknown keys dropped_option"):
        load_run(SPEC, tmp_path)


@pytest.mark.parametrize(
    "module",
    [
        "keras_clust.apps.mnist_l1",
        "keras_clust.apps.fashion_cae.actions",
        "keras_clust.apps.gmm_vae.actions",
        "keras_clust.apps.mnist_denoise",
        "keras_clust.apps.lj_fluid.actions",
        "keras_clust.apps.vector_fields.actions",
        "keras_clust.apps.bump",
        "keras_clust.apps.cluster_data",
        "keras_clust.apps.cluster_bench",
    ],
)
def test_every_run_config_reads_back_from_its_config_json(module):
    """What ``run --resume`` relies on: the config.json written at the start of a run rebuilds
    the same config (a field hidden by a key the skeleton adds would not)."""
    import dataclasses
    import importlib

    from keras_clust.experiment import config_from_saved, saved_config

    spec = importlib.import_module(module).SPEC
    config = spec.config()
    raw = json.loads(json.dumps(saved_config(spec, config, None), default=str))
    raw.update(run_id="r", versions={}, machine={})
    back = config_from_saved(spec.config, raw, "runs/x/.r.partial", spec.name)
    as_json = lambda c: json.loads(json.dumps(dataclasses.asdict(c), default=str))  # noqa: E731 (tuples as lists)
    assert as_json(back) == as_json(config)
