"""How much of gamma does each lj-fluid view carry, before any VAE? (issue 24, item 3)

A study, no VAE. Item 3 asks every view's codes to read gamma out linearly at the physics
baseline's level (mean height, height spread, LJ energy). A distance matrix does not hold the
mean height: it is the configuration up to a rigid motion. So does it hold gamma at all? This
study reads gamma out of hand-made summaries of each configuration, and out of its whole
sorted pair-distance list, with a linear model and with boosted trees (a supervised ceiling, not
what a VAE's codes would give), on an 80/20 split of the configurations; KMeans ACC (3 clusters
on standardised features, Hungarian matching) beside the summaries.

    .venv/bin/python bench/study_lj_gamma_information.py --dataset /tmp/w/lj_design.npz /tmp/w/lj_design101.npz

(the design simulations: ``keras-clust lj-fluid simulate --seed 100 --samples 6000 --output ...``).
Results go to ``--out`` (default ``bench/results/lj_gamma_information.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.apps.lj_fluid.analysis import physics_features  # noqa: E402
from keras_clust.cluster import cluster_accuracy  # noqa: E402
from keras_clust.files import atomic_write_text  # noqa: E402
from keras_clust.lj.representations import pair_distances  # noqa: E402


def summaries(positions: np.ndarray, gamma: np.ndarray) -> dict[str, np.ndarray]:
    """Hand-made features, from the physics baseline down to what a distance matrix holds."""
    phys = physics_features(positions, gamma)  # mean z, sd z, LJ energy per particle
    n = positions.shape[1]
    dist = pair_distances(positions)
    upper = np.triu_indices(n, 1)
    pairs = dist[:, upper[0], upper[1]]
    rg = np.sqrt(np.sum(pairs**2, axis=1) / n**2)  # radius of gyration from the distances alone
    nearest = np.min(np.where(np.eye(n, dtype=bool), np.inf, dist), axis=2).mean(axis=1)
    return {
        "physics baseline: mean z, sd z, LJ": phys,
        "sd z, LJ (translation-invariant)": phys[:, 1:],
        "LJ, Rg (rigid-motion-invariant)": np.column_stack([phys[:, 2], rg]),
        "LJ, Rg, largest pair distance, mean nearest distance": np.column_stack(
            [phys[:, 2], rg, pairs.max(axis=1), nearest]
        ),
        "sorted pair distances (the distance matrix, unordered)": np.sort(pairs, axis=1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", nargs="+", required=True, help="simulations written by lj-fluid simulate")
    p.add_argument("--out", default="bench/results/lj_gamma_information.json")
    a = p.parse_args()
    rows = []
    for path in a.dataset:
        d = np.load(path)
        gamma = d["gamma"]
        _, classes = np.unique(gamma, return_inverse=True)
        order = np.random.default_rng(0).permutation(len(gamma))
        train, test = order[: int(0.8 * len(gamma))], order[int(0.8 * len(gamma)) :]
        for name, f in summaries(d["positions"], gamma).items():
            wide = f.shape[1] > 10
            linear = RidgeCV(alphas=np.logspace(-3, 3, 13)) if wide else LinearRegression()
            row = {"dataset": Path(path).name, "features": name, "columns": f.shape[1]}
            row["linear R2"] = float(r2_score(gamma[test], linear.fit(f[train], gamma[train]).predict(f[test])))
            trees = HistGradientBoostingRegressor(random_state=0).fit(f[train], gamma[train])
            row["boosted trees R2"] = float(r2_score(gamma[test], trees.predict(f[test])))
            if not wide:
                scaled = StandardScaler().fit(f[train]).transform(f[test])
                labels = KMeans(3, n_init=10, random_state=0).fit_predict(scaled)
                row["KMeans ACC"] = cluster_accuracy(classes[test], labels)
            rows.append(row)
            print(json.dumps(row))
    atomic_write_text(Path(a.out), json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
