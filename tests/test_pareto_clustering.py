import math
import warnings

import numpy as np
import optuna
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples

from keras_clust.cluster import (
    ParetoClustering,
    centroid_spacing,
    cluster_accuracy,
    dbscan_eps_range,
    knee_point,
    knife_count,
    normalise_front,
    silhouette_knives,
    subsample_indices,
)
from keras_clust.errors import DataError, UsageError
from keras_clust.viz import plot_pareto_front, plot_silhouette_knives

# two tight squares far apart, and a wide cluster sitting right next to the second one
TIGHT_A = [[0, 0], [0.2, 0], [0, 0.2], [0.2, 0.2]]
TIGHT_B = [[20, 0], [20.2, 0], [20, 0.2], [20.2, 0.2]]
WIDE_C = [[22, 0], [26, 0], [24, 2], [24, -2]]
X3 = np.array(TIGHT_A + TIGHT_B + WIDE_C, dtype=np.float64)
Y3 = np.repeat([0, 1, 2], 4)
NOISE = np.array([[-50.0, 40.0], [60.0, -45.0], [10.0, 70.0]])


def brute_silhouettes(x, labels):
    """The textbook definition, one point at a time (singletons get 0)."""
    out = []
    for i in range(len(x)):
        d = np.linalg.norm(x - x[i], axis=1)
        own = (labels == labels[i]) & (np.arange(len(x)) != i)
        if not own.any():
            out.append(0.0)
            continue
        a = d[own].mean()
        b = min(d[labels == c].mean() for c in set(labels.tolist()) if c != labels[i])
        out.append((b - a) / max(a, b))
    return np.array(out)


def pentagon_blobs(n=500, std=0.8, seed=0):
    angles = np.arange(5) * 2 * np.pi / 5
    centers = 10 * np.c_[np.cos(angles), np.sin(angles)]
    x, y = make_blobs(n, centers=centers, cluster_std=std, random_state=seed)
    return x, y, centers


@pytest.fixture(scope="module")
def blobs_with_outliers():
    x, y = make_blobs(150, centers=[[0, 0], [8, 0], [4, 7]], cluster_std=0.6, random_state=0)
    outliers = np.array([[-15, -15], [20, -15], [-15, 20], [22, 22], [4, -18], [25, 4]], dtype=np.float64)
    return np.vstack([x, outliers]), y


@pytest.fixture(scope="module")
def five_blobs_fit():
    x, y, centers = pentagon_blobs()
    return x, y, centers, ParetoClustering(n_trials=30, random_state=0).fit(x)


# --- knives ---------------------------------------------------------------------------------


def test_knives_match_the_textbook_silhouette_and_the_wide_cluster_does_not_cut():
    stats = silhouette_knives(X3, Y3)
    expected = brute_silhouettes(X3, Y3)
    np.testing.assert_allclose(stats.silhouettes, expected, rtol=1e-6)
    assert stats.mean == pytest.approx(expected.mean())
    assert stats.mean == pytest.approx(0.6927, abs=1e-4)
    maxima = [expected[Y3 == c].max() for c in range(3)]
    assert maxima[2] == pytest.approx(0.4546, abs=1e-4) and maxima[2] < stats.mean  # C's best point is below the mean
    assert [r.cuts for r in stats.clusters] == [True, True, False]
    assert [r.size for r in stats.clusters] == [4, 4, 4]
    assert [r.max for r in stats.clusters] == pytest.approx(maxima)
    assert (stats.n_cutting, stats.n_clusters, stats.noise) == (2, 3, 0)
    assert stats.cutting_share == pytest.approx(2 / 3)
    assert knife_count(X3, Y3) == 2


def test_noise_is_excluded_from_silhouettes_and_counted():
    x = np.vstack([X3, NOISE])
    labels = np.r_[Y3, [-1, -1, -1]]
    stats = silhouette_knives(x, labels)
    clean = silhouette_knives(X3, Y3)
    np.testing.assert_allclose(stats.silhouettes, clean.silhouettes)
    np.testing.assert_array_equal(stats.indices, np.arange(12))
    assert stats.mean == pytest.approx(clean.mean)
    assert (stats.noise, stats.n_samples, stats.n_clusters, stats.n_cutting) == (3, 15, 3, 2)
    assert stats.coverage == pytest.approx(12 / 15)
    assert stats.noise_adjusted_mean == pytest.approx(clean.mean * 12 / 15)
    assert knife_count(x, labels) == 2


def test_undefined_silhouette_raises_a_value_error():
    one_cluster = np.r_[np.zeros(12, dtype=int), [-1, -1, -1]]
    with pytest.raises(DataError, match="at least 2 clusters"):
        silhouette_knives(np.vstack([X3, NOISE]), one_cluster)
    with pytest.raises(ValueError, match="its own cluster"):  # DataError is a ValueError
        silhouette_knives(X3, np.arange(12))
    with pytest.raises(DataError):
        knife_count(X3, np.full(12, -1))


def test_subsample_is_plain_seeded_and_drops_noise():
    x = np.vstack([X3, NOISE])
    labels = np.r_[Y3, [-1, -1, -1]]
    a = silhouette_knives(x, labels, sample_size=10, random_state=3)
    b = silhouette_knives(x, labels, sample_size=10, random_state=3)
    rows = subsample_indices(15, 10, 3)
    np.testing.assert_array_equal(a.indices, rows[rows < 12])
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.silhouettes, silhouette_samples(X3[a.indices], Y3[a.indices]))
    assert a.noise == 3  # counted over all rows, not only the sampled ones
    np.testing.assert_array_equal(subsample_indices(15, None), np.arange(15))
    np.testing.assert_array_equal(subsample_indices(15, 40, 0), np.arange(15))


# --- centroid spacing -----------------------------------------------------------------------


def _around(centers):
    offsets = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64)
    x = np.vstack([c + offsets for c in np.asarray(centers, dtype=np.float64)])
    return x, np.repeat(np.arange(len(centers)), 4)


def test_centroid_spacing_hand_computed():
    x, labels = _around([[0, 0], [3, 0], [0, 4]])  # centroid distances 3, 4, 5
    x, labels = np.vstack([x, NOISE]), np.r_[labels, [-1, -1, -1]]  # noise must not move anything
    assert centroid_spacing(x, labels) == pytest.approx(math.sqrt(2 / 3))
    assert centroid_spacing(x, labels, relative=True) == pytest.approx(math.sqrt(2 / 3) / 4)
    assert centroid_spacing(5 * x, labels, relative=True) == pytest.approx(math.sqrt(2 / 3) / 4)
    two = _around([[0, 0], [7, 1]])
    assert centroid_spacing(*two) == 0.0
    triangle = _around([[0, 0], [2, 0], [1, math.sqrt(3)]])  # evenly spaced
    assert centroid_spacing(*triangle) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError):
        centroid_spacing(x, np.r_[np.zeros(12, dtype=int), [-1, -1, -1]])


# --- front and choice helpers ---------------------------------------------------------------


def test_normalise_front_and_knee_point():
    values = [[0.9, 0.5], [0.7, 0.9], [0.3, 1.0]]
    np.testing.assert_allclose(normalise_front(values, [True, True]), [[1, 0], [2 / 3, 0.8], [0, 1]])
    # distances to (1, 1): 1, sqrt(1/9 + 0.04), 1
    assert knee_point(values, [True, True]) == 1
    # a minimised objective counts its smallest value as best; a constant one is 1 everywhere
    np.testing.assert_allclose(normalise_front([[2.0, 5.0], [4.0, 5.0]], [False, True]), [[1, 1], [0, 1]])
    # a tie goes to the larger tiebreak value, then to the first
    assert knee_point([[1, 0], [0, 1]], [True, True], tiebreak=[0.2, 0.8]) == 1
    assert knee_point([[1, 0], [0, 1]], [True, True]) == 0


def test_eps_range_from_neighbour_distances():
    x = np.arange(10, dtype=np.float64)[:, None]  # unit spacing on a line
    # 2nd neighbour (self first) is 1 away everywhere; the 3rd is 1 away inside, 2 at the ends
    assert dbscan_eps_range(x, (2, 3)) == pytest.approx((1.0, 2.0))
    with pytest.raises(DataError, match="coincide"):
        dbscan_eps_range(np.zeros((10, 2)), (3, 5))


# --- the estimator --------------------------------------------------------------------------


def test_five_blobs_knee_finds_them(five_blobs_fit):
    x, y, centers, est = five_blobs_fit
    assert est.n_clusters_ == 5 and est.noise_ == 0
    assert cluster_accuracy(y, est.labels_) == 1.0
    assert est.labels_.shape == (500,) and est.cluster_centers_.shape == (5, 2)
    nearest = np.linalg.norm(est.cluster_centers_[:, None] - centers[None], axis=2).min(axis=1)
    assert nearest.max() < 0.3
    assert est.knife_stats_.n_cutting == 5 and est.knife_stats_.n_samples == 500
    assert len(est.trials_) == 30 and est.study_.trials[-1].number == 29
    assert est.chosen_["chosen"] and est.chosen_["on_front"] and est.chosen_["rule"] == "knee"
    assert est.chosen_["n_clusters"] == 5 and est.chosen_["knives"] == 1.0
    front = {r["number"] for r in est.pareto_}
    assert front <= {r["number"] for r in est.trials_ if r["state"] == "complete"}
    assert all(r["on_front"] == (r["number"] in front) for r in est.trials_)
    assert est.chosen_["silhouette"] == pytest.approx(est.knife_stats_.noise_adjusted_mean)


def test_same_random_state_same_result(five_blobs_fit):
    x, _, _, first = five_blobs_fit
    second = ParetoClustering(n_trials=30, random_state=0)
    np.testing.assert_array_equal(second.fit_predict(x), first.labels_)
    assert [t["params"] for t in second.trials_] == [t["params"] for t in first.trials_]
    assert [t["objectives"] for t in second.trials_] == [t["objectives"] for t in first.trials_]
    assert second.chosen_["number"] == first.chosen_["number"]


def test_dbscan_marks_outliers_as_noise(blobs_with_outliers):
    x, y = blobs_with_outliers
    est = ParetoClustering(algorithms=("dbscan",), n_trials=20, random_state=0).fit(x)
    assert len(est.labels_) == len(x)  # noise rows are kept, as -1
    np.testing.assert_array_equal(est.labels_[-6:], -1)
    assert est.noise_ == int(np.sum(est.labels_ == -1)) == 6
    assert est.n_clusters_ == 3 and cluster_accuracy(y, est.labels_[:-6]) == 1.0
    assert est.chosen_["noise"] == 6 and est.chosen_["noise_share"] == pytest.approx(6 / 156)
    assert {t["algorithm"] for t in est.trials_} == {"dbscan"}
    assert est.eps_range_ == pytest.approx(dbscan_eps_range(x, (3, 30)))
    failed = [t for t in est.trials_ if t["state"] == "failed"]
    assert failed, "the eps range reaches all-noise and single-cluster solutions"
    assert all(t["failure"] and t["objectives"] == {} and not t["on_front"] for t in failed)


def test_all_trials_failing_is_a_data_error(blobs_with_outliers):
    x, _ = blobs_with_outliers
    est = ParetoClustering(algorithms=("dbscan",), n_trials=5, eps_range=(1e-4, 2e-4), random_state=0)
    with pytest.raises(DataError, match="none of the 5 trials"):
        est.fit(x)


def test_three_objectives_and_choice_rules(blobs, tmp_path):
    x, _ = blobs
    kw = dict(objectives=("silhouette", "knives", "spacing"), n_trials=15, k_range=(2, 6), random_state=1)
    est = ParetoClustering(**kw).fit(x)
    done = [t for t in est.trials_ if t["state"] == "complete"]
    assert all(list(t["objectives"]) == ["silhouette", "knives", "spacing"] for t in done)
    assert est.study_.directions[2] == optuna.study.StudyDirection.MINIMIZE
    assert plot_pareto_front(est, tmp_path / "front3.png").stat().st_size > 0

    best_sil = ParetoClustering(**{**kw, "choose": "silhouette"}).fit(x)
    assert best_sil.chosen_["silhouette"] == max(r["silhouette"] for r in best_sil.pareto_)
    best_knives = ParetoClustering(**{**kw, "choose": "knives"}).fit(x)
    assert best_knives.chosen_["knives"] == max(r["knives"] for r in best_knives.pareto_)
    number = done[-1]["number"]
    picked = ParetoClustering(**{**kw, "choose": number}).fit(x)
    assert picked.chosen_["number"] == number and picked.chosen_["params"] == done[-1]["params"]
    with pytest.raises(UsageError, match="completed trial"):
        ParetoClustering(**{**kw, "choose": 999}).fit(x)


def test_fit_is_quiet_and_restores_optuna_logging(blobs):
    x, _ = blobs
    before = optuna.logging.get_verbosity()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ParetoClustering(n_trials=10, k_range=(2, 5), random_state=0).fit(x)
    assert optuna.logging.get_verbosity() == before


def test_init_stores_arguments_and_clone_round_trips(blobs):
    algorithms, k_range = ("kmeans",), (2, 6)
    est = ParetoClustering(algorithms=algorithms, k_range=k_range, n_trials=5, choose=2, random_state=7)
    assert est.algorithms is algorithms and est.k_range is k_range and est.choose == 2
    params = est.get_params()
    assert clone(est).get_params() == params
    assert ParetoClustering().set_params(**params).get_params() == params
    est.fit(blobs[0])
    assert est.get_params() == params  # fit changes no parameter
    assert est.chosen_["number"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"objectives": ("silhouette",)},
        {"objectives": ("silhouette", "accuracy")},
        {"objectives": ("silhouette", "silhouette")},
        {"algorithms": "kmeans"},
        {"algorithms": ("kmeans", "hdbscan")},
        {"k_range": (1, 5)},
        {"k_range": (2, 90)},  # the fixture has 90 samples
        {"choose": "best"},
        {"choose": True},
        {"eps_range": (0.0, 1.0)},
        {"n_trials": 0},
        {"sample_size": 2},
    ],
)
def test_invalid_parameters_are_usage_errors(blobs, params):
    with pytest.raises(UsageError):
        ParetoClustering(**params).fit(blobs[0])


def test_invalid_data_is_a_data_error():
    with pytest.raises(DataError):
        ParetoClustering().fit(np.array([[0.0, np.nan]] * 20))


# --- figures --------------------------------------------------------------------------------


def _is_png(path):
    return path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_write_pngs(five_blobs_fit, tmp_path):
    _, _, _, est = five_blobs_fit
    assert _is_png(plot_pareto_front(est, tmp_path / "front.png", title="five blobs"))
    assert _is_png(plot_pareto_front(est.trials_, tmp_path / "from_trials.png"))
    assert _is_png(plot_silhouette_knives(est.knife_stats_, tmp_path / "knives.png", title="chosen"))
    stats = silhouette_knives(np.vstack([X3, NOISE]), np.r_[Y3, [-1, -1, -1]])  # one cluster does not cut
    assert _is_png(plot_silhouette_knives(stats, tmp_path / "sub" / "knives_noise.png"))


def test_every_objective_can_be_drawn_on_every_axis(blobs, tmp_path):
    """The Pareto figure labels each objective, whichever place it takes (the third is the colour bar)."""
    from keras_clust.cluster.pareto import OBJECTIVES

    x, _ = blobs
    names = list(OBJECTIVES)
    for third in names:
        objectives = (*[n for n in names if n != third][:2], third)
        est = ParetoClustering(objectives=objectives, n_trials=6, k_range=(2, 5), random_state=0).fit(x)
        assert _is_png(plot_pareto_front(est, tmp_path / f"front_{third}.png"))
