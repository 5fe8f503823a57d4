"""The vector-field autoencoder: pooling tables, builder, cost estimate, search spaces, weighted MSE."""

import itertools
import math

import keras
import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.fields.autoencoder import (
    REPORT,
    REPORT_ENCODER_PARAMS,
    FieldAEConfig,
    build_field_ae,
    config_from_params,
    estimate_cost,
)
from keras_clust.fields.loss import MagnitudeWeightedMSE
from keras_clust.fields.pooling import depths, max_depth, ordered_factorisations, parse_pools, pooling_table, pools_key
from keras_clust.fields.search_space import space_config, stage1_params, stage1_space, stage2_params, stage2_space
from keras_clust.tuning.space import suggest_optuna


def brute_force_factorisations(n, k):
    divisors = [d for d in range(2, n + 1) if n % d == 0]
    return sorted(t for t in itertools.product(divisors, repeat=k) if math.prod(t) == n)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_pooling_tables_are_the_ordered_factorisations_of_80(k):
    assert list(pooling_table(80, k)) == brute_force_factorisations(80, k)


def test_pooling_tables_match_the_slides():
    slides_2 = {(5, 16), (16, 5), (8, 10), (10, 8), (4, 20), (20, 4), (2, 40), (40, 2)}
    assert set(pooling_table(80, 2)) == slides_2
    three = set(pooling_table(80, 3))
    for row in [(2, 2, 20), (2, 20, 2), (20, 2, 2), (4, 4, 5), (4, 5, 4), (5, 4, 4), (2, 5, 8), (2, 8, 5), (5, 2, 8)]:
        assert row in three
    assert len(pooling_table(80, 5)) == 5 and all(sorted(r) == [2, 2, 2, 2, 5] for r in pooling_table(80, 5))
    assert max_depth(80) == 5 and depths(80) == (2, 3, 4, 5) and depths(7) == () and depths(12) == (2, 3)
    assert parse_pools(pools_key((2, 2, 2, 2, 5))) == (2, 2, 2, 2, 5)


def test_too_deep_or_bad_depth_is_a_usage_error():
    with pytest.raises(UsageError, match="at most 3"):
        pooling_table(12, 4)
    with pytest.raises(UsageError, match="2-5"):
        pooling_table(80, 6)
    assert ordered_factorisations(7, 2) == ()


def test_report_preset_has_the_slides_parameter_count_and_shapes():
    keras.utils.set_random_seed(0)
    ae = build_field_ae(REPORT, (80, 80, 3))
    conv = ae.autoencoder.get_layer("field_ae_conv_encoder")
    assert conv.count_params() == REPORT_ENCODER_PARAMS == 39_549
    # the slides' table, layer by layer: in * out * k^2 + out
    expected = [2_684, 11_010, 20_292, 1_930, 3_633]
    assert [conv.get_layer(f"enc_conv{i}").count_params() for i in range(5)] == expected
    x = np.random.default_rng(0).normal(size=(2, 80, 80, 3)).astype("float32")
    assert ae.encoder(x).shape == (2, 3)
    assert ae.autoencoder(x).shape == (2, 80, 80, 3)
    assert ae.decoder(np.zeros((2, 3), "float32")).shape == (2, 80, 80, 3)
    assert estimate_cost(REPORT, (80, 80, 3), 32).parameters == ae.autoencoder.count_params()


def test_impossible_configurations_are_clear_errors():
    with pytest.raises(UsageError, match="multiply to 40, not the field side 80"):
        FieldAEConfig((4,), (2, 20), (3, 3), (1, 1), ("selu", "selu")).check(80)
    with pytest.raises(UsageError, match="2-5 layers"):
        FieldAEConfig((4,) * 5, (2,) * 6, (3,) * 6, (1,) * 6, ("selu",) * 6).check()
    with pytest.raises(UsageError, match="kernel sizes must be 2-24"):
        FieldAEConfig((4,), (8, 10), (25, 3), (1, 1), ("selu", "selu")).check(80)
    with pytest.raises(UsageError, match="need 1 channels"):
        FieldAEConfig((4, 4), (8, 10), (3, 3), (1, 1), ("selu", "selu")).check(80)
    with pytest.raises(UsageError, match="activations"):
        FieldAEConfig((4,), (8, 10), (3, 3), (1, 1), ("relu", "selu")).check(80)
    with pytest.raises(UsageError, match="H == W"):
        build_field_ae(REPORT, (80, 40, 3))


def test_cost_estimate_by_hand():
    # 4x4x1 input, pools 2,2; channels 2 then latent 1; kernels 3 and 2
    cfg = FieldAEConfig((2,), (2, 2), (3, 2), (1, 1), ("tanh", "tanh"), latent=1)
    c = estimate_cost(cfg, (4, 4, 1), batch_size=5)
    # stored floats: input 16; enc0 conv+act 2*16*2, pool 4*2; enc1 conv+act 2*4*1, pool 1*1;
    # dec1 (side 2, 1 -> 2): up 4*1 + conv/act 2*4*2; dec0 (side 4, 2 -> 1): up 16*2 + conv/act 2*16*1
    stored = 16 + 64 + 8 + 8 + 1 + 4 + 16 + 32 + 32
    assert c.activation_bytes == 2 * 4 * stored * 5
    # macs: enc0 16*9*1*2, enc1 4*4*2*1, dec1 4*4*1*2, dec0 16*9*2*1
    assert c.macs == 288 + 32 + 32 + 288
    assert c.parameters == (9 * 2 + 2) + (4 * 2 + 1) + (4 * 2 + 2) + (9 * 2 + 1)
    keras.utils.set_random_seed(0)
    assert build_field_ae(cfg, (4, 4, 1)).autoencoder.count_params() == c.parameters
    assert estimate_cost(cfg, (4, 4, 1), 10).activation_bytes == 2 * c.activation_bytes


def test_every_configuration_the_search_proposes_builds():
    """Sample both stages through Optuna's own samplers: all 40 stage-1 proposals pass the shape
    check, the first proposal of each depth and the corners of stage 2 build with the right shapes,
    and stage 2 proposes buildable models after three stage-1 winners (building every proposal
    took 34 s of the suite for the same coverage of depths)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space1 = stage1_space(80)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    shapes, seen_depths = [], set()
    for _ in range(40):
        trial = study.ask()
        params = suggest_optuna(space1, trial)
        cfg = space_config(space1.builder_kwargs(params)).check(80)
        assert math.prod(cfg.pools) == 80 and cfg.kernels == (3,) * cfg.num_layers
        seen_depths.add(cfg.num_layers)
        study.tell(trial, 0.0)
        shapes.append(params)
    assert seen_depths == {2, 3, 4, 5}
    x = np.zeros((1, 80, 80, 3), "float32")
    first_of_depth = {}
    for params in shapes:
        first_of_depth.setdefault(space_config(space1.builder_kwargs(params)).num_layers, params)
    for params in first_of_depth.values():  # one proposal of each depth builds and ends at one cell
        keras.backend.clear_session()
        ae = build_field_ae(space_config(space1.builder_kwargs(params)), (80, 80, 3))
        assert ae.encoder(x).shape == (1, 3) and ae.autoencoder(x).shape == (1, 80, 80, 3)
    # the corners of stage 2: largest kernel and dilation everywhere, the smallest (even) kernel
    for kernel, dilation in ((24, 5), (2, 1)):
        n = REPORT.num_layers
        corner = FieldAEConfig(REPORT.channels, REPORT.pools, (kernel,) * n, (dilation,) * n, ("silu",) * n)
        keras.backend.clear_session()
        assert build_field_ae(corner, (80, 80, 3)).autoencoder(x).shape == (1, 80, 80, 3)
    built = 0
    for params in shapes[:3]:
        space2 = stage2_space(params)
        s2 = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=2))
        for _ in range(3):
            trial = s2.ask()
            cfg = space_config(space2.builder_kwargs(suggest_optuna(space2, trial)))
            keras.backend.clear_session()
            ae = build_field_ae(cfg, (80, 80, 3))
            assert ae.encoder(x).shape == (1, 3) and ae.autoencoder(x).shape == (1, 80, 80, 3)
            s2.tell(trial, 0.0)
            built += 1
    assert built == 9


def test_stage_parameters_round_trip_the_report_preset():
    space1 = stage1_space(80)
    kwargs1 = space1.builder_kwargs(space1.validate(stage1_params(REPORT)))
    space2 = stage2_space(stage1_params(REPORT))
    kwargs2 = space2.builder_kwargs(space2.validate(stage2_params(REPORT)))
    assert space_config(kwargs2) == REPORT
    assert space_config(kwargs1) == FieldAEConfig(REPORT.channels, REPORT.pools, (3,) * 5, (1,) * 5, ("selu",) * 5)
    assert config_from_params({**stage1_params(REPORT), **stage2_params(REPORT)}) == REPORT
    assert FieldAEConfig.from_dict(REPORT.to_dict()) == REPORT


def test_weighted_mse_by_hand():
    loss = MagnitudeWeightedMSE(floor=0.0)
    # constant magnitude: weights all 1, the loss is the MSE
    y = np.ones((1, 2, 2, 2), "float32")
    pred = y + np.array([0.5, -0.5], "float32")
    assert float(loss(y, pred)) == pytest.approx(0.25, rel=1e-5)
    # two pixels of magnitude 3 and 1 (floor 0): weights 1.5 and 0.5
    y = np.array([[[[3.0, 0.0], [1.0, 0.0]]]], "float32")  # (1, 1, 2, 2)
    pred = y + np.array([[[[1.0, 1.0], [2.0, 0.0]]]], "float32")
    # per-pixel MSE over channels: 1.0 and 2.0 -> (1.5 * 1 + 0.5 * 2) / 2
    assert float(loss(y, pred)) == pytest.approx(1.25, rel=1e-5)
    assert float(MagnitudeWeightedMSE(floor=1.0)(y, pred)) == pytest.approx((4 / 3 * 1 + 2 / 3 * 2) / 2, rel=1e-5)


def test_weighted_loss_and_vae_variants_train_and_round_trip(tmp_path):
    cfg = FieldAEConfig((3,), (2, 4), (3, 3), (1, 2), ("silu", "tanh"), latent=2)
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    ae = build_field_ae(cfg, (8, 8, 2), loss="weighted_mse", scale=2.0)
    ae.autoencoder.fit(x, x, epochs=1, batch_size=8, verbose=0)
    ae.autoencoder.save(tmp_path / "ae.keras")
    again = keras.models.load_model(tmp_path / "ae.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), ae.autoencoder.predict(x, verbose=0), atol=1e-5)
    keras.utils.set_random_seed(0)
    vae = build_field_ae(cfg, (8, 8, 2), vae=True, seed=0)
    hist = vae.autoencoder.fit(x, None, epochs=1, batch_size=8, verbose=0).history
    assert hist["kl"][0] > 0 and np.isfinite(hist["loss"][0])
    z1, z2 = vae.encoder.predict(x, verbose=0), vae.encoder.predict(x, verbose=0)
    np.testing.assert_array_equal(z1, z2)  # the encoder gives z_mean: deterministic
    assert [layer.name for layer in vae.encoder.layers][-1] == "kl"


def test_scale_makes_the_models_unit_free():
    cfg = FieldAEConfig((3,), (2, 4), (3, 3), (1, 1), ("tanh", "tanh"), latent=2)
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    a = build_field_ae(cfg, (8, 8, 2), scale=1.0)
    keras.utils.set_random_seed(0)
    b = build_field_ae(cfg, (8, 8, 2), scale=10.0)
    np.testing.assert_allclose(b.encoder(10 * x), a.encoder(x), atol=1e-5)
    np.testing.assert_allclose(b.autoencoder(10 * x), 10 * a.autoencoder(x), rtol=1e-4, atol=1e-4)
