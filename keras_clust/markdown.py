"""Report text in Markdown: tables of rows, hyper-parameters on one line, figures with captions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, floatfmt: str = ".4f") -> str:
    """Markdown table of a list of dicts."""
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt) if math.isfinite(v) else str(v)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def format_params(params: Mapping) -> str:
    """Hyper-parameters on one line: ``k=15, eps=0.376`` (floats to 3 significant digits)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def markdown_figure(name: str, caption: str) -> str:
    """A report's figure ``figures/<name>`` with its caption in italics below."""
    return f"![{caption}](figures/{name})\n\n*{caption}*\n"


#: Column titles of clustering scores in report tables.
SCORE_COLUMNS = {"acc": "ACC", "nmi": "NMI", "ari": "ARI", "silhouette": "silhouette"}
#: :func:`score_cells` keys for a clustering scored with its silhouette too.
WITH_SILHOUETTE = ("acc", "nmi", "ari", "silhouette")


def score_cells(scores: Mapping, keys: Sequence[str] = ("acc", "nmi", "ari")) -> dict:
    """A table row's cells for clustering ``scores`` (a ``metrics.json`` entry): ``keys`` under
    their column titles (:data:`SCORE_COLUMNS`), in that order."""
    return {SCORE_COLUMNS.get(k, k): scores[k] for k in keys}


def k_cell(entry: Mapping) -> dict:
    """The ``k`` column of a clustering whose k was chosen (``--k auto``: the entry has ``k``); none otherwise."""
    return {"k": entry["k"]} if "k" in entry else {}


def k_text(settings) -> str:
    """``k = 10``, or ``k chosen without labels`` for a config with ``n_clusters`` None (``--k auto``)."""
    return "k chosen without labels" if settings.n_clusters is None else f"k = {settings.n_clusters}"


def k_chosen_text(settings, codes: str = "training codes") -> str:
    """How ``--k auto`` chose k, for a report (``settings``: ``k_range`` and ``k_criterion``;
    ``codes``: what it was chosen on)."""
    low, high = settings.k_range
    return (
        f"k is chosen for each set of codes: the {settings.k_criterion} of Gaussian mixtures with k = {low}..{high} "
        f"on N2D's UMAP manifold of the {codes} (column k; figures k_choice_*)."
    )
