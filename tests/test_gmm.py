"""Gaussian-mixture generator, mixture files, the mode-coverage metric, choosing k."""

import json

import numpy as np
import pytest

from keras_clust.cluster import elbow_point, mahalanobis_distances, mode_coverage, select_k
from keras_clust.data import GaussianMixture, check_mixture, load_mixture, random_mixture, sample_mixture, save_mixture
from keras_clust.errors import DataError


@pytest.fixture
def mixture():
    return random_mixture(3, 10, seed=0)


def test_random_mixture_defaults(mixture):
    assert mixture.means.shape == (10, 3) and mixture.covariances.shape == (10, 3, 3)
    np.testing.assert_array_equal(mixture.covariances, np.repeat(np.eye(3)[None], 10, axis=0))
    assert mixture.weights.sum() == pytest.approx(1.0) and np.all(mixture.weights > 0)
    assert np.all(np.abs(mixture.means) <= 10.0)
    again = random_mixture(3, 10, seed=0)
    np.testing.assert_array_equal(again.means, mixture.means)
    assert not np.array_equal(random_mixture(3, 10, seed=1).means, mixture.means)


def test_samples_follow_the_parameters():
    cov = np.array([[[2.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 3.0]]])
    mix = check_mixture([[0.0, 0.0], [20.0, -5.0]], cov, [0.3, 0.7])
    x, labels = sample_mixture(mix, 200_000, seed=0)
    assert x.dtype == np.float32 and x.shape == (200_000, 2)
    np.testing.assert_allclose(np.bincount(labels) / len(labels), [0.3, 0.7], atol=0.005)
    for k in range(2):
        pts = x[labels == k]
        np.testing.assert_allclose(pts.mean(0), mix.means[k], atol=0.02)
        np.testing.assert_allclose(np.cov(pts, rowvar=False), cov[k], atol=0.03)
    a, _ = sample_mixture(mix, 50, seed=3)
    b, _ = sample_mixture(mix, 50, seed=3)
    np.testing.assert_array_equal(a, b)


def test_mixture_file_round_trip(mixture, tmp_path):
    save_mixture(mixture, tmp_path / "m.json")
    again = load_mixture(tmp_path / "m.json")
    np.testing.assert_allclose(again.means, mixture.means)
    np.savez(tmp_path / "m.npz", means=mixture.means, weights=mixture.weights)  # covariances default to I
    npz = load_mixture(tmp_path / "m.npz")
    np.testing.assert_array_equal(npz.covariances, mixture.covariances)


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"means": [[0, 0], [1, 1]], "weights": [0.5, 0.6]}, "sum to 1"),
        ({"means": [[0, 0], [1, 1]], "weights": [1.2, -0.2]}, ">= 0"),
        ({"means": [[0, 0]], "weights": [1.0], "covariances": [[[1, 0], [0, -1]]]}, "not positive definite"),
        ({"means": [[0, 0]], "weights": [1.0], "covariances": [[[1, 0.5], [0, 1]]]}, "not symmetric"),
        ({"means": [[0, 0]], "weights": [1.0], "covariances": [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]]}, "to match"),
        ({"means": [[0, 0], [1, 1]], "weights": [1.0]}, "2 entries"),
        ({"means": [0, 1], "weights": [1.0]}, "K x d"),
        ({"means": [["a", 0]], "weights": [1.0]}, "numbers"),
        ({"weights": [1.0]}, "missing means"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_mixture_files_are_rejected(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=fragment):
        load_mixture(path)


def test_unreadable_mixture_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_mixture(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        load_mixture(tmp_path / "x.json")


def test_mahalanobis_hand_computed():
    mix = GaussianMixture(np.array([[0.0, 0.0]]), np.array([[[4.0, 0.0], [0.0, 1.0]]]), np.array([1.0]))
    d = mahalanobis_distances([[2.0, 0.0], [0.0, 2.0], [2.0, 1.0]], mix)
    np.testing.assert_allclose(d[:, 0], [1.0, 2.0, np.sqrt(2.0)])


def test_samples_at_the_means_capture_every_mode(mixture):
    samples = np.repeat(mixture.means, 5, axis=0)
    cov = mode_coverage(samples, mixture)
    assert cov.modes_captured == cov.modes_captured_min_share == 10
    assert cov.high_quality_fraction == 1.0
    np.testing.assert_array_equal(cov.counts, np.full(10, 5))
    uniform = np.full(10, 0.1)
    assert cov.reverse_kl == pytest.approx(np.sum(uniform * np.log(uniform / mixture.weights)))


def test_samples_from_one_component_are_one_mode(mixture):
    one = GaussianMixture(mixture.means[3:4], mixture.covariances[3:4], np.array([1.0]))
    x, _ = sample_mixture(one, 2000, seed=0)
    cov = mode_coverage(x, mixture)
    assert cov.modes_captured_min_share == 1 and cov.counts.argmax() == 3
    assert cov.high_quality_fraction > 0.95  # chi-square(3) mass within radius 3 is 0.97
    assert cov.reverse_kl == pytest.approx(np.log(1.0 / mixture.weights[3]), rel=0.02)


def test_samples_far_away_are_not_high_quality(mixture):
    cov = mode_coverage(np.full((100, 3), 1e3), mixture)
    assert cov.high_quality_fraction == 0.0 and cov.modes_captured == 0


def test_true_samples_score_like_the_chi_square_law(mixture):
    x, _ = sample_mixture(mixture, 20000, seed=1)
    cov = mode_coverage(x, mixture)
    assert cov.modes_captured == 10
    # P(chi2_3 <= 9) = 0.9707; overlapping components only move samples to a nearer mean
    assert cov.high_quality_fraction == pytest.approx(0.9707, abs=0.01)


def test_select_k_finds_separated_blobs():
    x, _ = sample_mixture(check_mixture([[0, 0], [30, 0], [0, 30], [30, 30]], np.repeat(np.eye(2)[None], 4, 0),
                                        [0.25] * 4), 400, seed=0)  # fmt: skip
    sel = select_k(x, range(2, 8), random_state=0)
    assert sel.best_k_silhouette == 4 and sel.elbow_k == 4
    assert list(sel.ks) == list(range(2, 8)) and np.all(np.diff(sel.inertia) <= 1e-6)


def test_elbow_point_hand_made():
    assert elbow_point([1, 2, 3, 4, 5], [100, 20, 15, 12, 10]) == 2
    assert elbow_point([2, 3], [5, 1]) == 2
