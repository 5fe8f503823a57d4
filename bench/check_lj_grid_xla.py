"""Does XLA help the lj-fluid grid VAE on this machine? (why ``--fast`` leaves it off)

The run's grid VAE (``build_view("grid", Config())``: today's defaults, 24^3 cells) is trained on
random grids, one batch of 64 and then four more, compiled as ``lj-fluid run`` compiles it and
again with ``jit_compile=True`` (XLA). Prints the seconds per batch of each; records nothing.

Usage:
    .venv/bin/python bench/check_lj_grid_xla.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_clust.apps.lj_fluid.config import Config  # noqa: E402
from keras_clust.apps.lj_fluid.pipeline import build_view  # noqa: E402

BATCH = 64


def main() -> None:
    cfg = Config()
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        vae = build_view("grid", cfg, 0).vae
        vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=jit)
        shape = tuple(vae.inputs[0].shape[1:])
        x = np.random.default_rng(0).random((5 * BATCH, *shape)).astype("float32")
        t0 = time.perf_counter()
        vae.fit(x[:BATCH], epochs=1, batch_size=BATCH, verbose=0)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        vae.fit(x[BATCH:], epochs=1, batch_size=BATCH, verbose=0)
        rest = time.perf_counter() - t0
        print(
            f"jit_compile={jit}, grids {shape}: first batch (tracing, compiling) {first:.1f} s, "
            f"next 4 batches {rest:.1f} s ({rest / 4:.2f} s per batch)",
            flush=True,
        )


if __name__ == "__main__":
    main()
