"""Seconds per epoch of lj-fluid's sorted-coordinate and density-grid VAEs with tf.data's
autotuning on (Keras' default) and off (what ``fit_model`` does: ``without_autotuning``).

Keras makes new iterators of a ``tf.data`` pipeline every epoch. Deleting one that was autotuned
can stall the fit for about a second before the epoch's first batch; this times each epoch, and
that wait (from the epoch's start to its first batch) on its own, for the run's default models
on a dataset's training split, each setting in a fresh process, and checks that both settings
end with the same losses to the bit (autotuning picks parallelism and buffer sizes, not batches).

    .venv/bin/keras-clust lj-fluid simulate --seed 100 --samples 6000 --output /tmp/lj_design.npz
    .venv/bin/python bench/bench_lj_epoch_stall.py --dataset /tmp/lj_design.npz [--coords-epochs 20] [--grid-epochs 4]
        [--views coords,grid] [--steps-per-execution 1] [--out bench/results/lj_epoch_stall.json]

Prints a table and writes ``bench/results/lj_epoch_stall.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def fit(view: str, autotune: bool, dataset: str, epochs: int, steps: int) -> dict:
    """Train ``view``'s VAE, built and fed as the run builds and feeds it, for ``epochs`` epochs,
    ``steps`` batches per call of its train and test functions; per-epoch timings. It is seeded
    from run seed 0 under the key ``view`` (the run's own key is ``<view>_vae``), so its weights
    are not the run's."""
    import keras

    from keras_clust.apps.lj_fluid import data as lj_data
    from keras_clust.apps.lj_fluid import pair, pipeline
    from keras_clust.apps.lj_fluid.config import Config
    from keras_clust.seeding import seed_model, set_seed
    from keras_clust.training import without_autotuning

    cfg = Config(dataset=dataset)
    set_seed(cfg.seed)
    sim, cfg = lj_data.acquire(cfg, progress=False)
    split = lj_data.split_data(sim, cfg)
    seed = seed_model(cfg.seed, view)
    if view == "coords":
        vae = pair.build(cfg, pair.pair_lattice(cfg, split.train.coords), seed)
        model = vae.vae
        train = pair.batches(vae, split.train.coords, cfg.batch_size, shuffle_seed=seed)
        val = pair.batches(vae, split.val.coords, cfg.batch_size)
    else:
        model = pipeline.build_view(view, cfg, seed).vae
        train = pipeline.view_inputs(view, split.train, cfg, shuffle=True)
        val = pipeline.view_inputs(view, split.val, cfg)
    if not autotune:
        train, val = without_autotuning(train), without_autotuning(val)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), steps_per_execution=steps)

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch, self.wait = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.wait.append(time.perf_counter() - self.start)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch.append(time.perf_counter() - self.start)

    clock = Clock()
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=[clock])
    return {
        "view": view,
        "autotune": autotune,
        "steps_per_execution": steps,
        "epoch_seconds": [round(t, 3) for t in clock.epoch],
        "wait_seconds": [round(t, 3) for t in clock.wait],
        "loss": history.history["loss"][-1],
        "val_loss": history.history["val_loss"][-1],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="an lj-fluid dataset (.npz), e.g. from lj-fluid simulate")
    p.add_argument("--coords-epochs", type=int, default=20)
    p.add_argument("--grid-epochs", type=int, default=4)
    p.add_argument("--views", default="coords,grid", help="comma-separated: coords, grid")
    p.add_argument("--steps-per-execution", type=int, default=1, help="batches per call (Keras' own default: 1)")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "lj_epoch_stall.json")
    p.add_argument("--one", nargs=2, metavar=("VIEW", "AUTOTUNE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    epochs = {"coords": args.coords_epochs, "grid": args.grid_epochs}
    if args.one:
        view, autotune = args.one[0], args.one[1] == "on"
        print(json.dumps(fit(view, autotune, args.dataset, epochs[view], args.steps_per_execution)))
        return
    epochs = {view: epochs[view] for view in args.views.split(",")}
    rows = []
    for view in epochs:
        for autotune in ("on", "off"):
            cmd = [sys.executable, __file__, "--dataset", args.dataset, "--one", view, autotune]
            cmd += ["--coords-epochs", str(args.coords_epochs), "--grid-epochs", str(args.grid_epochs)]
            cmd += ["--steps-per-execution", str(args.steps_per_execution)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| view | autotune | epochs after the first | their seconds | waits > 0.5 s | waited | last loss, val |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        later, waits = r["epoch_seconds"][1:], r["wait_seconds"][1:]
        r["after_first_seconds"] = round(sum(later), 2)
        r["long_waits"] = sum(w > 0.5 for w in waits)
        r["waited_seconds"] = round(sum(waits), 2)
        print(
            f"| {r['view']} | {'on' if r['autotune'] else 'off'} | {len(later)} | {r['after_first_seconds']:.1f} | "
            f"{r['long_waits']} | {r['waited_seconds']:.1f} | {r['loss']:.4f}, {r['val_loss']:.4f} |"
        )
    for view in epochs:
        on, off = (r for r in rows if r["view"] == view)
        same = on["loss"] == off["loss"] and on["val_loss"] == off["val_loss"]
        print(f"{view}: the same losses to the bit with and without autotuning: {same}")
    from keras_clust.files import atomic_write_text
    from keras_clust.provenance import library_versions, machine_info

    result = {
        "machine": machine_info(),
        "versions": library_versions(),
        "dataset": args.dataset,
        "steps_per_execution": args.steps_per_execution,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
