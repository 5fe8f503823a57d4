"""The steps of a ``cluster`` run: read the rows, embed and cluster them, score, draw, save."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_clust.apps.cluster_data.config import QUICK_ROWS, Config
from keras_clust.cluster import clustering_row, matched_confusion_matrix
from keras_clust.cluster.deep import cluster_embedding
from keras_clust.data.rows import load_labels, load_rows
from keras_clust.experiment import Export, Run
from keras_clust.markdown import markdown_figure
from keras_clust.training import fit_verbosity
from keras_clust.viz import plot_confusion_matrix, plot_k_choice
from keras_clust.viz.latent import latent_map, plot_latent_map

#: Points of the 2-D maps of the final embedding (a seeded subsample, t-SNE).
MAP_POINTS = 3000


def read_rows(cfg: Config) -> tuple[np.ndarray, float, np.ndarray | None, dict]:
    """The rows (an ``.npy`` stays memory-mapped), the scale to apply to them, the labels and the
    data record. Bytes (uint8, e.g. IDX images) are scaled to [0, 1] as the project's encoders
    expect, batch by batch where the method allows it."""
    x = load_rows(cfg.data_file)
    total = len(x)
    y = None if cfg.labels is None else load_labels(cfg.labels, total)
    limit = QUICK_ROWS if cfg.quick else cfg.max_rows
    if limit and total > limit:
        x = x[:limit]
        y = None if y is None else y[:limit]
    note = f"{cfg.data_file}: {len(x):,} rows of shape {tuple(x.shape[1:])}"
    note += f" (the first {len(x):,} of {total:,})" if len(x) < total else ""
    scale = 1.0
    if x.dtype == np.uint8:
        scale = 1.0 / 255.0
        note += ", bytes scaled to [0, 1]"
    data = {
        "dataset": Path(cfg.data_file).name,
        "origin": "file",
        "location": str(cfg.data_file),
        "full": len(x) == total,
        "note": note,
    }
    return x, scale, y, data


def _figures(cfg: Config, run: Run, embedding: np.ndarray, labels: np.ndarray, y: np.ndarray | None) -> dict:
    figures = {}
    method = "identity" if embedding.shape[1] == 2 else "tsne"
    for colour, values in (("cluster", labels), ("class", y)):
        if values is None:
            continue
        lm = latent_map(embedding, values, method=method, seed=cfg.seed, max_points=MAP_POINTS)
        plot_latent_map(
            lm,
            run.figures / f"map_by_{colour}.png",
            title=f"{cfg.method}: final embedding by {colour} ({lm.method}, {len(lm.xy)} points)",
        )
        figures[f"map_by_{colour}.png"] = f"The final embedding in 2-D ({lm.method}), coloured by {colour}"
    if y is not None:
        classes = np.unique(y)
        cm = matched_confusion_matrix(y, labels, labels=classes)
        plot_confusion_matrix(
            cm,
            run.figures / "confusion.png",
            [str(c) for c in classes],
            title=f"{cfg.method}: matched confusion matrix",
        )
        figures["confusion.png"] = "True class (rows) against the class each cluster is matched to (columns)"
    return figures


def steps(cfg: Config, run: Run) -> None:
    x, scale, y, data = read_rows(cfg)
    run.set_data(data)
    seed = run.seed_model(f"cluster_{cfg.method}")
    res = cluster_embedding(cfg.method, x, cfg.settings, cfg.encoder, cfg.decoder, seed, fit_verbosity(), scale)
    np.save(run.file("labels.npy"), res.labels)
    run.history = res.history
    if res.assignment is not None:
        run.save_model(res.assignment, "clusterer.keras")
    elif res.trained_here and res.encoder is not None:
        run.save_model(res.encoder, "encoder.keras")
    ids, sizes = np.unique(res.labels, return_counts=True)
    figures = _figures(cfg, run, res.embedding, res.labels, y)
    k_choice = res.info.get("k_choice")
    if k_choice is not None:
        plot_k_choice(k_choice, run.figures / "k_choice.png")
        figures = {"k_choice.png": f"The {k_choice['criterion']} of each k tried; the star is the k chosen", **figures}
    run.metrics.update(
        {
            "method": cfg.method,
            "k": len(ids),
            "k_choice": k_choice,
            "rows": len(x),
            "embedding_dim": int(res.embedding.shape[1]),
            "cluster_sizes": {int(i): int(n) for i, n in zip(ids, sizes, strict=True)},
            "stage_seconds": {k: round(v, 1) for k, v in res.stage_seconds.items()},
            "info": {k: v for k, v in res.info.items() if k not in ("initial_labels", "k_choice")},
            "scores": None if y is None else clustering_row(y, res.labels),
            "figures": figures,
        }
    )
    run.export_samples["images"] = np.asarray(x[:16], dtype=np.float32) * np.float32(scale)


def exports(cfg: Config) -> list[Export]:
    """DEC/IDEC serve ``images -> assignment, embedding``; an autoencoder trained here serves its
    encoder; a given encoder used unchanged (kmeans, n2d) is not exported again."""
    if cfg.method in ("dec", "idec"):
        return [Export(cfg.model_name, "clusterer.keras", "images", ("assignment", "embedding"))]
    if cfg.encoder is None:
        return [Export(cfg.model_name, "encoder.keras", "images", "embedding")]
    return []


def _k_text(s, metrics: dict) -> str:
    choice = metrics.get("k_choice")
    if choice is None:
        return f"{s.n_clusters} clusters"
    low, high = choice["ks"][0], choice["ks"][-1]
    how = f"chosen by the {choice['criterion']} among k = {low}-{high}"
    if choice["k"] == 1:
        return f"1 cluster ({how}: the best silhouette is below {choice['threshold']}, no substantial structure)"
    return f"{choice['k']} clusters ({how})"


def report(cfg: Config, metrics: dict) -> str:
    from keras_clust.markdown import markdown_table

    s = cfg.settings
    encoder = cfg.encoder or (
        f"the d-500-500-2000-{s.embedding_dim} autoencoder trained on the data ({s.pretrain_epochs} epochs)"
    )
    lines = [
        f"# cluster: {cfg.method} on {Path(cfg.data_file).name}",
        "",
        f"{metrics['rows']:,} rows, {_k_text(s, metrics)}, encoder: {encoder}. Labels of every row: "
        "`labels.npy` (row order of the file).",
        "",
        "## Clusters",
        "",
        markdown_table([{"cluster": k, "rows": v} for k, v in metrics["cluster_sizes"].items()]).rstrip(),
        "",
    ]
    if metrics.get("scores"):
        sc = metrics["scores"]
        lines += [
            "## Against the labels",
            "",
            markdown_table(
                [{"ACC": sc["acc"], "NMI (arith.)": sc["nmi"], "NMI (geom.)": sc["nmi_geometric"], "ARI": sc["ari"]}]
            ).rstrip(),
            "",
            "ACC after Hungarian matching of clusters to classes.",
            "",
        ]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in metrics["stage_seconds"].items())
    lines += [f"Time per stage: {stages}.", "", "## Figures", ""]
    lines += [markdown_figure(n, c) for n, c in metrics["figures"].items()]
    return "\n".join(lines) + "\n"


def summary(cfg: Config, metrics: dict) -> str:
    sizes = ", ".join(str(v) for v in metrics["cluster_sizes"].values())
    text = f"{cfg.method}: {metrics['rows']:,} rows in {len(metrics['cluster_sizes'])} clusters (sizes {sizes})\n"
    if metrics.get("scores"):
        sc = metrics["scores"]
        text += f"against the labels: ACC {sc['acc']:.4f}, NMI {sc['nmi']:.4f}, ARI {sc['ari']:.4f}\n"
    return text
