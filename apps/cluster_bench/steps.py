"""The steps of a ``cluster-bench`` run: data, every method per seed, the seed summary, figures."""

from __future__ import annotations

import re

import numpy as np

from keras_clust.apps.cluster_bench.config import PUBLISHED, Config
from keras_clust.apps.cluster_bench.pipeline import MethodResult, bench_data, run_seed
from keras_clust.cluster import matched_confusion_matrix
from keras_clust.experiment import Run
from keras_clust.files import atomic_save_npz
from keras_clust.viz import plot_confusion_matrix, plot_k_choice
from keras_clust.viz.latent import latent_map, plot_latent_map

#: Points of the 2-D map of the best method's embedding (a seeded subsample, t-SNE).
MAP_POINTS = 3000


def file_key(method: str) -> str:
    """``kmeans (AE codes)`` -> ``kmeans_ae_codes``: a method's name in file names."""
    return re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")


def seed_summary(rows: list[dict]) -> list[dict]:
    """Mean, standard deviation, min and max of ACC and NMI per method over the seeds."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        acc = np.array([r["acc"] for r in rows if r["method"] == method])
        nmi = np.array([r["nmi"] for r in rows if r["method"] == method])
        out.append(
            {
                "method": method,
                "seeds": len(acc),
                "acc_mean": float(acc.mean()),
                "acc_std": float(acc.std()),
                "acc_min": float(acc.min()),
                "acc_max": float(acc.max()),
                "nmi_mean": float(nmi.mean()),
                "nmi_std": float(nmi.std()),
            }
        )
    return out


def _figures(cfg: Config, run: Run, results: list[MethodResult], y: np.ndarray, names) -> dict:
    first = [r for r in results if r.row["seed"] == cfg.seeds[0]]
    figures = {}
    choice = (run.metrics.get("k_choice") or {}).get(str(cfg.seeds[0]))
    if choice is not None:  # --k auto
        plot_k_choice(choice, run.figures / "k_choice.png", title=f"number of clusters, seed {cfg.seeds[0]}")
        figures["k_choice.png"] = f"The {choice['criterion']} of each k tried on seed {cfg.seeds[0]}'s codes"
    for r in first:
        key = file_key(r.row["method"])
        cm = matched_confusion_matrix(y, r.labels, labels=np.arange(len(names)))
        plot_confusion_matrix(
            cm,
            run.figures / f"confusion_{key}.png",
            names,
            title=f"{r.row['method']}: ACC {r.row['acc']:.3f} (seed {r.row['seed']})",
        )
        figures[f"confusion_{key}.png"] = f"Matched confusion matrix of {r.row['method']} (seed {r.row['seed']})"
    best = max(first, key=lambda r: r.row["acc"])
    key = file_key(best.row["method"])
    for colour, labels in (("class", y), ("cluster", best.labels)):
        lm = latent_map(
            best.embedding,
            labels,
            method="tsne" if best.embedding.shape[1] > 2 else "identity",
            seed=cfg.seed,
            max_points=MAP_POINTS,
        )
        how = f"{lm.method} of {len(lm.xy)} points" if lm.method != "identity" else f"{len(lm.xy)} points"
        plot_latent_map(
            lm,
            run.figures / f"map_{key}_{colour}.png",
            names if colour == "class" else None,
            title=f"{best.row['method']} final embedding, by {colour} ({how})",
        )
        what = "true class" if colour == "class" else "cluster"
        figures[f"map_{key}_{colour}.png"] = (
            f"Final embedding of the best method ({best.row['method']}, seed "
            f"{best.row['seed']}) in 2-D ({how}), coloured by {what}"
        )
    return figures


def steps(cfg: Config, run: Run) -> None:
    x, y, names, source = bench_data(cfg, cfg.data_dir)
    run.set_data(source)
    results = [r for seed in cfg.seeds for r in run_seed(cfg, run, x, y, seed)]
    rows = [r.row for r in results]
    atomic_save_npz(
        run.file("labels.npz"), {f"{file_key(r.row['method'])}_s{r.row['seed']}": r.labels for r in results}
    )
    figures = _figures(cfg, run, results, y, names)
    summary = seed_summary(rows)
    best = max(summary, key=lambda s: s["acc_mean"])
    run.metrics.update(
        {
            "dataset": cfg.dataset,
            "split": cfg.split,
            "rows_clustered": len(x),
            "rows": rows,
            "seed_summary": summary,
            "best": best["method"],
            "published": PUBLISHED.get(cfg.dataset, {}),
            "figures": figures,
        }
    )
