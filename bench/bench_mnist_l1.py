"""Benchmark of the mnist-l1 hot paths: one training epoch and one KMeans + metrics pass.

Usage:
    .venv/bin/python bench/bench_mnist_l1.py [--dataset mnist] [--epochs 3] [--latent 16]

Times the latent-16 dense L1 autoencoder per epoch at steady state (the first epoch,
which traces the graph, is reported apart), then KMeans (k = 10) on the encoded training
set with ACC/NMI/ARI/silhouette on the test set, and the process's peak resident memory.
Prints a Markdown row block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed after the first")
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    import keras

    from keras_clust.cluster import evaluate_kmeans
    from keras_clust.data import load_dataset, train_val_split
    from keras_clust.models import build_dense_autoencoder
    from keras_clust.provenance import machine_info
    from keras_clust.seeding import set_seed

    set_seed(0)
    ds = load_dataset(args.dataset)
    flat = int(ds.x_train[0].size)
    xtr, ytr, xval, _ = train_val_split(ds.x_train.reshape(-1, flat), ds.y_train, 0.1, 0)
    xte, yte = ds.x_test.reshape(-1, flat), ds.y_test
    ae = build_dense_autoencoder(flat, args.latent)
    ae.autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    ae.autoencoder.fit(
        xtr,
        xtr,
        validation_data=(xval, xval),
        epochs=1 + args.epochs,
        batch_size=args.batch_size,
        callbacks=[EpochTimer()],
        verbose=0,
    )
    first, steady = times[0], sorted(times[1:])[len(times[1:]) // 2]

    start = time.perf_counter()
    train_codes = ae.encoder.predict(xtr, batch_size=1024, verbose=0)
    test_codes = ae.encoder.predict(xte, batch_size=1024, verbose=0)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    ev = evaluate_kmeans(train_codes, ytr, test_codes, yte, n_clusters=10, random_state=0)
    kmeans_s = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    m = machine_info()
    print(f"data: {ds.source.note}")
    print(f"machine: {m['cpu_count']} cores, {m['processor']}, {m['platform']}")
    print("| measure | value |\n|---|---|")
    print(f"| training images | {len(xtr)} (batch {args.batch_size}) |")
    print(f"| first epoch (includes tracing) | {first:.2f} s |")
    print(f"| epoch at steady state (median of {args.epochs}) | {steady:.2f} s |")
    print(f"| encode train + test | {encode_s:.2f} s |")
    print(f"| KMeans (k=10, n_init=10) + ACC/NMI/ARI/silhouette | {kmeans_s:.2f} s |")
    print(f"| peak resident memory | {peak_mib:.0f} MiB |")
    print(f"| (ACC on test after {1 + args.epochs} epochs) | {ev.test.acc:.3f} |")


if __name__ == "__main__":
    main()
