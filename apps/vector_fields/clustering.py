"""Cluster a run's codes by a multi-objective study, score against the flow types, draw it all.

Shared by ``run`` (on the codes it just computed) and ``cluster`` (on a finished run's codes,
with other study settings).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from keras_clust.apps.vector_fields.config import ClusterSettings
from keras_clust.markdown import format_params

log = logging.getLogger("keras_clust.apps.vector_fields")


def scores_with_noise(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """ACC, NMI and ARI against the true types. DBSCAN's noise points (-1) count as wrongly
    assigned in ACC (matched clusters cover the other points only) and as one more cluster in
    NMI and ARI."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from keras_clust.cluster.metrics import cluster_accuracy

    kept = y_pred >= 0
    acc = cluster_accuracy(y_true[kept], y_pred[kept]) * kept.mean() if kept.any() else 0.0
    return {
        "acc": float(acc),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "noise": int((~kept).sum()),
        "clusters": int(len(np.unique(y_pred[kept]))),
    }


def _kmeans(x: np.ndarray, k: int, n_init: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=n_init, random_state=seed).fit_predict(x)


def cluster_codes(
    codes: np.ndarray,
    fields: np.ndarray,
    labels: np.ndarray | None,
    class_names,
    settings: ClusterSettings,
    seed: int,
    figures: Path,
    uv: list[int] | None = (0, 1),
) -> tuple[dict, np.ndarray]:
    """Run the study on ``codes``, score the chosen clustering (and the KMeans baselines at the
    true number of types, on codes and on raw fields, same ``n_init``), draw the figures.

    Returns:
        The metrics and the chosen labels (-1 = DBSCAN noise).
    """
    from keras_clust.cluster.pareto import ParetoClustering
    from keras_clust.fields.figures import plot_field_gallery
    from keras_clust.viz.clustering import plot_pareto_front, plot_silhouette_knives
    from keras_clust.viz.latent3d import first_three, plot_latent_3d

    start = time.perf_counter()
    est = ParetoClustering(
        algorithms=settings.algorithms,
        objectives=settings.objectives,
        n_trials=settings.trials,
        k_range=(2, settings.k_max),
        choose=settings.choose,
        n_init=settings.n_init,
        random_state=seed,
    ).fit(codes)
    chosen = est.labels_
    study_seconds = time.perf_counter() - start
    log.info("clustering study: %d trials in %.0f s; chosen %s", len(est.trials_), study_seconds, est.chosen_)
    knives = est.knife_stats_
    metrics = {
        "study": {
            "trials": len(est.trials_),
            "pareto": est.pareto_,
            "seconds": round(study_seconds, 1),
            "settings": {
                "algorithms": list(settings.algorithms),
                "objectives": list(settings.objectives),
                "choose": settings.choose,
                "k_max": settings.k_max,
                "n_init": settings.n_init,
            },
        },
        "chosen": {
            **est.chosen_,
            "n_clusters": int(est.n_clusters_),
            "noise": int(est.noise_),
            "noise_share": float(est.noise_ / len(codes)),
            "cutting_clusters": int(knives.n_cutting),
        },
        "codes": int(len(codes)),
    }
    figs = [
        plot_pareto_front(est, figures / "pareto_front.png"),
        plot_silhouette_knives(knives, figures / "silhouette_knives.png", title=f"chosen: {_describe(est.chosen_)}"),
    ]
    points, axis = first_three(codes, seed)
    panels = [(f"clusters ({est.n_clusters_}, noise {est.noise_})", chosen, None)]
    if labels is not None:
        panels.append(("true flow type", labels, class_names))
    figs.append(plot_latent_3d(points, panels, figures / "latent_3d.png", axis=axis, seed=seed))
    figs.extend(_latent_2d(codes, panels, figures, seed))
    if uv is not None:
        names = [f"cluster {i}" for i in range(max(1, chosen.max() + 1))]
        figs.append(
            plot_field_gallery(
                fields[..., list(uv)],
                chosen,
                names,
                figures / "cluster_examples.png",
                per_class=4,
                title="example fields per cluster (-1: noise)",
            )
        )
    if labels is not None:
        k = len(np.unique(labels))  # the types present (a file may name more)
        rows = {"chosen": scores_with_noise(labels, chosen)}
        rows["kmeans_codes_true_k"] = scores_with_noise(labels, _kmeans(codes, k, settings.n_init, seed))
        flat = fields.reshape(len(fields), -1)
        t = time.perf_counter()
        rows["kmeans_raw_true_k"] = scores_with_noise(labels, _kmeans(flat, k, settings.n_init, seed))
        rows["kmeans_raw_true_k"]["seconds"] = round(time.perf_counter() - t, 1)
        metrics["scores"] = rows
        figs.append(_confusion(labels, chosen, class_names, figures / "confusion_chosen.png"))
    metrics["figures"] = sorted(Path(f).name for f in figs)
    return metrics, chosen


def _describe(chosen: dict) -> str:
    return f"{chosen['algorithm']} ({format_params(chosen['params'])})"


def _latent_2d(codes, panels, figures: Path, seed: int) -> list[Path]:
    from keras_clust.viz.latent import latent_map, plot_latent_map

    if codes.shape[1] < 2:  # a 1-D code is drawn against zero
        codes = np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))
    method = "identity" if codes.shape[1] == 2 else "pca"
    out = []
    for title, lab, names in panels:
        safe = np.where(lab < 0, lab.max() + 1, lab)  # noise drawn as one more colour
        lm = latent_map(codes, safe, method=method, seed=seed)
        tag = "clusters" if names is None else "types"
        out.append(plot_latent_map(lm, figures / f"latent_2d_{tag}.png", class_names=names, title=f"2-D map: {title}"))
    return out


def _confusion(labels, chosen, class_names, path: Path) -> Path:
    from keras_clust.cluster.metrics import matched_confusion_matrix
    from keras_clust.viz.confusion import plot_confusion_matrix

    kept = chosen >= 0
    cm = matched_confusion_matrix(labels[kept], chosen[kept], labels=np.arange(len(class_names)))
    return plot_confusion_matrix(
        cm, path, list(class_names), title="chosen clustering vs true flow type (noise left out)"
    )


def cluster_by_type(
    fields: np.ndarray, k: int | None, k_range: tuple[int, int], seed: int, n_neighbors: int = 20
) -> tuple[dict, np.ndarray]:
    """The run's default clustering, by flow type whatever the strength: each field divided by its
    norm, N2D's UMAP map of them, k chosen on the map by the mixtures' silhouette (``k`` None) or
    given, and a full-covariance Gaussian mixture with that k.

    Returns:
        The record (``k``, the criterion's curve when chosen, seconds) and the labels, in row order.
    """
    from sklearn.mixture import GaussianMixture

    from keras_clust.cluster.k_selection import choose_k, manifold_for_k
    from keras_clust.progress import stage

    start = time.perf_counter()
    flat = np.asarray(fields, dtype=np.float64).reshape(len(fields), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    unit = flat / np.maximum(norms, np.finfo(np.float64).tiny)  # an all-zero field stays zero
    with stage(f"UMAP map of {len(unit)} fields divided by their norms"):
        manifold = manifold_for_k(unit, n_neighbors, random_state=seed)
    record = {"input": "fields divided by their norms, N2D's UMAP map (10 dimensions)", "k_choice": None}
    if k is None:  # the chosen k's mixture is the clustering
        choice = choose_k(manifold, k_range, "silhouette", random_state=seed)
        record["k_choice"], k, labels = choice.to_dict(), choice.k, choice.labels
    elif k > 1:
        labels = GaussianMixture(k, covariance_type="full", random_state=seed).fit_predict(manifold).astype(np.int64)
    else:
        labels = np.zeros(len(unit), dtype=np.int64)
    record.update({"k": int(k), "seconds": round(time.perf_counter() - start, 1)})
    return record, labels
