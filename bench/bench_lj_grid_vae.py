"""Seconds per epoch and peak memory of the lj-fluid density-grid Conv VAE.

Trains the run's default grid VAE (filters 8/16/32, kernel 3, latent 16, batch 64) on
8,000 configurations of 30 particles in a box of side 5, with the grids built from the
positions in the tf.data pipeline at cell side h (default L/32: 32^3 cells). Only the
positions (8000 x 30 x 3 floats, 2.9 MB) are held in memory; the grids of all 8,000
configurations would be 8000 x 32^3 x 4 bytes = 1.0 GB (h = 0.1 sigma, 50^3 cells: 4 GB).
The positions are uniform random, or the first configurations of a dataset (``--dataset``,
an ``.npz`` written by ``keras-clust lj-fluid simulate``/``run``).

    .venv/bin/python bench/bench_lj_grid_vae.py [--h 0.15625] [--epochs 3] [--dataset FILE.npz] [--blocks pool]

Prints a table and writes ``bench/results/lj_grid_vae.json``.

``--compare pool,strided`` times several block designs (``build_grid_vae``'s ``blocks``) against
each other instead. This machine's throughput swings by up to 2x within minutes
(``study_cpu_steady.py``), so the designs are interleaved: after one untimed warm-up fit each,
every round trains each design for ``--steps`` batches in turn, and the ratio of the designs is
taken within each round (median over rounds). Writes ``bench/results/lj_grid_blocks.json``.

    .venv/bin/python bench/bench_lj_grid_vae.py --compare pool,strided --rounds 6 --steps 25
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
    p.add_argument("--blocks", default="pool", help="the block design (build_grid_vae's blocks) to time alone")
    p.add_argument("--compare", default=None, help="comma-separated block designs to time interleaved")
    p.add_argument("--rounds", type=int, default=6, help="--compare: interleaved rounds")
    p.add_argument("--steps", type=int, default=25, help="--compare: batches per design and round")
    args = p.parse_args()
    if args.compare:
        compare(args)
        return
    if args.out is None:
        name = "lj_grid_vae_dataset.json" if args.dataset else "lj_grid_vae.json"
        args.out = Path(__file__).with_name("results") / name

    import keras

    from keras_clust.lj.representations import grid_cells, grid_dataset
    from keras_clust.lj.vae import build_grid_vae
    from keras_clust.provenance import library_versions, machine_info

    box, positions = _positions(args)
    cells = grid_cells(box, args.h)
    keras.utils.set_random_seed(0)
    m = build_grid_vae(cells, 3, (8, 16, 32), 3, 16, blocks=args.blocks)
    m.vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = grid_dataset(positions, box, cells, args.batch_size, shuffle=True, seed=0)
    times = []
    for _ in range(args.epochs + 1):
        start = time.perf_counter()
        m.vae.fit(data, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "command": f"python bench/bench_lj_grid_vae.py --h {args.h:g} --epochs {args.epochs} --blocks {args.blocks}"
        + (f" --dataset {args.dataset}" if args.dataset else ""),
        "positions": str(args.dataset) if args.dataset else "uniform random",
        "configurations": args.configurations,
        "cells": cells,
        "blocks": args.blocks,
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
        "blocks",
        "h",
        "parameters",
        "first_epoch_seconds",
        "seconds_per_epoch",
        "peak_rss_mib",
        "grids_if_stored_gib",
    ):
        print(f"| {key} | {result[key]} |")
    print(f"written: {args.out}")


def _positions(args) -> tuple[float, np.ndarray]:
    """The box side and ``--configurations`` positions: uniform random in a box of side 5, or a
    seeded random choice from ``--dataset``."""
    if args.dataset is None:
        return 5.0, np.random.default_rng(0).random((args.configurations, 30, 3)).astype(np.float32) * 5.0
    from keras_clust.lj.dataset import load_lj_dataset

    sim = load_lj_dataset(args.dataset)
    chosen = np.random.default_rng(0).permutation(len(sim.positions))[: args.configurations]
    return float(sim.settings["box"]), sim.positions[chosen]


def compare(args) -> None:
    """Interleaved rounds of ``--steps`` batches per block design (see the module's docstring)."""
    import keras

    from keras_clust.lj.representations import grid_cells, grid_dataset
    from keras_clust.lj.vae import build_grid_vae
    from keras_clust.provenance import library_versions, machine_info

    designs = [d.strip() for d in args.compare.split(",") if d.strip()]
    box, positions = _positions(args)
    cells = grid_cells(box, args.h)
    data = grid_dataset(positions, box, cells, args.batch_size, shuffle=True, seed=0, repeat=True)
    models = {}
    for design in designs:
        keras.utils.set_random_seed(0)
        m = build_grid_vae(cells, 3, (8, 16, 32), 3, 16, blocks=design)
        m.vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        m.vae.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # traces the step function
        models[design] = m.vae
    seconds = {d: [] for d in designs}
    for r in range(args.rounds):
        for design in designs if r % 2 == 0 else reversed(designs):
            start = time.perf_counter()
            models[design].fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
            seconds[design].append(time.perf_counter() - start)
        print(f"round {r + 1}: " + ", ".join(f"{d} {seconds[d][-1]:.1f} s" for d in designs), flush=True)
    batches_per_epoch = -(-args.configurations // args.batch_size)
    base = designs[0]
    rows = {}
    for d in designs:
        per_batch = np.asarray(seconds[d]) / args.steps
        ratio = np.asarray(seconds[base]) / np.asarray(seconds[d])
        rows[d] = {
            "parameters": models[d].count_params(),
            "seconds_per_epoch_median": round(float(np.median(per_batch)) * batches_per_epoch, 1),
            "seconds_per_epoch_range": [
                round(float(v) * batches_per_epoch, 1) for v in (per_batch.min(), per_batch.max())
            ],
            f"speedup_over_{base}_median": round(float(np.median(ratio)), 2),
            f"speedup_over_{base}_range": [round(float(ratio.min()), 2), round(float(ratio.max()), 2)],
            "round_seconds": [round(v, 2) for v in seconds[d]],
        }
    result = {
        "command": f"python bench/bench_lj_grid_vae.py --compare {args.compare} --rounds {args.rounds} "
        f"--steps {args.steps}" + (f" --dataset {args.dataset}" if args.dataset else ""),
        "positions": str(args.dataset) if args.dataset else "uniform random",
        "configurations": args.configurations,
        "cells": cells,
        "batch_size": args.batch_size,
        "steps_per_round": args.steps,
        "designs": rows,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    out = args.out or Path(__file__).with_name("results") / "lj_grid_blocks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| design | parameters | s per epoch of {args.configurations} (median, range) | speed-up over {base} |")
    print("|---|---|---|---|")
    for d, row in rows.items():
        lo, hi = row["seconds_per_epoch_range"]
        rlo, rhi = row[f"speedup_over_{base}_range"]
        print(
            f"| {d} | {row['parameters']} | {row['seconds_per_epoch_median']} ({lo}-{hi}) | "
            f"{row[f'speedup_over_{base}_median']}x ({rlo}-{rhi}) |"
        )
    print(f"written: {out}")


if __name__ == "__main__":
    main()
