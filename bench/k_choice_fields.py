"""``--k auto``'s recipe on the vector fields: is the number of flow types found without labels?

Each field is divided by its norm (its strength is not its type), mapped by N2D's UMAP, and
:func:`keras_clust.cluster.k_selection.choose_k` picks k by the mixtures' silhouette; the
mixture with that k is then scored against the eleven types.

    .venv/bin/python bench/k_choice_fields.py [SEEDS...]   # default: generator seeds 1 2 3
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.mixture import GaussianMixture

from keras_clust.cluster.k_selection import choose_k, manifold_for_k
from keras_clust.cluster.metrics import cluster_accuracy
from keras_clust.fields.generator import generate_fields


def main(seeds: list[int]) -> None:
    print("| generator seed | fields | k chosen | ACC | seconds |")
    print("|---|---|---|---|---|")
    for seed in seeds:
        fs = generate_fields(100, size=20, seed=seed)
        x = fs.fields.reshape(len(fs.fields), -1).astype(np.float64)
        start = time.perf_counter()
        manifold = manifold_for_k(x / np.linalg.norm(x, axis=1, keepdims=True), random_state=0)
        choice = choose_k(manifold, (2, 20), "silhouette", random_state=0)
        labels = GaussianMixture(choice.k, random_state=0).fit_predict(manifold)
        acc = cluster_accuracy(fs.labels, labels)
        print(f"| {seed} | {len(x)} | {choice.k} | {acc:.3f} | {time.perf_counter() - start:.0f} |")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [1, 2, 3])
