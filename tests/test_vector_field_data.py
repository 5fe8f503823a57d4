"""Synthetic vector fields (ground truth, physics signs, determinism), their files and their figures."""

import json

import numpy as np
import pytest

from keras_clust.errors import DataError, UsageError
from keras_clust.fields.dataset import fields_source, load_fields, save_fields
from keras_clust.fields.figures import plot_field_gallery, plot_field_pairs
from keras_clust.fields.generator import (
    CHANNELS,
    FLOW_TYPES,
    PARAMS,
    FieldSet,
    clean_fields,
    generate_fields,
    pixel_centres,
)


def _div_curl(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences: axis 2 is x, axis 1 is y, spacing 2 / size."""
    u, v = fields[..., 0].astype(np.float64), fields[..., 1].astype(np.float64)
    h = 2.0 / fields.shape[1]
    div = np.gradient(u, h, axis=2) + np.gradient(v, h, axis=1)
    curl = np.gradient(v, h, axis=2) - np.gradient(u, h, axis=1)
    return div, curl


def _nearest_pixel(fs: FieldSet, k: int) -> tuple[int, int]:
    """(row, column) of the pixel closest to field k's centre."""
    xs = pixel_centres(fs.size)
    return int(np.argmin(np.abs(xs - fs.params["centre_y"][k]))), int(np.argmin(np.abs(xs - fs.params["centre_x"][k])))


@pytest.fixture(scope="module")
def clean():
    """Two noise-free fields of every flow type at 80x80."""
    return generate_fields(2, noise=0.0, seed=3)


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and message
    return message


# --- the generator -------------------------------------------------------------------------------------------


def test_same_seed_same_fields_other_seed_other_fields():
    a, b, c = (generate_fields(2, size=20, seed=seed) for seed in (5, 5, 6))
    np.testing.assert_array_equal(a.fields, b.fields)
    np.testing.assert_array_equal(a.labels, b.labels)
    for name in PARAMS:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.fields, c.fields)
    assert json.loads(json.dumps(a.settings)) == a.settings and a.settings["seed"] == 5
    assert "seed 5" in a.note and "22 of 20x20" in a.note


def test_shapes_dtypes_and_channel_subsets():
    full = generate_fields(3, size=16, seed=1)
    assert full.fields.shape == (33, 16, 16, 3) and full.fields.dtype == np.float32
    assert full.labels.dtype == np.int64 and full.n == 33 and full.size == 16
    assert full.channels == CHANNELS and full.class_names == FLOW_TYPES
    # the same draws whatever channels are kept: a subset is a slice of the full set, in the order asked for
    sub = generate_fields(3, size=16, seed=1, channels=("magnitude", "u"))
    assert sub.channels == ("magnitude", "u") and sub.fields.shape == (33, 16, 16, 2)
    np.testing.assert_array_equal(sub.fields, full.fields[..., [2, 0]])
    u, v, mag = np.moveaxis(full.fields, -1, 0)
    np.testing.assert_allclose(mag, np.hypot(u, v), rtol=1e-6)  # magnitude of the noisy u, v
    two = generate_fields(4, size=16, flow_types=("vortex_cw", "source"), channels="u")
    assert two.class_names == ("vortex_cw", "source") and two.fields.shape == (8, 16, 16, 1)


def test_labels_balanced_and_shuffled():
    fs = generate_fields(5, size=16, seed=2)
    np.testing.assert_array_equal(np.bincount(fs.labels), [5] * len(FLOW_TYPES))
    assert np.any(np.diff(fs.labels) < 0)  # not sorted by class
    np.testing.assert_array_equal(fs.params["class"], fs.labels)
    p = fs.params
    assert p["centre_x"].min() >= -0.5 and p["centre_y"].max() <= 0.5
    assert np.abs(p["rotation_deg"]).max() <= 45 and 0.5 <= p["strength"].min() and p["strength"].max() <= 1.5
    assert 0.2 <= p["core_radius"].min() and p["core_radius"].max() <= 0.4


def test_max_speed_of_a_noise_free_field_is_its_strength(clean):
    speed = np.hypot(clean.fields[..., 0], clean.fields[..., 1]).max(axis=(1, 2))
    np.testing.assert_allclose(speed, clean.params["strength"], rtol=1e-6)
    np.testing.assert_allclose(clean.fields[..., 2], np.hypot(clean.fields[..., 0], clean.fields[..., 1]), rtol=1e-6)


def test_noise_has_the_asked_standard_deviation(clean):
    noisy = generate_fields(2, noise=0.05, seed=3)  # same seed: same parameters, noise on top
    resid = (noisy.fields[..., :2] - clean.fields[..., :2]) / clean.params["strength"][:, None, None, None]
    assert abs(resid.std() - 0.05) < 0.002 and abs(resid.mean()) < 0.002


def test_uniform_flow_points_along_the_rotation():
    fs = generate_fields(3, flow_types=("uniform",), noise=0.0, size=16, seed=4)
    theta = np.deg2rad(fs.params["rotation_deg"])[:, None, None]
    s = fs.params["strength"][:, None, None]
    np.testing.assert_allclose(fs.fields[..., 0], np.broadcast_to(s * np.cos(theta), (3, 16, 16)), rtol=1e-6)
    np.testing.assert_allclose(fs.fields[..., 1], np.broadcast_to(s * np.sin(theta), (3, 16, 16)), rtol=1e-6)


@pytest.mark.parametrize(
    "flow_type, rotate", [("source", False), ("sink", False), ("vortex_ccw", True), ("vortex_cw", True)]
)
def test_layout_rows_are_y_columns_are_x(clean, flow_type, rotate):
    """A source flows along p - c whatever the angle; a ccw vortex along (-(y - cy), x - cx)."""
    k = np.flatnonzero(clean.labels == FLOW_TYPES.index(flow_type))
    xs = pixel_centres(clean.size)
    dx = xs[None, None, :] - clean.params["centre_x"][k][:, None, None]
    dy = xs[None, :, None] - clean.params["centre_y"][k][:, None, None]
    ex, ey = (-dy, dx) if rotate else (dx, dy)
    u, v = clean.fields[k, ..., 0], clean.fields[k, ..., 1]
    sign = -1.0 if flow_type in ("sink", "vortex_cw") else 1.0
    far = np.hypot(dx, dy) > 0.05
    assert np.all(sign * (u * ex + v * ey)[far] > 0)
    np.testing.assert_allclose((u * ey - v * ex)[far], 0.0, atol=1e-5)  # parallel to the expected direction


@pytest.mark.parametrize(
    "flow_type, div_sign, curl_sign",
    [
        ("source", 1, 0),
        ("sink", -1, 0),
        ("vortex_ccw", 0, 1),
        ("vortex_cw", 0, -1),
        ("spiral_out", 1, 1),
        ("spiral_in", -1, 1),
    ],
)
def test_divergence_and_curl_signs_at_the_centre(clean, flow_type, div_sign, curl_sign):
    """At the centre of ``f e_r`` (scaled to strength s) the divergence is 4 s / r0; the same holds for
    the curl of ``f e_t``; a spiral has both, divided by sqrt 2."""
    div, curl = _div_curl(clean.fields)
    weight = 1.0 / np.sqrt(2.0) if flow_type.startswith("spiral") else 1.0
    for k in np.flatnonzero(clean.labels == FLOW_TYPES.index(flow_type)):
        i, j = _nearest_pixel(clean, k)
        expected = weight * 4.0 * clean.params["strength"][k] / clean.params["core_radius"][k]
        for value, sign in ((div[k, i, j], div_sign), (curl[k, i, j], curl_sign)):
            if sign == 0:
                assert abs(value) < 1e-3 * expected
            else:
                np.testing.assert_allclose(value, sign * expected, rtol=0.03)


def test_every_pattern_is_finite_at_its_own_centre():
    centre = np.full((1, 2), pixel_centres(80)[40])  # the centre on a pixel centre: r = 0 there
    for flow_type in FLOW_TYPES:
        u, v = clean_fields(flow_type, centre, np.array([30.0]), np.array([1.0]), np.array([0.3]), 80)
        assert np.isfinite(u).all() and np.isfinite(v).all()
        if flow_type in ("source", "sink", "vortex_cw", "vortex_ccw", "spiral_in", "spiral_out", "saddle"):
            assert u[0, 40, 40] == pytest.approx(0.0, abs=1e-12) and v[0, 40, 40] == pytest.approx(0.0, abs=1e-12)


def test_vortex_pair_is_a_jet_and_dipole_flows_source_to_sink():
    fs = generate_fields(1, flow_types=("vortex_pair", "dipole"), noise=0.0, max_rotation=0.0, seed=0)
    for k in range(2):
        i, j = _nearest_pixel(fs, k)
        u = fs.fields[k, i, j, 0]
        # between the vortices the jet runs along +x; between source (+x) and sink (-x) the flow runs along -x
        assert (u > 0.5 * fs.params["strength"][k]) if fs.class_names[fs.labels[k]] == "vortex_pair" else (u < 0)


def test_classes_are_told_apart_by_mean_divergence_curl_and_velocity():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(fs):
        div, curl = _div_curl(fs.fields)
        return np.stack(
            [div.mean((1, 2)), curl.mean((1, 2)), fs.fields[..., 0].mean((1, 2)), fs.fields[..., 1].mean((1, 2))],
            axis=1,
        )

    train, test = generate_fields(20, seed=0), generate_fields(20, seed=1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features(train), train.labels)
    accuracy = float(np.mean(model.predict(features(test)) == test.labels))
    print(f"accuracy of 4 mean features on a new seed: {accuracy:.3f} (chance {1 / len(FLOW_TYPES):.3f})")
    assert accuracy > 0.6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_per_class": 0},
        {"size": 7},
        {"size": 1},
        {"channels": ()},
        {"channels": ("u", "u")},
        {"channels": ("w",)},
        {"flow_types": ("source", "source")},
        {"flow_types": ("laminar",)},
        {"noise": -0.1},
        {"noise": float("nan")},
        {"max_rotation": 200},
        {"max_rotation": -1},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_usage_errors(kwargs):
    args = {"n_per_class": 1, "size": 16} | kwargs
    with pytest.raises(UsageError) as info:
        generate_fields(args.pop("n_per_class"), **args)
    _one_line(info)


# --- files ---------------------------------------------------------------------------------------------------


def test_save_load_round_trip_is_exact(tmp_path):
    fs = generate_fields(2, size=16, seed=9, channels=("u", "v"))
    path = save_fields(fs, tmp_path / "sub" / "fields.npz")
    back = load_fields(path)
    np.testing.assert_array_equal(back.fields, fs.fields)
    np.testing.assert_array_equal(back.labels, fs.labels)
    assert back.fields.dtype == np.float32 and back.labels.dtype == np.int64
    assert (back.class_names, back.channels, back.note, back.settings) == (
        fs.class_names,
        fs.channels,
        fs.note,
        fs.settings,
    )
    assert sorted(back.params) == sorted(PARAMS)
    for name in PARAMS:
        np.testing.assert_array_equal(back.params[name], fs.params[name])
    assert [p.name for p in path.parent.iterdir()] == ["fields.npz"]  # no temporary file left
    unlabelled = FieldSet(fs.fields, None, (), fs.channels)
    again = load_fields(save_fields(unlabelled, tmp_path / "u.npz"))
    assert again.labels is None and again.class_names == () and again.params == {}
    with pytest.raises(UsageError):
        save_fields(fs, tmp_path / "fields.npy")


def test_users_npy_and_npz(tmp_path):
    x = np.arange(3 * 16 * 16 * 2, dtype=np.int16).reshape(3, 16, 16, 2)
    np.save(tmp_path / "x.npy", x)
    fs = load_fields(tmp_path / "x.npy")
    assert fs.fields.dtype == np.float32 and fs.channels == ("c0", "c1") and fs.labels is None
    np.testing.assert_array_equal(fs.fields, x.astype(np.float32))
    assert fs.params == {} and "3 vector fields of 16x16 (unlabelled)" in fs.note
    np.savez(tmp_path / "one.npz", anything=x.astype(np.float64))  # exactly one array, any name
    assert load_fields(tmp_path / "one.npz").n == 3
    np.savez(tmp_path / "lab.npz", fields=x, labels=np.array([2, 0, 2]), channels=np.array(["u", "v"]))
    fs = load_fields(tmp_path / "lab.npz")
    assert fs.class_names == ("0", "1", "2") and fs.channels == ("u", "v") and fs.labels.tolist() == [2, 0, 2]
    src = fields_source(fs, tmp_path / "lab.npz")
    assert (src.dataset, src.origin, src.full, src.location) == (
        "vector_fields",
        "file",
        True,
        str(tmp_path / "lab.npz"),
    )
    synthetic = fields_source(generate_fields(1, size=16))
    assert synthetic.origin == "synthetic" and synthetic.note.startswith("synthetic 2-D vector fields")


def _good(n=3, h=16, w=16, c=2):
    return np.zeros((n, h, w, c), np.float32)


def _nan():
    x = _good()
    x[1, 2, 3, 0] = np.nan
    x[2, 0, 0, 1] = np.inf
    return x


def _pickled_npy(path):
    np.save(path, np.array([1, "a", None], dtype=object), allow_pickle=True)


def _pickled_npz(path):
    np.savez(path, fields=np.array([{"u": 1}], dtype=object))


def _truncated_npz(path):
    np.savez(path, fields=_good())
    path.write_bytes(path.read_bytes()[:300])


def _bad_member_npz(path):
    """A zip whose central directory is intact but whose array member is damaged."""
    np.savez(path, fields=_good())
    raw = bytearray(path.read_bytes())
    raw[40:120] = b"\x00" * 80
    path.write_bytes(bytes(raw))


BAD_FILES = {
    "three_axes.npy": (lambda p: np.save(p, np.zeros((3, 16, 16))), "x[..., None]"),
    "two_axes.npy": (lambda p: np.save(p, np.zeros((3, 16))), "(N, H, W, C)"),
    "nan.npy": (lambda p: np.save(p, _nan()), "2 values are NaN or infinite (first at index (1, 2, 3, 0))"),
    "huge.npy": (lambda p: np.save(p, _good().astype(np.float64) + 1e300), "float32 range"),
    "not_square.npy": (lambda p: np.save(p, _good(w=20)), "square"),
    "prime.npy": (lambda p: np.save(p, _good(h=7, w=7)), "such as 80"),
    "bool.npy": (lambda p: np.save(p, _good().astype(bool)), "dtype bool"),
    "complex.npy": (lambda p: np.save(p, _good().astype(np.complex64)), "real numbers"),
    "one_field.npy": (lambda p: np.save(p, _good(n=1)), "at least 2"),
    "no_channels.npy": (lambda p: np.save(p, _good(c=0)), "no channels"),
    "garbage.npy": (lambda p: p.write_bytes(b"not an array at all" * 10), "not an .npy"),
    "garbage.npz": (lambda p: p.write_bytes(b"PK\x03\x04 but not a zip" * 10), "not an .npz"),
    "truncated.npz": (_truncated_npz, "corrupt"),
    "damaged.npz": (_bad_member_npz, "corrupt"),
    "fields.txt": (lambda p: p.write_text("1 2 3"), ".npy"),
    "no_suffix": (lambda p: p.write_text("1 2 3"), ".npz"),
    "pickled.npy": (_pickled_npy, "pickled"),
    "pickled.npz": (_pickled_npz, "pickled"),
    "short_labels.npz": (lambda p: np.savez(p, fields=_good(), labels=np.array([0, 1])), "one label per field"),
    "float_labels.npz": (lambda p: np.savez(p, fields=_good(), labels=np.array([0.0, 1.0, 1.0])), "integers"),
    "negative_labels.npz": (lambda p: np.savez(p, fields=_good(), labels=np.array([0, -1, 1])), "0, 1, 2"),
    "few_names.npz": (
        lambda p: np.savez(p, fields=_good(), labels=np.array([0, 1, 2]), class_names=np.array(["a"])),
        "give 3 names",
    ),
    "channel_names.npz": (
        lambda p: np.savez(p, fields=_good(), channels=np.array(["u", "v", "w"])),
        "one name per channel",
    ),
    "two_arrays.npz": (lambda p: np.savez(p, a=_good(), b=_good()), "key 'fields'"),
    "bad_settings.npz": (lambda p: np.savez(p, fields=_good(), settings=np.array("{oops")), "JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_every_bad_file_is_a_one_line_data_error(tmp_path, name):
    path = tmp_path / name
    write, expected = BAD_FILES[name]
    write(path)
    with pytest.raises(DataError) as info:
        load_fields(path)
    message = _one_line(info)
    assert str(path) in message and expected in message, message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as info:
        load_fields(tmp_path / "absent.npz")
    assert "does not exist" in _one_line(info)


# --- figures -------------------------------------------------------------------------------------------------


def test_figures_write_pngs(tmp_path):
    fs = generate_fields(3, seed=0)
    labels = fs.labels.copy()
    labels[:4] = -1  # DBSCAN-style noise
    labels[4:6] = 30  # a cluster beyond the class names
    assert _is_png(plot_field_gallery(fs.fields, labels, fs.class_names, tmp_path / "gallery.png", title="t"))
    assert _is_png(plot_field_gallery(fs.fields[:5, ::4, ::4], None, (), tmp_path / "plain.png", per_class=2))
    small = generate_fields(1, size=20, flow_types=("source", "vortex_ccw"), seed=0)
    rec = small.fields + np.float32(0.1)
    path = plot_field_pairs(small.fields, rec, tmp_path / "pairs.png", titles=["a", "b"], max_pairs=6)
    assert _is_png(path)
    with pytest.raises(UsageError):
        plot_field_pairs(small.fields, rec[:1], tmp_path / "bad.png")
    with pytest.raises(UsageError):
        plot_field_gallery(small.fields[..., :1], None, (), tmp_path / "bad.png")
