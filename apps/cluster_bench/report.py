"""``report.md`` and the printed summary of a ``cluster-bench`` run."""

from __future__ import annotations

from keras_clust.apps.cluster_bench.config import Config
from keras_clust.markdown import markdown_figure, markdown_table


def _published(metrics: dict, method: str) -> tuple[str, str]:
    acc, nmi = (metrics.get("published") or {}).get(method, (None, None))
    return ("" if acc is None else f"{acc:.3f}"), ("" if nmi is None else f"{nmi:.3f}")


def results_table(metrics: dict) -> str:
    """Measured rows beside the published ACC/NMI of the same method on the same data."""
    rows = []
    for r in metrics["rows"]:
        pub_acc, pub_nmi = _published(metrics, r["method"])
        times = ", ".join(f"{k[:-2]} {r[k]:.0f}" for k in r if k.endswith("_s"))
        rows.append(
            {
                "method": r["method"],
                "seed": r["seed"],
                "ACC": r["acc"],
                "NMI (arith.)": r["nmi"],
                "NMI (geom.)": r["nmi_geometric"],
                "ARI": r["ari"],
                "published ACC": pub_acc,
                "published NMI": pub_nmi,
                "seconds per stage": times,
                "peak MiB": r["peak_mb"],
            }
        )
    return markdown_table(rows, floatfmt=".3f")


def _published_only(metrics: dict) -> str:
    measured = {r["method"] for r in metrics["rows"]}
    rows = [
        {"method": m, "ACC": a, "NMI": n} for m, (a, n) in (metrics.get("published") or {}).items() if m not in measured
    ]
    return markdown_table(rows, floatfmt=".3f") if rows else ""


def _k_text(s, metrics: dict) -> str:
    """The number of clusters: given, or (``--k auto``) chosen per seed on that seed's codes."""
    if not metrics.get("k_choice"):
        return f"{s.n_clusters} clusters"
    chosen = ", ".join(f"seed {seed}: {c['k']}" for seed, c in metrics["k_choice"].items())
    first = next(iter(metrics["k_choice"].values()))
    return (
        f"k chosen without labels on each seed's codes (N2D's UMAP map, mixtures' {first['criterion']} over "
        f"k = {first['ks'][0]}-{first['ks'][-1]}): {chosen}; every method used its seed's k"
    )


def report(cfg: Config, metrics: dict) -> str:
    from keras_clust.apps.cluster_bench.pipeline import settings

    s = settings(cfg)
    split = "all images (train + test), as the papers" if cfg.split == "all" else "the test split only"
    pretrain_peaks = ", ".join(f"{v:,}" for v in (metrics.get("pretrain_peak_mb") or {}).values())
    lines = [
        f"# cluster-bench: {cfg.dataset}",
        "",
        f"{metrics['rows_clustered']:,} rows of {split}, {_k_text(s, metrics)}; seeds {list(cfg.seeds)}"
        + (" (quick: a subsample and smoke budgets)" if cfg.quick else "")
        + ". "
        f"The deep methods share one `d-500-500-2000-{s.embedding_dim}` autoencoder per seed "
        f"({s.pretrain_epochs} epochs, Adam, MSE, batch {s.batch_size}); "
        f"KMeans everywhere with n_init {s.n_init}. DEC/IDEC: target update every {s.update_interval} batches, "
        f"stop below {s.tol:.1%} changed labels or after {s.max_iter} batches; IDEC gamma {s.gamma}; "
        f"N2D: UMAP n_neighbors {s.n_neighbors}, min_dist 0, "
        f"{s.n_clusters or 'as many'} components{'' if s.n_clusters else ' as clusters'}, full-covariance GMM.",
        "",
        "Peak MiB: the process's peak resident memory during that row's own stages (the shared pretraining "
        f"peaked at {pretrain_peaks} MiB). ACC after Hungarian matching of clusters to classes, on the rows "
        "that were clustered. NMI is printed with both normalisations in use: "
        "the arithmetic mean of the entropies (scikit-learn's default; N2D's code) and the geometric mean "
        "(DEC's code). Published numbers: DEC, IDEC and N2D papers (see `apps/cluster_bench/config.py`).",
        "",
        "## Results",
        "",
        results_table(metrics).rstrip("\n"),
        "",
    ]
    if len(cfg.seeds) > 1:
        lines += ["## Over the seeds", "", markdown_table(metrics["seed_summary"], floatfmt=".3f").rstrip("\n"), ""]
    others = _published_only(metrics)
    if others:
        lines += ["Published, not measured in this run:", "", others.rstrip("\n"), ""]
    lines += ["## Figures", ""] + [markdown_figure(n, c) for n, c in metrics["figures"].items()]
    return "\n".join(lines) + "\n"


def summary(cfg: Config, metrics: dict) -> str:
    return results_table(metrics)
