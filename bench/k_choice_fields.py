"""``--k auto``'s recipe on the vector fields: is the number of flow types found without labels?

Each field is divided by its norm (its strength is not its type), mapped by N2D's UMAP, and
:func:`keras_clust.cluster.k_selection.choose_k` picks k by the mixtures' silhouette; the
mixture with that k is then scored against the eleven types.

    .venv/bin/python bench/k_choice_fields.py [--size 20] [--per-class 100] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.mixture import GaussianMixture

from keras_clust.cluster.k_selection import choose_k, manifold_for_k
from keras_clust.cluster.metrics import cluster_accuracy
from keras_clust.fields.generator import generate_fields


def main(seeds: list[int], size: int, per_class: int) -> None:
    print(f"{per_class} fields of {size}x{size} per type")
    print("| generator seed | fields | k chosen | ACC | seconds |")
    print("|---|---|---|---|---|")
    for seed in seeds:
        fs = generate_fields(per_class, size=size, seed=seed)
        x = fs.fields.reshape(len(fs.fields), -1).astype(np.float64)
        start = time.perf_counter()
        manifold = manifold_for_k(x / np.linalg.norm(x, axis=1, keepdims=True), random_state=0)
        choice = choose_k(manifold, (2, 20), "silhouette", random_state=0)
        labels = GaussianMixture(choice.k, random_state=0).fit_predict(manifold)
        acc = cluster_accuracy(fs.labels, labels)
        print(f"| {seed} | {len(x)} | {choice.k} | {acc:.3f} | {time.perf_counter() - start:.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20, help="side of the fields (default 20; the app's is 80)")
    parser.add_argument("--per-class", type=int, default=100, help="fields per type (default 100; the app's 300)")
    parser.add_argument("--seeds", default="1,2,3", help="generator seeds (default 1,2,3)")
    args = parser.parse_args()
    main([int(s) for s in args.seeds.split(",")], args.size, args.per_class)
