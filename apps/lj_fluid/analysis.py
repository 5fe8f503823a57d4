"""The physics read back from the models: configurations recovered from distance matrices,
their energies, gamma in the latent space, and anomaly scores.

Every function returns numbers (dicts of floats and arrays); :mod:`keras_clust.apps.lj_fluid.figures`
draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score, roc_auc_score, roc_curve

from keras_clust.apps.lj_fluid.config import GAMMAS_K
from keras_clust.cluster import score_clustering
from keras_clust.cluster.k_selection import choose_k, manifold_for_k
from keras_clust.lj.geometry import classical_mds, kabsch_align, min_pair_distance, rmsd
from keras_clust.lj.monte_carlo import lj_energy
from keras_clust.lj.representations import matrices_to_distances


def summarise(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "sd": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
    }


# --- back to configurations --------------------------------------------------------------


@dataclass
class Recovered:
    """Configurations recovered from one kind of matrix by one method, aligned to the originals."""

    method: str
    source: str
    positions: np.ndarray  # (S, N, dim), aligned by Kabsch/Procrustes
    rmsd: np.ndarray  # (S,)
    rmsd_unaligned: np.ndarray | None = None


def recover_mds(distances: np.ndarray, original: np.ndarray, source: str) -> Recovered:
    """Classical MDS of ``distances`` (in sigma), then Kabsch/Procrustes onto ``original``."""
    dim = original.shape[-1]
    aligned = kabsch_align(classical_mds(distances, dim), original, reflection=True)
    return Recovered("classical MDS + Kabsch", source, aligned, rmsd(aligned, original))


def recover_network(net, matrices: np.ndarray, original: np.ndarray, box: float, source: str) -> Recovered:
    """The coordinate network on ``matrices`` (in [0, 1]); RMSD as predicted and after alignment."""
    predicted = np.asarray(net.predict(matrices, batch_size=256, verbose=0), np.float64) * box
    aligned = kabsch_align(predicted, original, reflection=True)
    return Recovered("coordinate network", source, aligned, rmsd(aligned, original), rmsd(predicted, original))


def reconstruction_table(
    original_matrices: np.ndarray, decoded_matrices: np.ndarray, original: np.ndarray, net, box: float
) -> list[Recovered]:
    """Both methods on the true matrices (their floor) and on the VAE's decoded ones."""
    dim = original.shape[-1]
    true_d = matrices_to_distances(original_matrices, box, dim)
    decoded_d = matrices_to_distances(decoded_matrices, box, dim)
    return [
        recover_mds(true_d, original, "true matrix"),
        recover_mds(decoded_d, original, "decoded matrix"),
        recover_network(net, original_matrices, original, box, "true matrix"),
        recover_network(net, decoded_matrices, original, box, "decoded matrix"),
    ]


def recovered_rows(rows: list[Recovered]) -> list[dict]:
    out = []
    for r in rows:
        s = summarise(r.rmsd)
        before = None if r.rmsd_unaligned is None else float(r.rmsd_unaligned.mean())
        out.append(
            {
                "method": r.method,
                "from": r.source,
                "RMSD mean": s["mean"],
                "RMSD median": s["median"],
                "RMSD max": s["max"],
                "RMSD before alignment": before,
            }
        )
    return out


def matrix_error(original_matrices: np.ndarray, decoded_matrices: np.ndarray, box: float, dim: int) -> dict:
    """Mean absolute error of the decoded distances, in sigma, over distinct pairs."""
    a = matrices_to_distances(original_matrices, box, dim)
    b = matrices_to_distances(decoded_matrices, box, dim)
    n = a.shape[-1]
    rows, cols = np.triu_indices(n, k=1)
    err = np.abs(a[:, rows, cols] - b[:, rows, cols])
    return {"mae_sigma": float(err.mean()), "rmse_sigma": float(np.sqrt(np.mean(err**2)))}


# --- energies -----------------------------------------------------------------------------


def energy_mapping(
    original: np.ndarray, recovered: dict[str, np.ndarray], gamma: np.ndarray, invalid_distance: float
) -> dict:
    """LJ energy (with each configuration's own gamma) of the originals and of every set of
    recovered configurations, and how many have a pair closer than ``invalid_distance``."""
    out = {}
    for name, pos in {"original": original, **recovered}.items():
        e = lj_energy(pos, gamma) / pos.shape[1]
        closest = min_pair_distance(pos)
        invalid = closest < invalid_distance
        median_valid = float(np.median(e[~invalid])) if (~invalid).any() else None  # None: every one invalid
        out[name] = {
            "energy_per_particle": e,
            "invalid": int(invalid.sum()),
            "n": int(len(pos)),
            "invalid_share": float(invalid.mean()),
            "median_energy_valid": median_valid,
            "min_pair_distance_median": float(np.median(closest)),
        }
    return out


# --- gamma in the latent space --------------------------------------------------------------


@dataclass
class GammaReadout:
    """What a view's codes say about gamma."""

    pca_test: np.ndarray  # (S_test, 2) PCA of the test codes (fitted on the training codes)
    explained: list[float]
    r2: float  # linear read-out of gamma on held-out (test) codes
    clustering: dict  # KMeans (k = number of gammas, or chosen) on test codes vs gamma labels
    labels: np.ndarray  # that KMeans' cluster of every test configuration, in their order
    k: int  # the clusters KMeans was asked for (the number of gammas, the one given, or the one chosen)


def gamma_readout(
    train_codes: np.ndarray,
    train_gamma: np.ndarray,
    test_codes: np.ndarray,
    test_gamma: np.ndarray,
    seed: int,
    n_init: int = 10,
    n_clusters: int | str | None = GAMMAS_K,
    k_range: tuple[int, int] = (2, 20),
    k_criterion: str = "silhouette",
) -> GammaReadout:
    """PCA map, linear read-out (R^2 on test) and KMeans scored against gamma (Hungarian ACC, NMI, ARI).

    KMeans finds ``n_clusters`` clusters: :data:`GAMMAS_K` the number of gammas, None chosen
    without labels on the test codes (:func:`~keras_clust.cluster.k_selection.choose_k` in
    ``k_range`` by ``k_criterion`` on their :func:`~keras_clust.cluster.k_selection.manifold_for_k`;
    ``clustering`` then holds ``k`` and ``k_choice``)."""
    choice, k = None, n_clusters
    if k == GAMMAS_K:
        k = len(np.unique(train_gamma))
    elif k is None:
        choice = choose_k(manifold_for_k(test_codes, random_state=seed), k_range, k_criterion, seed)
        k = choice.k
    pca = PCA(n_components=min(2, train_codes.shape[1]), random_state=seed).fit(train_codes)
    mapped = pca.transform(test_codes)
    if mapped.shape[1] == 1:
        mapped = np.column_stack([mapped, np.zeros(len(mapped))])
    reg = LinearRegression().fit(train_codes, train_gamma)
    r2 = float(r2_score(test_gamma, reg.predict(test_codes)))
    labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(test_codes)
    _, classes = np.unique(test_gamma, return_inverse=True)
    scores = score_clustering(classes, labels).to_dict()
    if choice is not None:
        scores.update(k=choice.k, k_choice=choice.to_dict())
    return GammaReadout(mapped, [float(v) for v in pca.explained_variance_ratio_], r2, scores, labels, int(k))


def physics_features(positions: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """A physicist's baseline summary of a configuration: mean height, its spread, and the
    LJ part of the energy per particle (gravity removed, so gamma is not read off the label)."""
    z = positions[..., -1]
    total = lj_energy(positions, gamma)
    lj_only = total - 4.0 * gamma * z.sum(axis=1)
    return np.column_stack([z.mean(axis=1), z.std(axis=1), lj_only / positions.shape[1]])


def active_dimensions(z_mean: np.ndarray, threshold: float = 0.01) -> int:
    """Active units (Burda et al., 2016): latent dimensions whose posterior mean varies across
    configurations, ``Var_x(E_q[z_j]) > threshold``; a collapsed dimension has ``z_mean`` ~ 0 for every x."""
    return int(np.sum(np.var(z_mean, axis=0) > threshold))


def kl_per_dimension(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    return np.mean(-0.5 * (1.0 + z_log_var - z_mean**2 - np.exp(z_log_var)), axis=0)


# --- anomalies -------------------------------------------------------------------------------


@dataclass
class Anomaly:
    """ROC of one score separating normal test configurations from anomalous ones."""

    auc: float
    fpr: np.ndarray
    tpr: np.ndarray
    n_normal: int
    n_anomalous: int


def anomaly_roc(normal_scores: np.ndarray, anomalous_scores: np.ndarray) -> Anomaly:
    """ROC-AUC of "higher score = more anomalous"."""
    y = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous_scores))]
    s = np.r_[normal_scores, anomalous_scores]
    fpr, tpr, _ = roc_curve(y, s)
    return Anomaly(float(roc_auc_score(y, s)), fpr, tpr, len(normal_scores), len(anomalous_scores))


def energy_surprise(train_energy: np.ndarray):
    """The physics baseline's score: ``-log`` of a Gaussian KDE of the training energies at a
    configuration's energy (energies far outside the training range score +inf-like values)."""
    from scipy.stats import gaussian_kde

    kde = gaussian_kde(np.asarray(train_energy, np.float64))

    def score(energy: np.ndarray) -> np.ndarray:
        return -kde.logpdf(np.clip(np.asarray(energy, np.float64), -1e300, 1e300))

    return score
