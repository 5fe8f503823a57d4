"""Figures of a clustering choice: the Pareto front of the study and the silhouette knife plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from keras_clust.markdown import format_params
from keras_clust.viz._figure import new_figure, save_figure

_AXIS = {
    "silhouette": "silhouette, noise as 0 (max)",
    "knives": "share of cutting clusters (max)",
    "knife_count": "cutting clusters (max)",
    "spacing": "centroid spacing std/mean (min)",
}


def _describe(record: dict) -> str:
    return f"{record['algorithm']} {format_params(record['params'])}"


def plot_pareto_front(estimator_or_trials, path: str | Path, title: str = "") -> Path:
    """All completed trials in grey, the Pareto front highlighted, the chosen trial starred.

    Two objectives give one scatter; with three, the first two are the axes and the third
    colours the points.

    Args:
        estimator_or_trials: A fitted ``ParetoClustering``, or its ``trials_`` list (dicts
            with ``state``, ``objectives``, ``on_front`` and ``chosen``).
        path: PNG to write.
        title: Figure title.
    """
    trials = getattr(estimator_or_trials, "trials_", estimator_or_trials)
    done = [t for t in trials if t["state"] == "complete"]
    if not done:
        raise ValueError("no completed trial to plot")
    names = list(done[0]["objectives"])
    values = np.array([[t["objectives"][n] for n in names] for t in done])
    front = np.array([t["on_front"] for t in done])
    chosen = np.array([t["chosen"] for t in done])
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(values[~front, 0], values[~front, 1], s=18, color="0.7", label="trials")
    if len(names) == 3:
        sc = ax.scatter(
            values[front, 0],
            values[front, 1],
            c=values[front, 2],
            cmap="viridis",
            s=40,
            edgecolors="black",
            label="Pareto front",
        )
        fig.colorbar(sc, ax=ax, label=_AXIS[names[2]])
    else:
        order = np.argsort(values[front, 0])
        ax.plot(values[front, 0][order], values[front, 1][order], "o-", color="tab:blue", ms=6, label="Pareto front")
    if chosen.any():
        (i,) = np.flatnonzero(chosen)[:1]
        ax.scatter(
            values[i, 0], values[i, 1], marker="*", s=260, color="tab:red", edgecolors="black", zorder=5, label="chosen"
        )
        right = values[i, 0] > values[:, 0].mean()  # write towards the middle so the text stays inside
        ax.annotate(
            _describe(done[i]),
            (values[i, 0], values[i, 1]),
            xytext=(-10 if right else 10, -16),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
        )
    ax.set(xlabel=_AXIS.get(names[0], names[0]), ylabel=_AXIS.get(names[1], names[1]))
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_silhouette_knives(stats, path: str | Path, title: str = "") -> Path:
    """The knife plot: per cluster its sorted silhouettes as a filled horizontal band.

    Clusters are stacked bottom to top in label order; a dashed red line marks the mean
    silhouette. Clusters that cut the mean are coloured, the others grey and marked
    "no cut"; the title gives the mean, the number of cutting clusters and the noise count.

    Args:
        stats: A :class:`~keras_clust.cluster.silhouette.KnifeStats`.
        path: PNG to write.
        title: Text put before the summary in the title.
    """
    rows = [r for r in stats.clusters if r.size > 0]
    gap = max(2, int(0.02 * len(stats.silhouettes)))
    fig = new_figure(6.4, max(3.5, 0.35 * len(rows) + 2.5))
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["tab10"]
    y0 = gap
    for i, row in enumerate(rows):
        s = np.sort(stats.silhouettes[stats.labels == row.label])
        ys = np.arange(y0, y0 + len(s))
        colour = cmap(i % 10) if row.cuts else "0.75"
        ax.fill_betweenx(ys, 0, s, facecolor=colour, edgecolor=colour, alpha=0.85)
        mark = "" if row.cuts else " (no cut)"
        ax.text(
            -0.02,
            y0 + len(s) / 2,
            f"{row.label}{mark}",
            ha="right",
            va="center",
            fontsize=8,
            color="black" if row.cuts else "tab:red",
        )
        y0 += len(s) + gap
    ax.axvline(stats.mean, color="tab:red", ls="--", label=f"mean {stats.mean:.3f}")
    lo = min(-0.1, float(stats.silhouettes.min()) - 0.05)
    ax.set(xlim=(lo - 0.15, 1.0), ylim=(0, y0), xlabel="silhouette", ylabel="cluster", yticks=[])
    ax.legend(fontsize=8, loc="lower right")
    summary = f"{stats.n_cutting}/{stats.n_clusters} clusters cut, noise {stats.noise}"
    ax.set_title(f"{title}: {summary}" if title else summary, fontsize=10)
    return save_figure(fig, path)


def plot_k_choice(choice: dict, path: str | Path, title: str = "") -> Path:
    """The criterion of a k choice (``KChoice.to_dict()``) against k, the chosen k marked; a
    silhouette curve also shows the threshold below which the data counts as one cluster."""
    ks, scores = np.asarray(choice["ks"]), np.asarray(choice["scores"], dtype=float)
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(ks, scores, "o-", color="tab:blue")
    if choice["k"] in choice["ks"]:
        at = choice["ks"].index(choice["k"])
        ax.plot([ks[at]], [scores[at]], "*", color="tab:red", markersize=16, label=f"chosen k = {choice['k']}")
    else:
        ax.plot([], [], "*", color="tab:red", markersize=16, label=f"chosen k = {choice['k']} (no structure)")
    if choice.get("threshold") is not None:
        ax.axhline(choice["threshold"], color="grey", linestyle="--", linewidth=1, label="one cluster below")
    best = "max" if choice["criterion"] == "silhouette" else "min"
    ax.set_xlabel("k")
    ax.set_ylabel(f"{choice['criterion']} ({best})")
    ax.set_xticks(ks)
    ax.legend(loc="best")
    ax.set_title(title or f"number of clusters by {choice['criterion']}")
    return save_figure(fig, path)
