"""Seconds per epoch and peak memory of the lj-fluid density-grid Conv VAE.

Trains the run's default grid VAE (filters 8/16/32, kernel 3, latent 16, batch 64) on
8,000 configurations of 30 particles in a box of side 5, with the grids built from the
positions in the tf.data pipeline at cell side h (default L/32: 32^3 cells). Only the
positions (8000 x 30 x 3 floats, 2.9 MB) are held in memory; the grids of all 8,000
configurations would be 8000 x 32^3 x 4 bytes = 1.0 GB (h = 0.1 sigma, 50^3 cells: 4 GB).
The positions are uniform random, or the first configurations of a dataset (``--dataset``,
an ``.npz`` written by ``keras-clust lj-fluid simulate``/``run``).

    .venv/bin/python bench/bench_lj_grid_vae.py [--h 0.15625] [--epochs 3] [--dataset FILE.npz]

Prints a table and writes ``bench/results/lj_grid_vae.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configurations", type=int, default=8000)
    p.add_argument("--h", type=float, default=5.0 / 32)
    p.add_argument("--epochs", type=int, default=3, help="epochs timed after the first (which includes tracing)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dataset", type=Path, default=None, help="take the positions from this lj-fluid dataset")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results (default: bench/results/lj_grid_vae.json, lj_grid_vae_dataset.json with --dataset)",
    )
    args = p.parse_args()
    if args.out is None:
        name = "lj_grid_vae_dataset.json" if args.dataset else "lj_grid_vae.json"
        args.out = Path(__file__).with_name("results") / name

    import keras

    from keras_clust.lj.representations import grid_cells, grid_dataset
    from keras_clust.lj.vae import build_grid_vae
    from keras_clust.provenance import library_versions, machine_info

    box = 5.0
    if args.dataset is not None:
        from keras_clust.lj.dataset import load_lj_dataset

        sim = load_lj_dataset(args.dataset)
        box = float(sim.settings["box"])
        positions = sim.positions[np.random.default_rng(0).permutation(len(sim.positions))[: args.configurations]]
    else:
        positions = np.random.default_rng(0).random((args.configurations, 30, 3)).astype(np.float32) * box
    cells = grid_cells(box, args.h)
    keras.utils.set_random_seed(0)
    m = build_grid_vae(cells, 3, (8, 16, 32), 3, 16)
    m.vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = grid_dataset(positions, box, cells, args.batch_size, shuffle=True, seed=0)
    times = []
    for _ in range(args.epochs + 1):
        start = time.perf_counter()
        m.vae.fit(data, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "command": f"python bench/bench_lj_grid_vae.py --h {args.h:g} --epochs {args.epochs}"
        + (f" --dataset {args.dataset}" if args.dataset else ""),
        "positions": str(args.dataset) if args.dataset else "uniform random",
        "configurations": args.configurations,
        "cells": cells,
        "h": args.h,
        "batch_size": args.batch_size,
        "parameters": m.vae.count_params(),
        "first_epoch_seconds": round(times[0], 2),
        "seconds_per_epoch": round(float(np.median(times[1:])), 2),
        "epoch_seconds": [round(t, 2) for t in times],
        "peak_rss_mib": round(peak),
        "grids_if_stored_gib": round(args.configurations * cells**3 * 4 / 2**30, 2),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for key in (
        "positions",
        "configurations",
        "cells",
        "h",
        "parameters",
        "first_epoch_seconds",
        "seconds_per_epoch",
        "peak_rss_mib",
        "grids_if_stored_gib",
    ):
        print(f"| {key} | {result[key]} |")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
