"""Figures of a hyper-parameter search, drawn with ``optuna.visualization.matplotlib``.

Either engine's :class:`~keras_clust.tuning.SearchResult` is turned into an Optuna
study first, so both engines get the same four figures.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def _save(ax_or_axes, path: Path, size: tuple[float, float] = (8, 5)) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    from keras_clust.viz._figure import save_figure

    ax = np.ravel(ax_or_axes)[0] if isinstance(ax_or_axes, np.ndarray) else ax_or_axes
    fig = ax.get_figure()
    fig.set_size_inches(*size)
    fig.subplots_adjust(left=0.1, bottom=0.2)  # room for Optuna's rotated axis names
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def mark_pruned(ax, result) -> None:
    """Mark where each pruned (x) and failed (o) trial stopped on an intermediate-values plot."""
    for state, marker, colour in (("pruned", "x", "tab:red"), ("failed", "o", "black")):
        pts = [
            (len(t.curve) - 1, t.curve[-1])
            for t in result.trials
            if t.state == state and t.curve and math.isfinite(t.curve[-1])
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, marker=marker, color=colour, s=60, zorder=5, label=f"{state} ({len(pts)})")
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab.startswith(("pruned", "failed"))]
    if keep:
        ax.legend(*zip(*keep, strict=True), loc="upper right", fontsize=8)
    elif ax.get_legend() is not None:
        ax.get_legend().remove()  # one entry per trial is unreadable beyond a few trials


def plot_search(result, study, folder: str | Path, prefix: str = "") -> dict[str, Path]:
    """Write the optimisation history, parallel coordinates, intermediate values (pruned
    trials marked) and parameter importances of a search.

    Args:
        result: The :class:`~keras_clust.tuning.SearchResult`.
        study: An Optuna study holding the same trials (the real one or
            :func:`~keras_clust.tuning.to_optuna_study`).
        folder: Where the PNG files go.
        prefix: File-name prefix (e.g. the engine).

    Returns:
        ``{figure name: path}`` of the figures that could be drawn (importances need
        two completed trials with different parameters).
    """
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    import optuna.visualization.matplotlib as ovm

    folder = Path(folder)
    out: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        figures = {
            "history": lambda: ovm.plot_optimization_history(study),
            "parallel": lambda: ovm.plot_parallel_coordinate(study),
            "intermediate": lambda: ovm.plot_intermediate_values(study),
            "importances": lambda: ovm.plot_param_importances(study),
        }
        for name, draw in figures.items():
            try:
                ax = draw()
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                log.info("search figure %s skipped: %s", name, exc)
                continue
            if name == "intermediate":
                ax.set_ylabel("validation loss")
                ax.set_xlabel("epoch (0 = first)")
                mark_pruned(ax, result)
            size = (11, 6) if name == "parallel" else (8, 5)
            out[name] = _save(ax, folder / f"{prefix}{name}.png", size)
    return out
