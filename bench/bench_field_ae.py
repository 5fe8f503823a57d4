"""Seconds per epoch and peak memory of the vector-fields autoencoder, against its own estimate.

Trains the ``report`` preset (the slides' winner: 5 layers, channels 11/10/12/10/3, pools
2/2/2/2/5, kernels 9/10/13/4/11) on 2,000 synthetic 80x80x3 fields (seeded generator, all
eleven flow types) with batch 32, and reports the median seconds per epoch after the first
(which includes tracing), the process's peak resident memory, the memory the fields
themselves take, and :func:`keras_clust.fields.autoencoder.estimate_cost`'s estimate for the
same configuration (what ``tune --max-memory`` prunes on).

    .venv/bin/python bench/bench_field_ae.py [--fields 2000] [--epochs 3] [--batch-size 32]

Prints a table and writes ``bench/results/field_ae.json``.
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
    p.add_argument("--fields", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3, help="epochs timed after the first (which includes tracing)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "field_ae.json")
    args = p.parse_args()

    import keras

    from keras_clust.fields.autoencoder import REPORT, build_field_ae, estimate_cost
    from keras_clust.fields.generator import FLOW_TYPES, generate_fields
    from keras_clust.provenance import library_versions, machine_info

    fs = generate_fields(-(-args.fields // len(FLOW_TYPES)), seed=0)
    x = fs.fields[: args.fields]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keras.utils.set_random_seed(0)
    ae = build_field_ae(REPORT, x.shape[1:], scale=float(np.sqrt(np.mean(np.square(x)))))
    times = []
    for _ in range(args.epochs + 1):
        start = time.perf_counter()
        ae.autoencoder.fit(x, x, batch_size=args.batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cost = estimate_cost(REPORT, x.shape[1:], args.batch_size)
    result = {
        "command": f"python bench/bench_field_ae.py --fields {args.fields} --epochs {args.epochs} "
        f"--batch-size {args.batch_size}",
        "fields": len(x),
        "shape": list(x.shape[1:]),
        "batch_size": args.batch_size,
        "parameters": ae.autoencoder.count_params(),
        "first_epoch_seconds": round(times[0], 2),
        "seconds_per_epoch": round(float(np.median(times[1:])), 2),
        "epoch_seconds": [round(t, 2) for t in times],
        "ms_per_field": round(1000 * float(np.median(times[1:])) / len(x), 2),
        "peak_rss_mib": round(peak),
        "rss_before_model_mib": round(before),
        "fields_mib": round(x.nbytes / 2**20, 1),
        "estimated_training_mib": round(cost.total_bytes / 2**20, 1),
        "estimated_train_gmacs_per_field": round(cost.train_gmacs_per_field, 4),
        "machine": machine_info(),
        "versions": library_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for key in (
        "fields",
        "batch_size",
        "parameters",
        "first_epoch_seconds",
        "seconds_per_epoch",
        "ms_per_field",
        "peak_rss_mib",
        "rss_before_model_mib",
        "fields_mib",
        "estimated_training_mib",
        "estimated_train_gmacs_per_field",
    ):
        print(f"| {key} | {result[key]} |")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
