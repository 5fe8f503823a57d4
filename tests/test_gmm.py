"""Gaussian-mixture generator, mixture files, the mode-coverage metric, choosing k."""

import json

import numpy as np
import pytest
from scipy.stats import chi2, multivariate_normal

from keras_clust.cluster import (
    chi2_radius,
    elbow_point,
    mahalanobis_distances,
    min_share_count,
    mode_coverage,
    radius_share,
    select_k,
    weighted_need,
)
from keras_clust.data import GaussianMixture, check_mixture, load_mixture, random_mixture, sample_mixture, save_mixture
from keras_clust.data.gmm import mixture_log_density
from keras_clust.errors import DataError, UsageError


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
    x, _ = sample_mixture(
        check_mixture([[0, 0], [30, 0], [0, 30], [30, 30]], np.repeat(np.eye(2)[None], 4, 0), [0.25] * 4), 400, seed=0
    )
    sel = select_k(x, range(2, 8), random_state=0)
    assert sel.best_k_silhouette == 4 and sel.elbow_k == 4
    assert list(sel.ks) == list(range(2, 8)) and np.all(np.diff(sel.inertia) <= 1e-6)
    # read back from a run's metrics (JSON), it is the same selection: the figures need no refit
    back = type(sel).from_dict(json.loads(json.dumps(sel.to_dict())))
    assert back.best_k_silhouette == 4 and back.elbow_k == 4 and back.to_dict() == sel.to_dict()
    assert back.ks.dtype.kind == "i" and list(back.ks) == list(sel.ks)  # ks as ints, not floats equal to them
    np.testing.assert_array_equal(back.silhouette, sel.silhouette)
    np.testing.assert_array_equal(back.inertia, sel.inertia)


def test_elbow_point_hand_made():
    assert elbow_point([1, 2, 3, 4, 5], [100, 20, 15, 12, 10]) == 2
    assert elbow_point([2, 3], [5, 1]) == 2


def _far_apart(dim: int, k: int = 3) -> GaussianMixture:
    means = np.zeros((k, dim))
    means[:, 0] = 100.0 * np.arange(k)
    return GaussianMixture(means, np.repeat(np.eye(dim)[None], k, axis=0), np.full(k, 1.0 / k))


@pytest.mark.parametrize("dim", [3, 10])
def test_chi2_radius_share_equals_the_chi2_cdf_on_a_modes_own_samples(dim):
    mix = _far_apart(dim)
    one = GaussianMixture(mix.means[1:2], mix.covariances[1:2], np.array([1.0]))
    x, _ = sample_mixture(one, 20000, seed=dim)
    cov = mode_coverage(x, mix, threshold=3.0, chi2_quantile=0.99)
    # binomial sd at n = 20000 is <= 0.0036: 0.015 is four of them
    assert cov.high_quality_fraction_chi2 == pytest.approx(0.99, abs=0.015)
    assert cov.high_quality_fraction == pytest.approx(chi2.cdf(9.0, dim), abs=0.015)
    assert cov.threshold_share == pytest.approx(chi2.cdf(9.0, dim))
    assert cov.chi2_radius == pytest.approx(np.sqrt(chi2.ppf(0.99, dim)))
    if dim == 10:  # the 3-sd rule keeps less than half of a 10-D mode's own samples
        assert cov.threshold_share == pytest.approx(0.4679, abs=1e-4)
    assert radius_share(chi2_radius(dim, 0.9), dim) == pytest.approx(0.9)


def test_modes_captured_min_share_against_the_lenient_count():
    mix = _far_apart(1, 4)  # 1-D components at 0, 100, 200, 300
    samples = np.concatenate(
        [
            np.full(50, 0.5),  # mode 0: 50 high-quality samples
            np.full(3, 100.0),  # mode 1: 3, just the minimum at 5 % of 60
            np.full(2, 200.0),  # mode 2: 2, below it (lenient only)
            np.full(5, 306.0),  # nearest mode 3 but 6 sd away: not high quality
        ]
    )[:, None]
    cov = mode_coverage(samples, mix, threshold=3.0, min_share=0.05)
    assert min_share_count(60, 0.05) == 3
    np.testing.assert_array_equal(cov.counts, [50, 3, 2, 0])
    assert cov.modes_captured == 3 and cov.modes_captured_min_share == 2
    assert cov.high_quality_fraction == pytest.approx(55 / 60)
    # the chi2 radius in 1-D at q = 0.99 is 2.576 < 3: 306 is outside it too
    assert cov.modes_captured_min_share_chi2 == 2
    assert mode_coverage(samples, mix, min_share=0.0).modes_captured_min_share == 3  # 0 share: one sample


def test_weighted_mode_count_asks_each_mode_for_a_share_of_its_own_weight():
    """Hand-counted: 100 samples, weights 0.7, 0.2, 0.09, 0.01 (1-D, 3 sd holds 0.9973). Each
    mode needs a quarter of n * w * 0.9973 high-quality samples, and at least one."""
    mix = GaussianMixture(_far_apart(1, 4).means, _far_apart(1, 4).covariances, np.array([0.7, 0.2, 0.09, 0.01]))
    samples = np.concatenate(
        [
            np.full(60, 0.0),  # mode 0: 60, needs ceil(69.8 / 4) = 18
            np.full(4, 100.0),  # mode 1: 4, needs ceil(19.9 / 4) = 5 -> missed
            np.full(3, 200.0),  # mode 2: 3, needs ceil(8.98 / 4) = 3
            np.full(1, 300.0),  # mode 3: 1, needs max(1, ceil(0.25)) = 1
            np.full(32, 350.0),  # 50 sd from mode 3: not high quality
        ]
    )[:, None]
    cov = mode_coverage(samples, mix, threshold=3.0, min_share=0.05)
    np.testing.assert_allclose(cov.expected, 100 * mix.weights * 0.9973, rtol=1e-4)
    np.testing.assert_array_equal(weighted_need(cov.expected, 0.25), [18, 5, 3, 1])
    assert cov.modes_captured_weighted == 3 and cov.modes_captured_min_share == 1 and cov.modes_captured == 4
    whole = mode_coverage(samples, mix, weight_share=1.0)  # its whole share: only mode 3 (1 of 0.997)
    assert whole.modes_captured_weighted == 1 and whole.counts[3] >= np.ceil(whole.expected[3])
    np.testing.assert_array_equal(weighted_need(np.array([0.0, 0.5, 4.0]), 0.25), [1, 1, 1])  # at least one
    with pytest.raises(UsageError, match="weight_share"):
        mode_coverage(samples, mix, weight_share=0.0)


def test_a_mixtures_own_samples_capture_its_light_modes_only_on_the_weighted_count():
    """Ten 2-D modes, one of weight 0.1 %: 10,000 of the mixture's own samples give it about 10,
    short of 1 % of the samples, but past a quarter of its own share."""
    weights = np.array([0.001, *np.full(9, 0.999 / 9)])
    means = np.stack([20.0 * np.arange(10), np.zeros(10)], axis=1)
    mix = GaussianMixture(means, np.repeat(np.eye(2)[None], 10, axis=0), weights)
    x, _ = sample_mixture(mix, 10000, seed=0)
    cov = mode_coverage(x, mix)
    assert 3 <= cov.counts[0] <= 20  # about 10 * P(chi2_2 <= 9) = 9.9
    assert cov.modes_captured_weighted == 10 and cov.modes_captured_min_share == 9


def test_mixture_log_density_matches_scipy():
    cov = np.array([[[2.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 3.0]]])
    mix = check_mixture([[0.0, 0.0], [3.0, -1.0]], cov, [0.3, 0.7])
    x = np.random.default_rng(0).normal(size=(50, 2)) * 2
    want = np.log(
        0.3 * multivariate_normal(mix.means[0], cov[0]).pdf(x) + 0.7 * multivariate_normal(mix.means[1], cov[1]).pdf(x)
    )
    np.testing.assert_allclose(mixture_log_density(mix, x), want, rtol=1e-10)
