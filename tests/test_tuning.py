"""Search space, both engines on tiny data, resume, pruning, divergence, figures."""

import math

import keras
import numpy as np
import optuna
import pytest

from keras_clust.errors import UsageError
from keras_clust.tuning import (
    CAE_SPACE,
    SearchSpace,
    build_compiled_cae,
    choice_param,
    float_param,
    int_param,
    run_kerastuner_search,
    run_optuna_search,
    suggest_kerastuner,
    suggest_optuna,
    to_optuna_study,
)
from keras_clust.viz.search import plot_search

#: A point of the CAE space (the Fashion-MNIST report's best; the app keeps its own copy).
POINT = {"encoded_space_dim": 14, "n_channels": 8, "optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 1e-5}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # smooth blobs so an autoencoder has something to learn in one epoch
    base = rng.random((4, 7, 7, 1)).astype(np.float32)
    x = np.repeat(np.repeat(base[rng.integers(0, 4, 300)], 4, axis=1), 4, axis=2)
    x = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1).astype(np.float32)
    return (x[:240], x[:240]), (x[240:], x[240:])


SMALL = SearchSpace(
    (
        int_param("encoded_space_dim", 2, 4),
        choice_param("n_channels", (2,)),
        choice_param("optimizer", ("adam", "sgd")),
        float_param("learning_rate", 1e-3, 1e-2, log=True),
        float_param("momentum", 0.5, 0.9, when=("optimizer", ("sgd",))),
    )
)


def test_space_conditional_and_validation():
    assert CAE_SPACE.names == (
        "encoded_space_dim",
        "n_channels",
        "optimizer",
        "learning_rate",
        "weight_decay",
        "momentum",
    )
    assert CAE_SPACE.validate({**POINT, "momentum": 0.3}) == POINT  # inactive for adam: dropped
    sgd = {**POINT, "optimizer": "sgd", "momentum": 0.9}
    assert CAE_SPACE.validate(sgd) == sgd
    with pytest.raises(UsageError, match="momentum"):
        CAE_SPACE.validate({**POINT, "optimizer": "sgd"})
    with pytest.raises(UsageError, match="outside"):
        CAE_SPACE.validate({**POINT, "n_channels": 5})
    with pytest.raises(UsageError, match="declared after"):
        SearchSpace((float_param("m", 0, 1, when=("opt", ("sgd",))), choice_param("opt", ("sgd",))))
    with pytest.raises(UsageError, match="log"):
        float_param("lr", 0.0, 1.0, log=True)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optuna_and_kerastuner_translate_the_same_space(optimizer):
    import keras_tuner

    fixed = {**POINT, "optimizer": optimizer}
    if optimizer == "sgd":
        fixed["momentum"] = 0.8
    got = suggest_optuna(CAE_SPACE, optuna.trial.FixedTrial(fixed))
    assert got == fixed
    hp = keras_tuner.HyperParameters()
    first = suggest_kerastuner(CAE_SPACE, hp)  # declares the space with default values
    assert set(first) == {"encoded_space_dim", "n_channels", "optimizer", "learning_rate", "weight_decay"}
    for name, value in fixed.items():
        hp.values[name] = value
    assert suggest_kerastuner(CAE_SPACE, hp) == fixed
    kwargs = CAE_SPACE.builder_kwargs(fixed)
    model = build_compiled_cae(**kwargs)
    assert model.get_layer("cae_encoder").output.shape[-1] == 14
    assert type(model.optimizer).__name__.lower() == optimizer


def test_optuna_search_records_trials_and_checkpoint(data, tmp_path):
    result, study = run_optuna_search(
        SMALL,
        build_compiled_cae,
        *data,
        epochs=1,
        batch_size=32,
        n_trials=2,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="t",
        seed=3,
        checkpoint=tmp_path / "best.keras",
    )
    assert [t.number for t in result.trials] == [0, 1]
    assert result.counts()["complete"] == 2 and all(len(t.curve) == 1 for t in result.trials)
    best = result.best
    assert best.value == min(t.value for t in result.trials)
    assert result.checkpoint_trial == best.number
    model = keras.models.load_model(tmp_path / "best.keras")
    assert model.evaluate(*data[1], verbose=0) == pytest.approx(best.value, rel=1e-4)
    figures = plot_search(result, study, tmp_path / "fig", prefix="o_")
    assert set(figures) >= {"history", "parallel", "intermediate"}
    assert all(p.stat().st_size > 5000 for p in figures.values())


def test_same_seed_same_search(data, tmp_path):
    runs = [
        run_optuna_search(
            SMALL,
            build_compiled_cae,
            *data,
            epochs=1,
            batch_size=32,
            n_trials=2,
            storage=f"sqlite:///{tmp_path / f's{i}.db'}",
            study_name="t",
            seed=5,
        )[0]
        for i in range(2)
    ]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert [t.value for t in runs[0].trials] == pytest.approx([t.value for t in runs[1].trials], rel=1e-5)


def test_resume_keeps_finished_trials(data, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    kw = dict(epochs=1, batch_size=32, storage=url, study_name="r", seed=0)
    first, _ = run_optuna_search(SMALL, build_compiled_cae, *data, n_trials=2, **kw)
    again, study = run_optuna_search(SMALL, build_compiled_cae, *data, n_trials=3, **kw)
    assert again.resumed_trials == 2
    assert len(again.trials) == 3 and len(study.trials) == 3
    for old, new in zip(first.trials, again.trials[:2], strict=True):
        assert (old.params, old.value) == (new.params, new.value)
    nothing, _ = run_optuna_search(SMALL, build_compiled_cae, *data, n_trials=3, **kw)
    assert len(nothing.trials) == 3  # target reached: no new trial


def test_pruning_callback_prunes_a_bad_trial(data, tmp_path):
    good = {"encoded_space_dim": 4, "n_channels": 2, "optimizer": "adam", "learning_rate": 1e-2}
    bad = {"encoded_space_dim": 2, "n_channels": 2, "optimizer": "sgd", "learning_rate": 1e-3, "momentum": 0.5}
    result, _ = run_optuna_search(
        SMALL,
        build_compiled_cae,
        *data,
        epochs=3,
        batch_size=32,
        n_trials=2,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="p",
        seed=0,
        n_startup_trials=1,
        n_warmup_steps=0,
        enqueue=[good, bad],
    )
    states = [t.state for t in result.trials]
    assert states == ["complete", "pruned"]
    assert len(result.trials[1].curve) < 3  # stopped before the last epoch


def test_diverging_trial_fails_and_the_study_goes_on(data, tmp_path):
    space = SearchSpace(SMALL.params[:4] + (float_param("momentum", 0.9, 0.9, when=("optimizer", ("sgd",))),))
    boom = {"encoded_space_dim": 2, "n_channels": 2, "optimizer": "sgd", "learning_rate": 1e-2, "momentum": 0.9}

    def build(**kw):
        if kw["optimizer"] == "sgd":
            kw["learning_rate"] = 1e12  # diverges to NaN within the first batches
        return build_compiled_cae(**kw)

    ok = {"encoded_space_dim": 3, "n_channels": 2, "optimizer": "adam", "learning_rate": 1e-2}
    result, _ = run_optuna_search(
        space,
        build,
        *data,
        epochs=2,
        batch_size=32,
        n_trials=2,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        study_name="n",
        seed=0,
        n_startup_trials=10,
        enqueue=[boom, ok],
    )
    assert result.trials[0].state in ("failed", "pruned")
    assert result.trials[1].state == "complete" and math.isfinite(result.best.value)
    assert result.best.number == 1


@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_kerastuner_search_same_record(data, tmp_path, tuner):
    result, kt = run_kerastuner_search(
        SMALL,
        build_compiled_cae,
        *data,
        tuner=tuner,
        epochs=2,
        batch_size=32,
        n_trials=2,
        directory=tmp_path,
        project_name="k",
        seed=0,
    )
    assert result.engine == "kerastuner" and len(result.trials) >= 2
    assert all(set(t.params) <= set(SMALL.names) for t in result.trials)
    assert all(("momentum" in t.params) == (t.params["optimizer"] == "sgd") for t in result.trials)
    assert all(t.curve and t.value == t.curve[-1] for t in result.completed)
    study = to_optuna_study(result, SMALL)
    assert len(study.trials) == len(result.trials)
    assert study.best_value == pytest.approx(result.best.value)
    best_model = kt.get_best_models(1)[0]
    assert best_model.get_layer("cae_encoder").output.shape[-1] == result.best.params["encoded_space_dim"]


def test_bad_storage_is_a_usage_error(data, tmp_path):
    with pytest.raises(UsageError, match="storage"):
        run_optuna_search(
            SMALL,
            build_compiled_cae,
            *data,
            epochs=1,
            batch_size=32,
            n_trials=1,
            storage="nosuchdb://x",
            study_name="t",
        )
