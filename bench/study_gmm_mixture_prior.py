"""Which parts of gmm-vae's mixture prior put the generated samples on the modes? (issue 24, item 6)

A study on random mixtures that no run reports (3-D seed 200, narrow-mode 2-D seed 300): the
dense VAE of the ``tuned`` network (128-128, latent 2, learned sigma, Adam 1e-3 cosine, batch 32)
with, step by step, the N(0, I) prior, a learned 16-component mixture prior trained by gradient
steps alone, with KL warm-up, with one EM refit of the prior at the end, and with refits every
25 epochs. Scored as ``gmm-vae run`` scores its rows: the share of 1,000 decoded prior draws
within 3 sd of a mode (decoder means), the same for samples of the decoder's likelihood, and the
modes captured (at least 1 % of the samples).

Usage:
    .venv/bin/python bench/study_gmm_mixture_prior.py            # every step on both mixtures
    .venv/bin/python bench/study_gmm_mixture_prior.py --epochs 1000 --steps refit-25 --cases 2d

Every row is appended to ``--out`` (default ``bench/results/gmm_mixture_prior.json``).
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

from keras_clust.cluster import mode_coverage  # noqa: E402
from keras_clust.data import random_mixture, sample_mixture  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.mixture_prior import KLWarmup, PriorRefit, prior_layers, sample_prior  # noqa: E402
from keras_clust.models import build_dense_vae  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.training import fit_model  # noqa: E402

#: step -> (prior components or None, warm-up epochs, refit every (0: never), refit at the end)
STEPS = {
    "normal": (None, 0, 0, False),
    "mixture": (16, 0, 0, False),
    "warmup": (16, 50, 0, False),
    "refit-end": (16, 50, 0, True),
    "refit-25": (16, 50, 25, True),
}
#: case -> (dim, component sd, mixture seed)
CASES = {"3d": (3, 1.0, 200), "2d": (2, 0.2, 300)}


class _EndRefit(PriorRefit):
    """Only the refit at the end of training."""

    def on_epoch_end(self, epoch, logs=None):
        pass


def study(step: str, case: str, epochs: int, samples: int = 1000, generated: int = 1000) -> dict:
    components, warmup, every, at_end = STEPS[step]
    dim, sd, seed = CASES[case]
    mix = random_mixture(dim, 10, 10.0, covariance_scale=sd**2, seed=seed)
    x, _ = sample_mixture(mix, samples, seed=seed)
    mean, std = x.mean(0), x.std(0) + 1e-8
    xs = (x - mean) / std
    keras.utils.set_random_seed(seed)
    m = build_dense_vae(dim, 2, (128, 128), seed=seed, likelihood="gaussian", prior_components=components)
    steps = int(np.ceil(samples / 32))
    m.vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, epochs * steps)))
    callbacks = [KLWarmup(warmup)] if warmup else []
    if every:
        callbacks.append(PriorRefit(m.encoder, xs, every, start=warmup, seed=seed))
    elif at_end:
        callbacks.append(_EndRefit(m.encoder, xs, 1, seed=seed))
    start = time.perf_counter()
    fit = fit_model(m.vae, xs, xs, None, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    layers = prior_layers(m.encoder)
    z = sample_prior(layers[0], generated, 1) if layers else np.random.default_rng(1).standard_normal((generated, 2))
    means = np.asarray(m.decoder.predict(z.astype(np.float32), verbose=0))
    log_var = keras.ops.convert_to_numpy(m.vae.get_layer("likelihood").observation_log_var())
    noisy = means + np.exp(0.5 * log_var) * np.random.default_rng(2).standard_normal(means.shape)
    row = {"step": step, "case": case, "dim": dim, "component_sd": sd, "mixture_seed": seed, "epochs": epochs}
    for name, g in (("means", means), ("samples", noisy)):
        c = mode_coverage(g * std + mean, mix)
        row[name] = {"modes": c.modes_captured_min_share, "hq": round(c.high_quality_fraction, 4)}
    if layers:
        _, variances, _ = layers[0].prior()
        row["prior_sd_mean"] = round(float(np.sqrt(variances).mean()), 3)
    z_log_var = np.asarray(m.encoder.predict(xs, verbose=0)[1])
    row["posterior_sd_mean"] = round(float(np.exp(0.5 * z_log_var).mean()), 3)
    row["sigma"] = np.round(np.exp(0.5 * log_var), 3).tolist()
    row["final_kl"] = round(fit.history["kl"][-1], 3)
    row["seconds"] = round(time.perf_counter() - start, 1)
    row["command"] = " ".join(sys.argv)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma list of {', '.join(STEPS)}")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gmm_mixture_prior.json")
    a = p.parse_args()
    for case in a.cases.split(","):
        for step in a.steps.split(","):
            row = study(step, case, a.epochs)
            print(json.dumps(row), flush=True)
            append_json_row(a.out, row, {"machine": machine_info()})


if __name__ == "__main__":
    main()
