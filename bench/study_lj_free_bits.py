"""Do free bits keep lj-fluid's VAEs from collapsing? (issue 24, item 1)

A study, not a timing. On a dataset written by ``keras-clust lj-fluid simulate`` it trains one
view's VAE as ``lj-fluid run`` does (``apps/lj_fluid/pipeline.py``: same builder, split, seed
derivation and epochs unless ``--epochs`` is given) once per ``--free-bits`` value, and scores the
test split: the true KL (nats) and active dimensions, the test -ELBO (``elbo_draws`` draws, the
true bound whatever the training loss), and gamma's linear R^2 and KMeans ACC from the codes
(fitted on the training split's codes), as the run's report does.

Each view's default (``--coords-free-bits``, ``--grid-free-bits``, ``--distance-free-bits``) is
chosen here on a design simulation (seed 100), never on the reported run's (seed 0), and gamma's
R^2 is a read-out of the result, not the criterion: a view keeps the plain ELBO (0) unless a floor
gives it a better test -ELBO, and then takes the floor with the best test -ELBO among those tried.

Usage:
    .venv/bin/keras-clust lj-fluid simulate --seed 100 --samples 4000 --output /tmp/lj_design.npz
    .venv/bin/python bench/study_lj_free_bits.py --dataset /tmp/lj_design.npz --view coords --free-bits 0,0.5,1

Every result is appended to ``--out`` (default ``bench/results/lj_free_bits.json``). With
``--grid-blocks`` it also compares the grid VAE's block designs (``--free-bits 0`` and ``--out
bench/results/lj_grid_blocks_quality.json`` for BENCHMARKS.md's table of pool and strided;
``bench/results/lj_grid_pool_deconv.json`` for pool-deconv, ``lj_grid_pool_shuffle.json`` for
pool-shuffle), and
with ``--grid-smoothing`` occupancy grids against smooth ones, with ``--grid-log-var-scale`` how fast
the smooth grid's sigma per cell learns, with ``--distance-likelihood`` the distance VAE with and
without the contacts' likelihood, with ``--grid-peak-power`` the grid VAE with powers of its
cells, with ``--coords-sort`` the sorted-coordinate VAE on coordinates sorted by x or by height
(rows written before height became the run's default, 2026-12-06, were sorted by x: add
``--coords-sort x`` to repeat them), with ``--coords-encoder`` its dense or DeepSets encoder (rows
before deepsets became the default had the dense one: add ``--coords-encoder dense``), with
``--coords-latent`` its latent size (``latent_dim`` in every row), with ``--distance-latent`` the
distance VAE's.
Every row also has the ROC-AUC of the test -ELBO for the test configurations with one pair at 0.5
sigma inserted (the run's second anomaly set; label-free: no gamma enters it), and how well the
codes read out each test configuration's own physics (``physics_r2``: the linear R^2, fitted on
the training split, of its mean height, height spread and LJ energy per particle, the physics
baseline's features; label-free too, since they are computed from the positions alone).
"""

from __future__ import annotations

import argparse
import resource
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402

from keras_clust.apps.lj_fluid.analysis import (  # noqa: E402
    active_dimensions,
    anomaly_roc,
    gamma_readout,
    kl_per_dimension,
    physics_features,
)
from keras_clust.apps.lj_fluid.config import COORDS_ENCODERS, COORDS_SORTS, DISTANCE_LIKELIHOODS, Config  # noqa: E402
from keras_clust.apps.lj_fluid.data import acquire, split_data  # noqa: E402
from keras_clust.apps.lj_fluid.pipeline import (  # noqa: E402
    codes,
    fit_options,
    posterior,
    train_view,
    trained_terms,
)
from keras_clust.apps.lj_fluid.steps import overlap_split  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.lj.representations import GRID_BLOCKS  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import model_seed, seed_model  # noqa: E402

#: Settings of the run a study row may override (each an option of the same name; None: the run's).
OVERRIDES = (
    "grid_blocks",
    "grid_smoothing",
    "grid_log_var_scale",
    "grid_sigma_floor",
    "distance_likelihood",
    "grid_peak_power",
    "coords_sort",
    "coords_encoder",
    "coords_latent",
    "distance_latent",
)


def physics_r2(train_codes: np.ndarray, train, test_codes: np.ndarray, test) -> list[float]:
    """Test R^2 of a linear read-out (fitted on the training split) of each of the physics
    baseline's features (mean height, height spread, LJ energy per particle) from the codes."""
    f_train = physics_features(train.positions, train.gamma)
    f_test = physics_features(test.positions, test.gamma)
    return [
        float(r2_score(f_test[:, j], LinearRegression().fit(train_codes, f_train[:, j]).predict(test_codes)))
        for j in range(f_train.shape[1])
    ]


def study(
    dataset: str,
    view: str,
    free_bits: float,
    seed: int,
    epochs: int | None,
    grid_h: float | None,
    **overrides,
) -> dict:
    """One row: ``view``'s VAE trained with ``free_bits`` and the settings in ``overrides`` (names
    of :data:`OVERRIDES`; a None value keeps the run's)."""
    cfg = replace(Config(dataset=dataset, seed=seed, grid_h=grid_h), **{f"{view}_free_bits": free_bits})
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if epochs is not None:
        cfg = replace(cfg, **{f"{view}_epochs": epochs})
    sim, cfg = acquire(cfg, progress=False)
    cfg.check()
    data = split_data(sim, cfg)
    t = train_view(view, data, cfg, lambda key: seed_model(seed, key))
    terms = trained_terms(t, data.test, cfg, model_seed(seed, "elbo"))
    bad = trained_terms(t, overlap_split(data.test, cfg), cfg, model_seed(seed, "elbo"))["neg_elbo"]
    overlap = anomaly_roc(terms["neg_elbo"], bad)
    z_mean, z_log_var = posterior(view, t.vae.encoder, data.test, cfg)
    train_codes = codes(view, t.vae, data.train, cfg)
    readout = gamma_readout(train_codes, data.train.gamma, z_mean, data.test.gamma, seed)
    physics = physics_r2(train_codes, data.train, z_mean, data.test)
    fit = fit_options(view, cfg)
    return {
        "dataset": dataset,
        "view": view,
        "free_bits": free_bits,
        "seed": seed,
        "epochs": t.fit.epochs_run,
        "grid_cells": cfg.grid_cells if view == "grid" else None,
        "grid_blocks": cfg.grid_blocks if view == "grid" else None,
        "grid_smoothing": cfg.grid_smoothing if view == "grid" else None,
        "grid_log_var_scale": cfg.grid_log_var_scale if view == "grid" else None,
        "grid_sigma_floor": cfg.grid_sigma_floor if view == "grid" else None,
        "distance_likelihood": cfg.distance_likelihood if view == "distance" else None,
        "grid_peak_power": cfg.grid_peak_power if view == "grid" else None,
        "coords_sort": cfg.coords_sort if view == "coords" else None,
        "coords_encoder": cfg.coords_encoder if view == "coords" else None,
        "patience": fit["patience"],
        "lr_plateau": fit.get("halve_lr_after", 0),
        "kept_epoch": t.fit.kept_epoch,
        "train_seconds": round(t.fit.seconds, 1),
        "test_neg_elbo": float(terms["neg_elbo"].mean()),
        "test_kl": float(terms["kl"].mean()),
        "kl_per_dim": kl_per_dimension(z_mean, z_log_var).round(3).tolist(),
        "active_dims": active_dimensions(z_mean),
        "latent_dim": int(z_mean.shape[1]),
        "gamma_r2": readout.r2,
        "gamma_kmeans_acc": readout.clustering["acc"],
        "overlap_auc": overlap.auc,
        "physics_r2": physics,
        "physics_r2_mean": float(np.mean(physics)),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "command": " ".join(sys.argv),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="an .npz written by 'keras-clust lj-fluid simulate'")
    p.add_argument("--view", choices=("coords", "grid", "distance"), required=True)
    p.add_argument("--free-bits", default="0,0.5,1", help="comma-separated nats per latent dimension")
    p.add_argument("--seed", type=int, default=0, help="the models' seed (not the simulation's)")
    p.add_argument("--epochs", type=int, default=None, help="default: the run's epochs of the view")
    p.add_argument("--grid-h", type=float, default=None, help="the grid's cell side (default: the run's)")
    p.add_argument("--grid-blocks", choices=GRID_BLOCKS, default=None, help="default: the run's")
    p.add_argument("--grid-smoothing", type=float, default=None, help="the grid's smoothing width (default: the run's)")
    p.add_argument(
        "--grid-log-var-scale", type=float, default=None, help="how fast the grid's sigma learns (default: the run's)"
    )
    p.add_argument("--grid-sigma-floor", type=float, default=None, help="the grid's sigma floor (default: the run's)")
    p.add_argument("--grid-peak-power", type=int, default=None, help="default: the run's")
    p.add_argument("--distance-likelihood", choices=DISTANCE_LIKELIHOODS, default=None, help="default: the run's")
    p.add_argument("--coords-sort", choices=COORDS_SORTS, default=None, help="default: the run's")
    p.add_argument("--coords-encoder", choices=COORDS_ENCODERS, default=None, help="default: the run's")
    p.add_argument(
        "--coords-latent", type=int, default=None, help="the coordinate VAE's latent size (default: the run's)"
    )
    p.add_argument(
        "--distance-latent", type=int, default=None, help="the distance VAE's latent size (default: the run's)"
    )
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_free_bits.json")
    a = p.parse_args()
    for fb in (float(v) for v in a.free_bits.split(",")):
        row = study(a.dataset, a.view, fb, a.seed, a.epochs, a.grid_h, **{name: getattr(a, name) for name in OVERRIDES})
        print({k: v for k, v in row.items() if k != "command"}, flush=True)
        append_json_row(a.out, row, {"machine": machine_info()})


if __name__ == "__main__":
    main()
