"""Exploratory: other encoders for lj-fluid's distance VAE (issue 24, item 3). Not adopted.

The distance view's codes read gamma at R^2 0.61-0.69 although a linear model of the sorted pair
distances reads it at 0.91 (``bench/study_lj_gamma_information.py``). Two encoders, the decoder
and the contacts likelihood left as the run builds them:

* ``sorted``: only each matrix's distinct distances, sorted (permutation-invariant), Dense 256,
  Dense 256, the VAE head;
* ``both``: the run's Conv2D branch on the ordered matrix beside a Dense 256 branch on the
  sorted distances, concatenated, Dense 256, the head.

And one other order of the matrices' particles for the run's encoder (``--encoder conv``):
``--order centroid``, by distance from the configuration's own centroid (invariant to a rigid
motion) instead of from the box's corner.

Each row is ``bench/study_lj_free_bits.study`` (same split, scores and label-free physics
read-out) with ``build_view`` replaced for the distance view:

    .venv/bin/python bench/explore_lj_distance_encoders.py --dataset /tmp/w/lj_design.npz --encoder sorted --free-bits 0

Rows are appended to ``--out`` (default ``bench/results/lj_distance_encoders.json``); the
Conv2D encoder's row comes from ``bench/study_lj_free_bits.py --view distance --free-bits 0``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras
import numpy as np
from keras import ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import study_lj_free_bits as study  # noqa: E402

import keras_clust.apps.lj_fluid.data as lj_data  # noqa: E402
import keras_clust.apps.lj_fluid.pipeline as pipeline  # noqa: E402
import keras_clust.lj.representations as representations  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.layers import UpperTriangle  # noqa: E402
from keras_clust.lj.vae import _padded, _with  # noqa: E402
from keras_clust.models.conv_vae import VAE  # noqa: E402
from keras_clust.models.vae_head import vae_head  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402

RUN_BUILD_VIEW = pipeline.build_view


def order_by_centroid(positions: np.ndarray) -> np.ndarray:
    """Positions with each configuration's particles ordered by distance from its centroid."""
    positions = np.asarray(positions)
    centred = positions - positions.mean(axis=-2, keepdims=True)
    order = np.argsort(np.linalg.norm(centred, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(positions, order[..., None], axis=-2)


class SortLast(keras.layers.Layer):
    """Sorts the last axis (ascending)."""

    def call(self, x):
        return ops.sort(x, axis=-1)


def variant(encoder_kind: str):
    def build_view(view, cfg, seed):
        base = RUN_BUILD_VIEW(view, cfg, seed)
        if view != "distance":
            return base
        n = cfg.particles
        matrices = keras.Input((n, n, 1), name="distance_matrix")
        x = SortLast(name="enc_sorted")(UpperTriangle(n, name="enc_triangle")(matrices))
        x = keras.layers.Dense(256, activation="relu", name="enc_dense_0")(x)
        if encoder_kind == "both":
            p = _padded(n)
            c = keras.layers.ZeroPadding2D(((0, p - n), (0, p - n)), name="enc_pad")(matrices)
            for i, f in enumerate((16, 32)):  # the run's Conv2D branch
                c = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"enc_conv_{i}")(c)
            x = keras.layers.Concatenate(name="enc_both")([keras.layers.Flatten(name="enc_flatten")(c), x])
        x = keras.layers.Dense(256, activation="relu", name="enc_dense")(x)
        z_mean, z_log_var, z, _, _ = vae_head(x, cfg.distance_latent, cfg.beta, seed, free_bits=cfg.distance_free_bits)
        encoder = keras.Model(matrices, [z_mean, z_log_var, z], name="distance_vae_encoder")
        mean_encoder = keras.Model(matrices, z_mean, name="distance_vae_mean_encoder")
        triangle = base.vae.get_layer("upper_triangle")
        observed, expected = triangle(matrices), triangle(base.decoder(encoder(matrices)[2]))
        if cfg.distance_likelihood == "contacts":
            contact = base.vae.get_layer("contacts")
            observed = _with(contact, observed, "observed_with_contacts")
            expected = _with(contact, expected, "decoded_with_contacts")
        out = base.vae.get_layer("likelihood")([observed, expected])
        return VAE(keras.Model(matrices, out, name="distance_vae"), encoder, mean_encoder, base.decoder)

    return build_view


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", choices=("conv", "sorted", "both"), required=True)
    p.add_argument("--order", choices=("corner", "centroid"), default="corner", help="the matrices' particle order")
    p.add_argument("--free-bits", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="default: the run's")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_distance_encoders.json")
    a = p.parse_args()
    if a.encoder != "conv":
        pipeline.build_view = variant(a.encoder)
    if a.order == "centroid":  # every matrix the study makes, and the positions in that order
        representations.order_by_origin = lj_data.order_by_origin = order_by_centroid
    row = study.study(a.dataset, "distance", a.free_bits, a.seed, a.epochs, None, **dict.fromkeys(study.OVERRIDES))
    row["distance_encoder"], row["distance_order"] = a.encoder, a.order
    append_json_row(a.out, row, {"machine": machine_info()})
    print(row)


if __name__ == "__main__":
    main()
