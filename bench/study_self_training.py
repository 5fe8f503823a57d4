"""Does self-training on N2D's confident assignments lift it? (issue 23, second lever)

A study, not a timing. On all 70k images of a dataset it runs N2D as ``cluster-bench`` does (the
papers' ``784-500-500-2000-10`` autoencoder, 50 epochs, UMAP 10-d with 20 neighbours and
``min_dist`` 0, a full-covariance mixture), then self-trains: the pretrained encoder with a softmax
head is fitted to the mixture's labels of its most confident rows (in every cluster, the
``--fraction`` of its rows with the highest posterior), with the rows perturbed on their way in
(``dropout``: a share of the input values zeroed, which any rows allow; ``shift``: images
translated by up to 10 % of their side), and its argmax labels every row. ``--rounds 2`` picks
the confident rows again from the first classifier's softmax and fits once more.

Every self-training setting is chosen on MNIST (its labels), and only then run on Fashion-MNIST.
The pretrained encoder and N2D's posteriors are cached per dataset and seed in ``--cache``, so
the variants of one seed share one pretraining.

Usage:
    .venv/bin/python bench/study_self_training.py --dataset mnist --variants dropout:0.5:1,shift:0.5:1
    .venv/bin/python bench/study_self_training.py --dataset fashion_mnist --seed 1 --variants shift:0.5:1

Every result is appended to ``--out`` (default ``bench/results/self_training.json``).
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
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.training import fit_model  # noqa: E402


def n2d_stage(x: np.ndarray, seed: int, cache: Path, pretrain_epochs: int) -> tuple[keras.Model, np.ndarray, dict]:
    """The pretrained encoder, N2D's posteriors of every row and the stage seconds (cached)."""
    enc_file, post_file = cache / "encoder.keras", cache / "n2d.npz"
    if enc_file.is_file() and post_file.is_file():
        saved = np.load(post_file)
        return keras.models.load_model(enc_file), saved["posterior"], json.loads(str(saved["seconds"]))
    n2d = N2D(n_clusters=10, pretrain_epochs=pretrain_epochs, random_state=seed, verbose=2).fit(x)
    posterior = n2d.mixture_.predict_proba(n2d.embedding_).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    n2d.encoder_.model.save(enc_file)
    np.savez(post_file, posterior=posterior, seconds=json.dumps(n2d.stage_seconds_))
    return n2d.encoder_.model, posterior, dict(n2d.stage_seconds_)


def confident_rows(posterior: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the ``fraction`` most confident rows of every cluster (by their posterior)."""
    labels, conf = posterior.argmax(1), posterior.max(1)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        n = max(1, int(round(fraction * len(rows))))
        keep.append(rows[np.argsort(-conf[rows])[:n]])
    return np.sort(np.concatenate(keep))


def classifier(encoder: keras.Model, k: int, augment: str, seed: int) -> keras.Model:
    """A copy of ``encoder`` with a softmax head, the rows perturbed in training only."""
    enc = keras.models.clone_model(encoder)
    enc.set_weights(encoder.get_weights())
    rows = keras.Input(encoder.input_shape[1:], name="rows")
    if augment == "shift":
        img = keras.layers.Reshape((28, 28, 1), name="as_image")(rows)
        img = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed, name="shift")(img)
        x = keras.layers.Reshape(encoder.input_shape[1:], name="as_rows")(img)
    else:
        x = keras.layers.Dropout(0.2, seed=seed, name="input_dropout")(rows)
    probs = keras.layers.Dense(k, activation="softmax", name="cluster")(enc(x))
    return keras.Model(rows, probs, name=f"self_training_{augment}")


def self_train(x, encoder, posterior, augment: str, fraction: float, rounds: int, epochs: int, seed: int):
    """Labels of every row after ``rounds`` of self-training, and per-round details."""
    details, k = [], posterior.shape[1]
    for r in range(rounds):
        keep = confident_rows(posterior, fraction)
        keras.utils.set_random_seed(seed + r)
        model = classifier(encoder, k, augment, seed + r)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        fit = fit_model(model, x[keep], posterior[keep].argmax(1), None, epochs=epochs, batch_size=256, verbose=2)
        posterior = model.predict(x, batch_size=4096, verbose=0)
        details.append({"round": r + 1, "rows": len(keep), "fit_s": round(fit.seconds, 1)})
    return posterior.argmax(1), details


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion_mnist"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default="dropout:0.5:1", help="augment:fraction:rounds,... ")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--pretrain-epochs", type=int, default=50, help="of the autoencoder (50 as cluster-bench)")
    p.add_argument("--rows", type=int, default=None, help="only the first rows (a smoke test; default all)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/self_training_cache"))
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "self_training.json")
    a = p.parse_args()
    ds = load_dataset(a.dataset)
    x = np.concatenate([ds.x_train, ds.x_test]).astype(np.float32).reshape(-1, 784)
    y = np.concatenate([ds.y_train, ds.y_test])
    x, y = x[: a.rows], y[: a.rows]
    start = time.perf_counter()
    encoder, posterior, n2d_seconds = n2d_stage(
        x, a.seed, a.cache / f"{a.dataset}_s{a.seed}_e{a.pretrain_epochs}_n{len(x)}", a.pretrain_epochs
    )
    base = score_clustering(y, posterior.argmax(1))
    rows = []
    for variant in a.variants.split(","):
        augment, fraction, rounds = variant.split(":")
        t0 = time.perf_counter()
        labels, details = self_train(x, encoder, posterior, augment, float(fraction), int(rounds), a.epochs, a.seed)
        s = score_clustering(y, labels)
        rows.append(
            {
                "dataset": a.dataset,
                "data": ds.source.note,
                "seed": a.seed,
                "augment": augment,
                "fraction": float(fraction),
                "rounds": int(rounds),
                "epochs": a.epochs,
                "pretrain_epochs": a.pretrain_epochs,
                "rows": len(x),
                "n2d": {"acc": round(base.acc, 4), "nmi": round(base.nmi, 4), "ari": round(base.ari, 4)},
                "n2d_stages_s": n2d_seconds,
                "acc": round(s.acc, 4),
                "nmi": round(s.nmi, 4),
                "ari": round(s.ari, 4),
                "self_training_s": round(time.perf_counter() - t0, 1),
                "rounds_detail": details,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "command": " ".join(sys.argv),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        append_json_row(a.out, rows[-1], {"machine": machine_info()})
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
