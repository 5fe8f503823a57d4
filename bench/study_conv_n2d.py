"""Can an encoder pretrained to be invariant to small shifts and rotations lift N2D?

A study for issue 23 (Fashion-MNIST at the published numbers), not a timing. On all 70k images
of a dataset (train + test, as the deep-clustering papers and ``cluster-bench`` use them) it
trains the project's conv autoencoder (``keras_clust.models.build_conv_autoencoder``; or, with
``--encoder dense``, the papers' ``784-500-500-2000-10`` one) end to end with MSE, either plainly
or DEC-DA style: each training image is randomly shifted (and rotated)
on its way into the encoder while the target stays the clean image, so two shifted copies of an
image have to be given one code. N2D (UMAP to k dimensions, ``min_dist`` 0, 20 neighbours,
seeded; a full-covariance Gaussian mixture) then clusters the codes of the clean images, and
ACC/NMI are scored against the labels.

Settings are chosen on MNIST (``--dataset mnist``) and only then run on Fashion-MNIST.

Usage:
    .venv/bin/python bench/study_conv_n2d.py --dataset mnist --augment none
    .venv/bin/python bench/study_conv_n2d.py --dataset mnist --augment shift
    .venv/bin/python bench/study_conv_n2d.py --dataset fashion_mnist --augment shift --seed 1

Every result is appended to ``--out`` (default ``bench/results/conv_n2d.json``) when it exists.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from keras_clust.cluster import score_clustering  # noqa: E402
from keras_clust.cluster.n2d import N2D  # noqa: E402
from keras_clust.data import load_dataset  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.models import build_conv_autoencoder, build_stacked_autoencoder  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import set_seed  # noqa: E402
from keras_clust.training import fit_model  # noqa: E402

#: The augmentations tried: the largest shift (share of the side) and rotation (share of a turn).
AUGMENTS = {"none": None, "shift": (0.1, 0.0), "shift_rotate": (0.1, 10 / 360)}


def training_model(autoencoder: keras.Model, augment: str, seed: int) -> keras.Model:
    """``autoencoder``, with the random shift/rotation of ``augment`` applied to its input in
    training only (Keras' random layers pass images through unchanged at inference)."""
    if AUGMENTS[augment] is None:
        return autoencoder
    shift, turn = AUGMENTS[augment]
    images = keras.Input((28, 28, 1), name="images")
    x = keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed, name="shift")(images)
    if turn:
        x = keras.layers.RandomRotation(turn, fill_mode="constant", seed=seed + 1, name="rotate")(x)
    return keras.Model(images, autoencoder(x), name=f"{autoencoder.name}_{augment}")


def image_autoencoder(kind: str, channels: int, latent: int) -> tuple[keras.Model, keras.Model]:
    """``(autoencoder, encoder)`` on 28x28x1 images: the project's conv autoencoder, or the papers'
    dense ``784-500-500-2000-latent`` one with a flatten in front (and a reshape behind)."""
    if kind == "conv":
        ae = build_conv_autoencoder(channels, latent, name="cae")
        return ae.autoencoder, ae.encoder
    dense = build_stacked_autoencoder(28 * 28, latent)
    images = keras.Input((28, 28, 1), name="images")
    flat = keras.layers.Flatten(name="flat")(images)
    encoder = keras.Model(images, dense.encoder(flat), name="dense_encoder")
    out = keras.layers.Reshape((28, 28, 1), name="as_images")(dense.autoencoder(flat))
    return keras.Model(images, out, name="dense_ae"), encoder


def study(dataset: str, augment: str, seed: int, epochs: int, channels: int, latent: int, kind: str) -> dict:
    ds = load_dataset(dataset)
    x = np.concatenate([ds.x_train, ds.x_test]).astype(np.float32)[..., None]
    y = np.concatenate([ds.y_train, ds.y_test])
    set_seed(seed)
    autoencoder, encoder = image_autoencoder(kind, channels, latent)
    model = training_model(autoencoder, augment, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    fit = fit_model(model, x, x, None, epochs=epochs, batch_size=256, verbose=2)
    start = time.perf_counter()
    n2d = N2D(n_clusters=10, encoder=encoder, random_state=seed).fit(x)
    n2d_seconds = time.perf_counter() - start
    scores = score_clustering(y, n2d.labels_)
    return {
        "dataset": dataset,
        "rows": len(x),
        "encoder": kind,
        "augment": augment,
        "seed": seed,
        "epochs": epochs,
        "channels": channels,
        "latent": latent,
        "final_loss": fit.history["loss"][-1],
        "acc": round(scores.acc, 4),
        "nmi": round(scores.nmi, 4),
        "ari": round(scores.ari, 4),
        "pretrain_s": round(fit.seconds, 1),
        "n2d_s": round(n2d_seconds, 1),
        "n2d_stages_s": n2d.stage_seconds_,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "command": " ".join(sys.argv),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion_mnist"))
    p.add_argument("--augment", default="shift", choices=tuple(AUGMENTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="conv", choices=("conv", "dense"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--latent", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conv_n2d.json")
    a = p.parse_args()
    row = study(a.dataset, a.augment, a.seed, a.epochs, a.channels, a.latent, a.encoder)
    print(json.dumps(row, indent=1))
    append_json_row(a.out, row, {"machine": machine_info()})


if __name__ == "__main__":
    main()
