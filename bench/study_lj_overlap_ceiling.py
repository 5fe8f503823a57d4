"""How well does a factorised likelihood that knows only gamma see an overlapping pair? (issue 24, item 3)

A study, not a timing, and no training. ``lj-fluid run`` scores the anomaly "one particle moved
to 0.5 sigma of another" by each VAE's -ELBO. Its grid and distance decoders are factorised: given
the code, every cell (every distance) has its own Gaussian. This study gives such a likelihood
the best mean it could have without seeing the configuration, the per-gamma average of the
training configurations' grids (distance matrices), and their standard deviation per cell and
gamma, and asks how well the resulting score separates the test configurations from the
same configurations with an overlapping pair (``apps/lj_fluid/data.py: insert_overlap``, as the
run makes them), by ROC-AUC:

* ``gauss_shared``: sum over cells of (x - mean)^2 (one sigma for every cell);
* ``gauss_cell``: sum of (x - mean)^2 / sd^2 (one sigma per cell and gamma; the run's VAEs learn
  one per cell);
* ``power_p``: sum of |x - mean|^p, a generalised-normal likelihood of shape p;
* ``max``: the largest cell (the smallest distance): not a sum over cells, so no factorised
  likelihood computes it.

Besides the run's grid and distance matrix, two other forms of the distances: contacts
``(sigma / r)^6`` (a close pair makes one feature large) and each configuration's distances sorted
(the closest pair is the same feature in every configuration). ``--grid-exponents 4,8`` also
scores the grid's cells raised to those powers (a close pair makes a cell's density about 1.5
times a lone particle's peak).

And how well each shape fits: the mean log-likelihood per cell of the training configurations
under a generalised normal of shape p around the per-gamma mean, with each cell's maximum-
likelihood scale (``fit_p``; p = 2 is the Gaussian). A shape that sees the pair but fits the
cells worse is a likelihood chosen for the test, not for the data.

A VAE's decoder sees the code, so it can do better than the per-gamma mean only as far as its
latent carries where the particles are. Configurations of the design simulation (seed 100),
never the reported run's:

    .venv/bin/python bench/study_lj_overlap_ceiling.py --dataset /tmp/lj_design.npz

Results are appended to ``--out`` (default ``bench/results/lj_overlap_ceiling.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.apps.lj_fluid.data import insert_overlap  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.lj.representations import order_by_origin, pair_distances, smoothed_density_grid  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402


def auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(anomalous))], np.r_[normal, anomalous]))


def scores(x: np.ndarray, gamma: np.ndarray, mean: dict, sd: dict, powers: tuple[int, ...]) -> dict[str, np.ndarray]:
    r = x - np.stack([mean[g] for g in gamma])
    s = np.stack([sd[g] for g in gamma])
    out = {"gauss_shared": np.sum(r**2, 1), "gauss_cell": np.sum((r / s) ** 2, 1)}
    out.update({f"power_{p}": np.sum(np.abs(r) ** p, 1) for p in powers})
    return out


def shape_fit(residuals: np.ndarray, p: float) -> float:
    """Mean log-likelihood per feature of a generalised normal of shape ``p`` with each
    feature's maximum-likelihood scale."""
    from scipy.special import gammaln

    scale = (p * np.mean(np.abs(residuals) ** p, 0)) ** (1 / p) + 1e-12
    ll = np.log(p) - np.log(2 * scale) - gammaln(1 / p) - np.abs(residuals) ** p / scale**p
    return float(ll.mean())


def ceiling(features, train, test, anomalous, gamma_train, gamma_test, powers, largest: bool) -> dict:
    """AUCs of each score for one representation ``features(positions) -> (S, cells)``."""
    t, x, o = features(train), features(test), features(anomalous)
    mean = {g: t[gamma_train == g].mean(0) for g in np.unique(gamma_train)}
    sd = {g: t[gamma_train == g].std(0) + 1e-6 for g in np.unique(gamma_train)}
    normal, bad = scores(x, gamma_test, mean, sd, powers), scores(o, gamma_test, mean, sd, powers)
    row = {name: auc(normal[name], bad[name]) for name in normal}
    row["max" if largest else "min"] = auc(x.max(1), o.max(1)) if largest else auc(-x.min(1), -o.min(1))
    residuals = t - np.stack([mean[g] for g in gamma_train])
    row.update({f"fit_{p}": shape_fit(residuals, p) for p in (1, 2, *powers)})
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="an .npz written by 'keras-clust lj-fluid simulate'")
    p.add_argument("--box", type=float, default=None, help="box side (default: the dataset's)")
    p.add_argument("--cells", type=int, default=24)
    p.add_argument(
        "--widths", default="0.25,0.35,0.45", help="comma-separated smoothing widths in sigma (empty: no grid rows)"
    )
    p.add_argument("--grid-exponents", default="", help="comma-separated k: also score each grid's cells raised to k")
    p.add_argument("--test", type=int, default=1000, help="test configurations (and as many anomalous ones)")
    p.add_argument("--overlap", type=float, default=0.5, help="the inserted pair's distance in sigma")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_overlap_ceiling.json")
    a = p.parse_args(argv)
    data = np.load(a.dataset)
    positions, gamma = data["positions"], data["gamma"]
    box = a.box if a.box is not None else float(json.loads(str(data["settings_json"]))["box"])
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(positions))
    test_idx, train_idx = order[: a.test], order[a.test :]
    test, train = positions[test_idx], positions[train_idx]
    anomalous = insert_overlap(test, box, a.overlap, a.seed + 1)
    gt, gs = gamma[train_idx], gamma[test_idx]
    powers = (4, 8, 16)
    rows = []
    for width in (float(w) for w in a.widths.split(",") if w.strip()):

        def grid(pos, width=width):
            return smoothed_density_grid(pos, box, a.cells, width).reshape(len(pos), -1).astype(np.float64)

        rows.append(
            {
                "view": "grid",
                "cells": a.cells,
                "smoothing": width,
                **ceiling(grid, train, test, anomalous, gt, gs, powers, True),
            }
        )
        for k in (int(v) for v in a.grid_exponents.split(",") if v.strip()):
            rows.append(
                {
                    "view": f"grid^{k}",
                    "cells": a.cells,
                    "smoothing": width,
                    **ceiling(lambda x, k=k, g=grid: g(x) ** k, train, test, anomalous, gt, gs, powers, True),
                }
            )

    def distances(pos):
        d = pair_distances(order_by_origin(pos))
        iu = np.triu_indices(pos.shape[1], 1)
        return d[:, iu[0], iu[1]]

    rows.append({"view": "distance", **ceiling(distances, train, test, anomalous, gt, gs, powers, False)})
    # two other ways to give a factorised likelihood the distances: as contacts (sigma / r)^6, the
    # attractive term of the pair energy, which a close pair makes large; and sorted per
    # configuration, so that the closest pair of every configuration is the same feature
    rows.append(
        {
            "view": "contacts (1/r)^6",
            **ceiling(lambda x: distances(x) ** -6.0, train, test, anomalous, gt, gs, powers, True),
        }
    )
    rows.append(
        {
            "view": "sorted distances",
            **ceiling(lambda x: np.sort(distances(x), 1), train, test, anomalous, gt, gs, powers, False),
        }
    )
    for row in rows:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    header = {
        "study": "ROC-AUC of factorised scores with the per-gamma mean for an inserted pair",
        "machine": machine_info(),
    }
    append_json_row(
        a.out,
        {"dataset": a.dataset, "test": a.test, "overlap": a.overlap, "rows": rows, "command": " ".join(sys.argv)},
        header,
    )


if __name__ == "__main__":
    main()
