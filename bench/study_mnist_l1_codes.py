"""Why did mnist-l1's latent-16 codes cluster worse than raw pixels on full MNIST?

A study, not a timing: it trains the report's latent-16 dense autoencoder on full MNIST
(the same split as ``keras-clust mnist-l1 run``) under a few variants and scores KMeans
(k = 10, fitted on the training codes, scored on the test codes, the same ``n_init`` for
every row) on the codes under every scaling, beside KMeans on raw pixels.

Variants (each one change from the app's old defaults):
  - scaling of the codes before KMeans: standard (old default), none, l2;
  - loss: L1 (the report's), MSE;
  - code size: 16 vs 10 (one code dimension per class).

Usage:
    .venv/bin/python bench/study_mnist_l1_codes.py --epochs 50 --out bench/results/mnist_l1_codes.json

Needs full MNIST (``keras-clust data fetch mnist``). Every result is appended to the JSON
file as soon as it exists, so a long study can be read while it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from keras_clust.cluster import evaluate_kmeans  # noqa: E402
from keras_clust.data import load_dataset, train_val_split  # noqa: E402
from keras_clust.models import build_dense_autoencoder  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import seed_model, set_seed  # noqa: E402
from keras_clust.training import fit_model  # noqa: E402

REPORT_HIDDEN_16 = (256, 128, 64)


class _Trajectory(keras.callbacks.Callback):
    """Every ``every`` epochs: KMeans on the validation codes (fitted and scored on them)."""

    def __init__(self, encoder, x, y, every, n_init, seed, report):
        super().__init__()
        self.encoder, self.x, self.y, self.every = encoder, x, y, every
        self.n_init, self.seed, self.report = n_init, seed, report

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        codes = self.encoder.predict(self.x, batch_size=2048, verbose=0)
        row = {"epoch": epoch + 1, "val_loss": round(float(logs["val_loss"]), 5)}
        for scaling in ("standard", "none"):
            ev = evaluate_kmeans(
                codes, self.y, codes, self.y, scaling=scaling, n_init=self.n_init, random_state=self.seed
            )
            row[f"val_acc_{scaling}"] = round(ev.test.acc, 4)
        self.report(row)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-init", type=int, default=10)
    p.add_argument("--variants", default="l1-z16,mse-z16,l1-z10")
    p.add_argument(
        "--every",
        type=int,
        default=0,
        help="also score KMeans on the validation codes every this many epochs "
        "(a trajectory of clustering quality during training; 0: off)",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results/mnist_l1_codes.json"))
    args = p.parse_args(argv)
    set_seed(args.seed)
    ds = load_dataset("mnist")
    if not ds.source.full:
        print("needs full MNIST: run 'keras-clust data fetch mnist'", file=sys.stderr)
        return 1
    xtr, ytr, xval, yval = train_val_split(ds.x_train.reshape(-1, 784), ds.y_train, 0.1, args.seed)
    xte, yte = ds.x_test.reshape(-1, 784), ds.y_test
    results = {
        "command": " ".join(sys.argv),
        "machine": machine_info(),
        "data": ds.source.note,
        "epochs": args.epochs,
        "n_init": args.n_init,
        "rows": [],
    }

    def save(row):
        results["rows"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(row), flush=True)

    t = time.perf_counter()
    ev = evaluate_kmeans(xtr, ytr, xte, yte, scaling="none", n_init=args.n_init, random_state=args.seed)
    save(
        {
            "variant": "raw pixels",
            "scaling": "none",
            **{k: round(v, 4) for k, v in ev.test.to_dict().items() if k in ("acc", "nmi", "ari")},
            "seconds": round(time.perf_counter() - t, 1),
        }
    )

    for variant in args.variants.split(","):
        loss, z = variant.split("-")
        latent = int(z[1:])
        hidden = REPORT_HIDDEN_16 if latent == 16 else (256, 128, 64)
        seed_model(args.seed, f"z{latent}")
        ae = build_dense_autoencoder(784, latent, hidden_units=hidden, name=f"study_{variant}".replace("-", "_"))
        ae.autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"l1": "mae", "mse": "mse"}[loss])
        callbacks = []
        if args.every:
            callbacks.append(
                _Trajectory(
                    ae.encoder,
                    xval,
                    yval,
                    args.every,
                    args.n_init,
                    args.seed,
                    lambda r, v=variant: save({"variant": v, "trajectory": True, **r}),
                )
            )
        fit = fit_model(
            ae.autoencoder, xtr, xtr, (xval, xval), epochs=args.epochs, batch_size=256, verbose=0, callbacks=callbacks
        )
        test_l1 = float(np.mean(np.abs(ae.autoencoder.predict(xte, batch_size=1024, verbose=0) - xte)))
        ctr = ae.encoder.predict(xtr, batch_size=1024, verbose=0)
        cte = ae.encoder.predict(xte, batch_size=1024, verbose=0)
        std = ctr.std(axis=0)
        for scaling in ("standard", "none", "l2"):
            t = time.perf_counter()
            ev = evaluate_kmeans(ctr, ytr, cte, yte, scaling=scaling, n_init=args.n_init, random_state=args.seed)
            save(
                {
                    "variant": variant,
                    "scaling": scaling,
                    "test_l1": round(test_l1, 4),
                    "train_seconds": round(fit.seconds, 1),
                    "code_std_sorted": [round(float(s), 3) for s in np.sort(std)[::-1]],
                    **{k: round(v, 4) for k, v in ev.test.to_dict().items() if k in ("acc", "nmi", "ari")},
                    "seconds": round(time.perf_counter() - t, 1),
                }
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
