"""``--k auto``: the label-free choice of the number of clusters, on data whose k is known, and
``keras-clust cluster --k auto`` on a user's rows (labels in the input's row order)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score

from helpers import assert_one_line_error, cli_in_process
from keras_clust.cluster.k_selection import MIN_STRUCTURE, choose_k, manifold_for_k


@pytest.mark.parametrize("criterion", ["silhouette", "bic"])
def test_blobs_of_known_k(criterion):
    x, _ = make_blobs(900, n_features=5, centers=6, cluster_std=1.0, random_state=1)
    choice = choose_k(x, (2, 12), criterion)
    assert choice.k == 6
    scores = np.asarray(choice.scores)
    at = choice.ks.index(6)
    assert scores[at] == (scores.max() if criterion == "silhouette" else scores.min())
    assert choice.ks[0] == (1 if criterion == "bic" else 2) and choice.ks[-1] == 12


@pytest.mark.parametrize("criterion", ["silhouette", "bic"])
def test_a_single_blob_stays_one_cluster(criterion):
    x = np.random.default_rng(0).normal(size=(800, 6))
    choice = choose_k(x, (2, 10), criterion)
    assert choice.k == 1
    if criterion == "silhouette":  # every split of one Gaussian scores below the structure threshold
        assert max(choice.scores) < MIN_STRUCTURE


def test_digits_have_ten_clusters_on_their_umap_manifold():
    x, _ = load_digits(return_X_y=True)
    manifold = manifold_for_k(x / 16.0, n_neighbors=20, random_state=0)
    assert manifold.shape == (len(x), 10)
    choice = choose_k(manifold, (2, 15), "silhouette", random_state=0)
    assert choice.k == 10
    # BIC on the same manifold keeps adding components: the reason it is not the default
    assert choose_k(manifold, (2, 15), "bic", random_state=0).k > 12


def test_bad_ranges_are_one_line_errors():
    from keras_clust.errors import UsageError

    with pytest.raises(UsageError, match="criterion"):
        choose_k(np.zeros((10, 2)), (2, 4), "gap")
    with pytest.raises(UsageError, match="rows"):
        choose_k(np.random.default_rng(0).normal(size=(5, 2)), (6, 9))


def _blobs(tmp_path, shuffle=None):
    x, y = make_blobs(600, n_features=16, centers=4, cluster_std=1.0, random_state=3)
    if shuffle is not None:
        x, y = x[shuffle], y[shuffle]
    name = "rows" if shuffle is None else "shuffled"
    np.save(tmp_path / f"{name}.npy", x.astype(np.float32))
    np.save(tmp_path / f"{name}_y.npy", y)
    return name, y


def _cluster(tmp_path, name, *extra):
    res = cli_in_process(
        "cluster",
        "--data",
        f"{name}.npy",
        "--labels",
        f"{name}_y.npy",
        "--method",
        "kmeans",
        "--k",
        "auto",
        "--k-range",
        "2-8",
        "--pretrain-epochs",
        "8",
        "--no-export",
        "--out",
        f"runs_{name}",
        *extra,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    (run,) = (tmp_path / f"runs_{name}" / "cluster").iterdir()
    return run, json.loads((run / "metrics.json").read_text())


def test_cluster_k_auto_on_a_users_rows_keeps_their_order(tmp_path):
    name, y = _blobs(tmp_path)
    run, metrics = _cluster(tmp_path, name)
    assert metrics["k"] == 4 and metrics["k_choice"]["k"] == 4
    assert metrics["k_choice"]["ks"] == list(range(2, 9)) and len(metrics["k_choice"]["scores"]) == 7
    labels = np.load(run / "labels.npy")
    assert labels.shape == (600,) and adjusted_rand_score(y, labels) == 1.0
    assert metrics["scores"]["acc"] == 1.0
    assert (run / "figures" / "k_choice.png").stat().st_size > 0
    report = (run / "report.md").read_text()
    assert "4 clusters (chosen by the silhouette among k = 2-8)" in report and "k_choice.png" in report

    perm = np.random.default_rng(0).permutation(600)
    shuffled, y_shuffled = _blobs(tmp_path, perm)
    run_s, metrics_s = _cluster(tmp_path, shuffled)
    labels_s = np.load(run_s / "labels.npy")
    assert metrics_s["k"] == 4
    # the labels follow the file's rows: the shuffled run's labels are the first run's, permuted
    assert adjusted_rand_score(y_shuffled, labels_s) == 1.0
    assert adjusted_rand_score(labels[perm], labels_s) == 1.0


def test_k_auto_options_are_checked(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20, 3), np.float32))
    assert_one_line_error(cli_in_process("cluster", "--data", "x.npy", "--k", "1", cwd=tmp_path), 2, "auto")
    assert_one_line_error(cli_in_process("cluster", "--data", "x.npy", "--k-range", "5-3", cwd=tmp_path), 2, "LOW")
    assert_one_line_error(
        cli_in_process("cluster", "--data", "x.npy", "--k", "auto", "--max-rows", "2", cwd=tmp_path), 2, "--max-rows"
    )


def test_cluster_bench_k_auto_gives_every_method_its_seeds_k(tmp_path):
    res = cli_in_process(
        "cluster-bench",
        "--dataset",
        "digits",
        "--quick",
        "--method",
        "kmeans,n2d",
        "--k",
        "auto",
        "--k-range",
        "4-12",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "cluster-bench").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    choice = metrics["k_choice"]["0"]
    assert choice["ks"] == list(range(4, 13)) and choice["k"] == choice["ks"][int(np.argmax(choice["scores"]))]
    assert [r["method"] for r in metrics["rows"]] == ["kmeans (pixels)", "kmeans (AE codes)", "n2d"]
    labels = np.load(run / "labels.npz")
    for row in metrics["rows"]:
        assert row["k"] == choice["k"]
        key = {"kmeans (pixels)": "kmeans_pixels", "kmeans (AE codes)": "kmeans_ae_codes"}.get(row["method"], "n2d")
        assert len(np.unique(labels[f"{key}_s0"])) == choice["k"]
    assert (run / "figures" / "k_choice.png").is_file()
    assert f"seed 0: {choice['k']}" in (run / "report.md").read_text()


def test_evaluate_kmeans_chooses_k_on_the_training_codes():
    """``n_clusters=None``: k comes from the training codes alone and KMeans uses it; a given k
    records no choice."""
    from keras_clust.cluster import evaluate_kmeans

    x, y = make_blobs(700, n_features=4, centers=5, cluster_std=0.6, random_state=3)
    ev = evaluate_kmeans(x[:500], y[:500], x[500:], y[500:], n_clusters=None, random_state=0, k_range=(2, 9))
    assert ev.k_choice.k == 5 and ev.k_choice.ks == tuple(range(2, 10))
    assert ev.test.acc == 1.0 and ev.test.n_clusters == 5
    out = ev.to_dict()
    assert out["k"] == 5 and out["k_choice"]["k"] == 5 and len(out["k_choice"]["scores"]) == 8
    given = evaluate_kmeans(x[:500], y[:500], x[500:], y[500:], n_clusters=3, random_state=0)
    assert given.k_choice is None and "k" not in given.to_dict() and given.test.n_clusters == 3


def test_gamma_readout_k_auto_and_the_number_of_gammas():
    """lj-fluid's gamma read-out: k defaults to the number of gammas; ``--k auto`` finds the three
    separated groups of the test codes itself."""
    from keras_clust.apps.lj_fluid.analysis import gamma_readout
    from keras_clust.apps.lj_fluid.config import GAMMAS_K

    codes, groups = make_blobs(600, n_features=3, centers=3, cluster_std=0.4, random_state=2)
    gamma = np.array([1.0, 2.0, 4.0])[groups]
    default = gamma_readout(codes[:300], gamma[:300], codes[300:], gamma[300:], seed=0, n_clusters=GAMMAS_K)
    assert "k_choice" not in default.clustering and "k" not in default.clustering
    assert default.clustering["acc"] == 1.0 and default.clustering["n_clusters"] == 3 and default.k == 3
    given = gamma_readout(codes[:300], gamma[:300], codes[300:], gamma[300:], seed=0, n_clusters=5)
    assert given.k == 5 and "k" not in given.clustering  # --k 5: the k --cluster's method is given too
    auto = gamma_readout(codes[:300], gamma[:300], codes[300:], gamma[300:], seed=0, n_clusters=None, k_range=(2, 8))
    assert auto.clustering["k_choice"]["k"] == 3 and auto.clustering["k"] == 3 and auto.clustering["acc"] == 1.0
    assert auto.k == 3
    assert auto.clustering["k_choice"]["ks"] == list(range(2, 9))
