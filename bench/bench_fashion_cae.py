"""Benchmark: seconds per CAE training epoch on the 60k Fashion-MNIST images.

Usage:
    .venv/bin/python bench/bench_fashion_cae.py [--epochs 4] [--variants arrays,tfdata,xla]

The report's best CAE (8 channels, latent 14, Adam 1e-3, weight decay 1e-5), batch 256,
on all 60,000 training images. Each variant runs in its own process (op determinism
cannot be switched off again inside one) and reports the first epoch (graph tracing
included) and the median of the later epochs (steady state):

- ``arrays``: ``fit`` on NumPy arrays with op determinism on, which is what
  ``keras-clust fashion-cae run`` does (Keras feeds them through its own tf.data
  adapter);
- ``tfdata``: an explicit ``tf.data`` pipeline (cache, seeded shuffle, batch,
  ``(x, x)`` map, prefetch), determinism on;
- ``xla``: the same pipeline with ``jit_compile=True``; Keras disables XLA when op
  determinism is on, so this variant runs without it.

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = ("arrays", "tfdata", "xla")


def one(variant: str, epochs: int) -> dict:
    import keras
    import tensorflow as tf

    from apps.fashion_cae.config import REPORT_BEST
    from keras_clust.data import load_fashion_mnist
    from keras_clust.runs import set_seed
    from keras_clust.tuning import build_compiled_cae

    set_seed(0, deterministic=variant != "xla")
    x = load_fashion_mnist().x_train.reshape(-1, 28, 28, 1)
    model = build_compiled_cae(**REPORT_BEST, jit_compile=variant == "xla")
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    if variant == "arrays":
        model.fit(x, x, batch_size=256, epochs=epochs, shuffle=True, verbose=0, callbacks=[EpochTimer()])
    else:
        ds = (tf.data.Dataset.from_tensor_slices(x).cache().shuffle(len(x), seed=0).batch(256)
              .map(lambda b: (b, b)).prefetch(tf.data.AUTOTUNE))  # fmt: skip
        model.fit(ds, epochs=epochs, verbose=0, callbacks=[EpochTimer()])
    return {"variant": variant, "images": len(x), "first_epoch_s": round(times[0], 2),
            "steady_epoch_s": round(statistics.median(times[1:]), 2),
            "steady_all_s": [round(t, 2) for t in times[1:]],
            "xla": bool(model.jit_compile),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per variant, the first is reported apart")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one(args.variant, args.epochs)))
        return
    rows = []
    for variant in args.variants.split(","):
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--epochs", str(args.epochs)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr, flush=True)
    print("| variant | XLA | first epoch | steady epoch (median) | later epochs | peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {'yes' if r['xla'] else 'no'} | {r['first_epoch_s']} s | {r['steady_epoch_s']} s "
              f"| {', '.join(map(str, r['steady_all_s']))} | {r['peak_rss_mib']} MiB |")


if __name__ == "__main__":
    main()
