"""Why do the grid VAE's epochs take 45 s in one ``fit`` and 82 s in the benchmark?

``bench/bench_lj_grid_vae.py`` times ``fit(epochs=1)`` called once per epoch and reports ~82 s
per epoch at 32^3 cells on 8,000 configurations, while the full ``lj-fluid run`` trained the
same model at ~43 s per epoch in one ``fit(epochs=20)``. This study times the same model both
ways on the same data (uniform random positions, batch 64, grids built in the tf.data
pipeline): epochs inside one ``fit`` (a callback's clock), then separate ``fit(epochs=1)`` calls.
``--source array`` builds every grid once, before training, and fits on the array (the grids of
8,000 configurations at 32^3 cells are 1 GiB of float32): if the slowdown stays, the tf.data
pipeline is not its cause.

    .venv/bin/python bench/study_lj_grid_epochs.py [--epochs 3] [--calls 2] [--source array] [--blocks strided]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.lj.representations import GRID_BLOCKS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of the one fit")
    p.add_argument("--calls", type=int, default=2, help="separate fit(epochs=1) calls after it")
    p.add_argument("--source", choices=("pipeline", "array"), default="pipeline", help="where the grids come from")
    p.add_argument("--blocks", choices=GRID_BLOCKS, default="pool", help="build_grid_vae's block design")
    a = p.parse_args()
    import keras

    from keras_clust.lj.representations import density_grid, grid_cells, grid_dataset
    from keras_clust.lj.vae import build_grid_vae

    box = 5.0
    cells = grid_cells(box, box / 32)
    positions = np.random.default_rng(0).random((8000, 30, 3)).astype(np.float32) * box
    keras.utils.set_random_seed(0)
    m = build_grid_vae(cells, 3, (8, 16, 32), 3, 16, blocks=a.blocks)
    m.vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    if a.source == "array":
        grids = density_grid(positions, box, cells).astype(np.float32)
        fit_args = {"x": grids, "batch_size": 64, "shuffle": True}
    else:
        fit_args = {"x": grid_dataset(positions, box, cells, 64, shuffle=True, seed=0)}
    inside, clock = [], [time.perf_counter()]

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            inside.append(round(time.perf_counter() - clock[0], 1))
            clock[0] = time.perf_counter()

    clock[0] = time.perf_counter()
    m.vae.fit(**fit_args, epochs=a.epochs, verbose=0, callbacks=[Clock()])
    print(
        f"{a.source}, {a.blocks} blocks: one fit(epochs={a.epochs}), seconds per epoch: {inside}",
        flush=True,
    )
    calls = []
    for _ in range(a.calls):
        start = time.perf_counter()
        m.vae.fit(**fit_args, epochs=1, verbose=0)
        calls.append(round(time.perf_counter() - start, 1))
    print(f"then fit(epochs=1) x {a.calls}, seconds each: {calls}", flush=True)


if __name__ == "__main__":
    main()
