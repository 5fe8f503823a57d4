"""Can a coordinate VAE's own samples be physical? Autoregressive decoders (issue 24, item 2)

Exploratory, not a timing. The sorted-coordinate VAE's decoder is a factorised Gaussian: each of
the 90 coordinates is drawn on its own, so nothing keeps two particles apart, and every
configuration it generates has a pair under 0.8 sigma. Exclusion is a correlation between
particles. This script trains the run's DeepSets encoder with a decoder that draws the particles
one at a time, lowest first (they are sorted by height), each given the code and the particles
drawn before it. Two decoders (``--decoder``):

* ``made``: a MADE (Germain et al., 2015; masked dense layers, every hidden layer also fed the
  code) over all 90 coordinates, whose output for each coordinate is a mixture of Gaussians, so
  that a particle's x given its height could have a hole where a lower particle sits. Within a
  particle the order is height, then x, then y.
* ``pair``: the library's pair decoder (:mod:`keras_clust.lj.pair_decoder`): a MADE of the same
  kind over the 30 heights; then each particle's (x, y) as a cell of a ``--grid`` x ``--grid``
  lattice, with logits from the code and its height minus a learned pair potential summed over the
  ``--window`` particles drawn just before it: exclusion is written into the conditional, its
  strength learned. ``--subgrid S`` draws the position within the cell on an ``S x S`` lattice of
  its own by the same potential, then uniform within the sub-cell; ``--core-margin`` adds a hard
  core just inside the training data's closest cell and sub-cell centres
  (:func:`keras_clust.lj.pair_lattice.closest_centres`). Until 2026-12-07 the script computed the
  potential's pair distances inside the model at every step; the library computes each
  configuration's pair sums once (``features_seconds`` in the results), which gives the same
  logits to float32 rounding.

It scores, against the validation split's Monte Carlo per gamma as ``lj-fluid run`` does
(:func:`keras_clust.apps.lj_fluid.physical.score_by_gamma`): configurations generated from prior
draws (each given the gamma a linear discriminant of the training codes finds most likely) and
reconstructions of the test configurations (a draw of the decoder given each one's code), raw,
with no relaxation; for the pair decoder also "reconstructed, on the test heights", where only the
positions in the plane are drawn, on the test configurations' own heights, which tells the plane's
close pairs from the heights'. ``--wall`` adds the Lennard-Jones wall's shape to the potential's
sums (:attr:`keras_clust.lj.pair_lattice.PairLattice.wall`); ``--level-strengths`` gives the
sub-cells strengths of their own; ``pair_strengths`` in the results lists the cells' strengths,
then the sub-cells'. ``--own-sweeps`` adds rows re-drawn against every other particle (see
:func:`keras_clust.lj.pair_decoder.gibbs_sweeps`). Drawn coordinates are clipped into the box. Beside the physical
scores, each row has the mean number of pairs under 0.8 sigma per configuration and the median
closest pair, which still move when every configuration has a close pair. ``--baseline`` also
trains the run's Gaussian decoder (``lj-fluid run``'s coordinate VAE, same seed) and scores its
likelihood samples of the same prior draws; uniform configurations and the Monte Carlo's test
split are the other rows.
Results are appended to ``--out`` (default ``bench/results/lj_autoregressive.json``).

Usage:
    .venv/bin/keras-clust lj-fluid simulate --seed 100 --samples 6000 --output /tmp/lj_design.npz
    .venv/bin/python bench/explore_lj_autoregressive_decoder.py --dataset /tmp/lj_design.npz --baseline
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from study_lj_free_bits import physics_r2  # noqa: E402  (this folder: the study's read-out)

from keras_clust.apps.lj_fluid.analysis import gamma_readout  # noqa: E402
from keras_clust.apps.lj_fluid.config import Config  # noqa: E402
from keras_clust.apps.lj_fluid.data import acquire, split_data  # noqa: E402
from keras_clust.apps.lj_fluid.physical import (  # noqa: E402
    decode,
    likelihood_sample,
    score_by_gamma,
    weighted_scores,
)
from keras_clust.apps.lj_fluid.pipeline import train_view, trained_log_var, trained_terms  # noqa: E402
from keras_clust.files import append_json_row  # noqa: E402
from keras_clust.generation import prior_samples  # noqa: E402
from keras_clust.lj.pair_decoder import (  # noqa: E402
    MixtureNLL,
    build_pair_vae,
    draw_configurations,
    draw_mixture,
    gibbs_sweeps,
    made,
)
from keras_clust.lj.pair_lattice import HINGES, PairLattice, closest_centres  # noqa: E402
from keras_clust.lj.representations import unsort_coordinates  # noqa: E402
from keras_clust.lj.structure import CLOSE_PAIR, pair_distances  # noqa: E402
from keras_clust.lj.vae import particle_set_features  # noqa: E402
from keras_clust.models.vae_head import vae_head  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.seeding import model_seed, seed_model  # noqa: E402


def pair_counts(positions: np.ndarray) -> dict:
    """How close the closest pairs are: pairs under :data:`CLOSE_PAIR` per configuration, and
    the median over configurations of the closest pair's distance (sigma)."""
    n = positions.shape[1]
    d = pair_distances(positions).reshape(len(positions), n * (n - 1) // 2)
    return {
        "close_pairs_per_configuration": float((d < CLOSE_PAIR).sum(axis=1).mean()),
        "closest_pair_median": float(np.median(d.min(axis=1))),
    }


def close_pairs_by_order(positions: np.ndarray, window: int) -> float:
    """Share of the pairs under :data:`CLOSE_PAIR` whose particles are more than ``window`` apart in
    the order they were drawn (the pair decoder's potential does not see those)."""
    n = positions.shape[1]
    i, j = np.triu_indices(n, k=1)
    close = np.linalg.norm(positions[:, i] - positions[:, j], axis=-1) < CLOSE_PAIR
    return float(close[:, (j - i) > window].sum() / max(close.sum(), 1))


def scored_row(positions: np.ndarray, gamma: np.ndarray, data, cfg, name: str) -> dict:
    gamma = np.asarray(gamma, np.float32)
    scored = score_by_gamma(positions, gamma, data, cfg, name)
    per_gamma = {
        f"close_pairs_per_configuration_gamma_{g:g}": pair_counts(positions[np.isclose(gamma, g)])[
            "close_pairs_per_configuration"
        ]
        for g in cfg.gammas
        if np.isclose(gamma, g).any()
    }
    overlaps = {f"energy_overlap_gamma_{g}": v.to_dict()["energy_overlap"] for g, v in scored.items()}
    return {
        **weighted_scores([s.to_dict() for s in scored.values()]),
        **pair_counts(positions),
        **per_gamma,
        **overlaps,
    }


def degrees(n_particles: int, dim: int) -> np.ndarray:
    """The draw order of each flat coordinate ``(particle, axis)``: particle by particle, height
    first, then the other axes in order (1-based, as MADE's degrees)."""
    within = [dim - 1, *range(dim - 1)]  # height first
    deg = np.empty(n_particles * dim, np.int64)
    for p in range(n_particles):
        for rank, axis in enumerate(within):
            deg[p * dim + axis] = p * dim + rank + 1
    return deg


def build_made(n_particles, dim, latent, hidden, components, free_bits, seed):
    """One MADE over all coordinates behind the run's DeepSets encoder. Returns the training
    model, the encoder, the decoder (``[code, coordinates] ->`` mixture parameters, what
    :func:`draw` reads) and the likelihood model (``[code, coordinates] ->`` -log p per
    configuration)."""
    features = n_particles * dim
    rng = np.random.default_rng(seed)
    coords = keras.Input((features,), name="coordinates")
    body = particle_set_features(coords, n_particles, dim, (64, 64), (45, 22))
    z_mean, z_log_var, z, _, _ = vae_head(body, latent, 1.0, seed, free_bits=free_bits)
    encoder = keras.Model(coords, [z_mean, z_log_var, z], name="encoder")
    z_in = keras.Input((latent,), name="latent")
    given = keras.Input((features,), name="given")
    params = made(z_in, given, degrees(n_particles, dim), hidden, components, rng, "")
    decoder = keras.Model([z_in, given], params, name="decoder")
    nll = MixtureNLL(components, name="likelihood")([given, params])
    nll_model = keras.Model([z_in, given], nll, name="likelihood_model")
    vae = keras.Model(coords, nll_model([encoder(coords)[2], coords]))
    return vae, encoder, decoder, nll_model


def draw(decoder, latent: np.ndarray, n_particles: int, dim: int, components: int, seed: int) -> np.ndarray:
    """Sequential draws of the "made" decoder given ``latent``: one coordinate per degree."""
    rng = np.random.default_rng(seed)
    d_in = degrees(n_particles, dim)
    x = np.zeros((len(latent), n_particles * dim), np.float32)
    for d in range(1, len(d_in) + 1):
        j = int(np.flatnonzero(d_in == d)[0])
        x[:, j] = draw_mixture(decoder.predict([latent, x], batch_size=1024, verbose=0), j, components, rng)
    return x


#: The rows ``--codes-prior`` and ``--codes-mixture`` add.
CODES_PRIOR = "generated from each gamma's codes' Gaussian"
CODES_MIXTURE = "generated from a Gaussian mixture of the codes"


def codes_gaussians(codes: np.ndarray, gamma: np.ndarray, wanted: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """Draws from a Gaussian (mean and covariance) fitted to the codes of each gamma, as many of
    each gamma as ``wanted`` holds; returns the draws and their gammas."""
    rng = np.random.default_rng(seed)
    draws, gammas = [], []
    for g in np.unique(wanted):
        mine = codes[np.isclose(gamma, g)]
        if len(mine) <= codes.shape[1]:
            raise SystemExit(f"--codes-prior: gamma {g:g} has {len(mine)} training codes, too few for a Gaussian")
        count = int(np.sum(np.isclose(wanted, g)))
        draws.append(rng.multivariate_normal(mine.mean(axis=0), np.cov(mine, rowvar=False), count))
        gammas.append(np.full(count, g))
    return np.concatenate(draws).astype(np.float32), np.concatenate(gammas)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument(
        "--patience",
        type=int,
        default=10,
        help="epochs without a better validation loss before stopping (0: every epoch, the last kept, as "
        "the run's --patience 0)",
    )
    ap.add_argument(
        "--reduce-lr-patience",
        type=int,
        default=0,
        help="halve the learning rate after this many epochs without a better validation loss (Keras' "
        "ReduceLROnPlateau, down to 1e-5, as the run's --coords-lr-plateau); 0: a constant learning rate",
    )
    ap.add_argument("--decoder", choices=("made", "pair"), default="made")
    ap.add_argument("--grid", type=int, default=16, help="the pair decoder's lattice of (x, y) cells per axis")
    ap.add_argument("--window", type=int, default=12, help="the pair decoder's particles below each one it sees")
    ap.add_argument(
        "--subgrid", type=int, default=1, help="the pair decoder's lattice of sub-cells per axis within each cell"
    )
    ap.add_argument(
        "--sharpen", default="1", help="the pair decoder's generated rows: its cell logits times each of these"
    )
    ap.add_argument(
        "--hinges",
        default=",".join(f"{h:g}" for h in HINGES),
        help="the pair decoder's potential: distances in sigma where its hinges sit",
    )
    ap.add_argument(
        "--core-margin",
        type=float,
        default=None,
        help="the pair decoder: a hard core this far (sigma) below the training data's closest"
        " cell and sub-cell centres to a particle below (none if not given)",
    )
    ap.add_argument(
        "--signed-hinges",
        action="store_true",
        help="the pair decoder's hinge strengths may take either sign (a potential with a well)",
    )
    ap.add_argument(
        "--wall",
        action="store_true",
        help="the pair decoder's potential also weighs a sum of r**-12 (the Lennard-Jones wall's shape)",
    )
    ap.add_argument(
        "--own-sweeps",
        default="",
        help="the pair decoder's generated and reconstructed rows also after these numbers of sweeps that "
        "re-draw each particle's plane position against every other particle (e.g. 1,5,20; exploratory)",
    )
    ap.add_argument(
        "--codes-prior",
        action="store_true",
        help="also generate from a Gaussian fitted to each gamma's training codes (as many per gamma as the test "
        "split has), scored at that gamma: how much of the generated rows' distance from the Monte Carlo is the "
        "N(0, I) prior's mismatch with the codes (a diagnostic: it uses the labels)",
    )
    ap.add_argument(
        "--codes-mixture",
        action="store_true",
        help="also generate from a Gaussian mixture fitted to the training codes without labels (one component per "
        "gamma), each draw scored at the gamma the linear discriminant gives it, as the N(0, I) draws are",
    )
    ap.add_argument(
        "--level-strengths",
        action="store_true",
        help="the pair decoder's sub-cells weigh their pair sums with strengths of their own",
    )
    ap.add_argument("--hidden", default="512,512")
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--latent", type=int, default=2)
    ap.add_argument("--free-bits", type=float, default=0.25)
    ap.add_argument("--baseline", action="store_true", help="also train and sample the run's Gaussian decoder")
    ap.add_argument("--limit", type=int, default=None, help="train on this many configurations (smoke runs)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_autoregressive.json")
    a = ap.parse_args()
    a.sharpen = [float(v) for v in a.sharpen.split(",")]
    a.hinges = sorted(float(v) for v in a.hinges.split(","))
    a.own_sweeps = [int(v) for v in a.own_sweeps.split(",") if v.strip()]
    cfg = Config(dataset=a.dataset, seed=a.seed)
    sim, cfg = acquire(cfg, progress=False)
    data = split_data(sim, cfg)
    n, dim = sim.positions.shape[1], sim.positions.shape[2]
    hidden = tuple(int(h) for h in a.hidden.split(","))
    core = closest = test_closest = None
    train, val, test = (split.coords[: a.limit] for split in (data.train, data.val, data.test))
    lattice = PairLattice(n, dim, cfg.box, a.grid, a.subgrid, a.window, tuple(a.hinges), wall=a.wall)
    if a.decoder == "pair" and a.core_margin is not None:
        closest = closest_centres(lattice, train)
        core = tuple(c - a.core_margin for c in closest)
        lattice = replace(lattice, core=core)
        print(f"hard core: cells {core[0]:.3f} sigma, sub-cells {core[1]:.3f} sigma", flush=True)
        test_closest = closest_centres(lattice, test)
        print(f"the test split's closest: cells {test_closest[0]:.3f}, sub-cells {test_closest[1]:.3f}", flush=True)
    seed_model(a.seed, "autoregressive")
    features_seconds = None
    if a.decoder == "made":
        vae, encoder, decoder, nll_model = build_made(
            n, dim, a.latent, hidden, a.components, a.free_bits, model_seed(a.seed, "z")
        )
        inputs = {"train": train, "val": val, "test": [test]}
    else:
        model = build_pair_vae(
            lattice,
            a.latent,
            made_units=hidden,
            components=a.components,
            free_bits=a.free_bits,
            seed=model_seed(a.seed, "z"),
            signed_hinges=a.signed_hinges,
            level_strengths=a.level_strengths,
        )
        vae, encoder, nll_model = model.vae, model.encoder, model.likelihood
        started = time.perf_counter()
        inputs = {"train": model.inputs(train), "val": model.inputs(val), "test": model.inputs(test)}
        features_seconds = time.perf_counter() - started
        print(f"pair sums of the three splits in {features_seconds:.0f} s", flush=True)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    t0 = time.perf_counter()
    hist = vae.fit(
        inputs["train"],
        validation_data=(inputs["val"],),
        epochs=a.epochs,
        batch_size=64,
        verbose=0,
        callbacks=(
            [keras.callbacks.EarlyStopping(patience=a.patience, restore_best_weights=True)] if a.patience > 0 else []
        )
        + (
            [keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=a.reduce_lr_patience, min_lr=1e-5)]
            if a.reduce_lr_patience > 0
            else []
        ),
    )
    seconds = time.perf_counter() - t0
    print(f"trained {len(hist.history['loss'])} epochs in {seconds:.0f} s", flush=True)
    test_gamma = data.test.gamma[: a.limit]
    z_mean, z_log_var, _ = encoder.predict(test, verbose=0)
    kl = np.mean(-0.5 * (1.0 + z_log_var - z_mean**2 - np.exp(z_log_var)), axis=0)
    z = z_mean + np.exp(0.5 * z_log_var) * np.random.default_rng(model_seed(a.seed, "elbo")).standard_normal(
        z_mean.shape
    )
    recon_nll = float(np.mean(nll_model.predict([z, *inputs["test"]], batch_size=256, verbose=0)))
    train_codes = encoder.predict(train, verbose=0)[0]
    head = {
        k: SimpleNamespace(positions=p.positions[: a.limit], gamma=p.gamma[: a.limit])
        for k, p in (("train", data.train), ("test", data.test))
    }
    physics = physics_r2(train_codes, head["train"], z_mean, head["test"])
    # The run's read-out of gamma from the codes (linear R^2, KMeans ACC on the test codes): it uses
    # the labels, so a row reports it and no rule is judged on it.
    train_gamma = data.train.gamma[: a.limit]
    read = gamma_readout(train_codes, train_gamma, z_mean, test_gamma, a.seed)
    lda = LinearDiscriminantAnalysis().fit(train_codes, train_gamma)
    latent = prior_samples(len(test), a.latent, model_seed(a.seed, "generated"))
    rows = {}
    assigned = lda.predict(latent)
    sets = [("generated", latent, assigned, 1.0, False), ("reconstructed", z_mean, test_gamma, 1.0, False)]
    if a.codes_prior:
        fitted, fitted_gamma = codes_gaussians(train_codes, train_gamma, test_gamma, model_seed(a.seed, "codes-prior"))
        sets += [(CODES_PRIOR, fitted, fitted_gamma, 1.0, False)]
    if a.codes_mixture:
        mixture = GaussianMixture(len(np.unique(train_gamma)), covariance_type="full", random_state=a.seed)
        drawn_codes = mixture.fit(train_codes).sample(len(test))[0]
        drawn_codes = np.random.default_rng(model_seed(a.seed, "codes-mixture")).permutation(drawn_codes)
        sets += [(CODES_MIXTURE, drawn_codes.astype(np.float32), lda.predict(drawn_codes), 1.0, False)]
    if a.decoder == "pair":
        sets += [(f"generated, cells sharpened x{v:g}", latent, assigned, v, False) for v in a.sharpen if v != 1.0]
        sets += [("generated, heights sorted", latent, assigned, 1.0, True)]
        sets += [("reconstructed, on the test heights", z_mean, test_gamma, 1.0, False)]
    for name, codes_, gamma, sharpen, sort_heights in sets:
        started = time.perf_counter()
        if a.decoder == "made":
            drawn = draw(decoder, codes_, n, dim, a.components, a.seed)
        else:
            given = test.reshape(len(test), n, dim)[..., -1] if name.endswith("test heights") else None
            drawn = draw_configurations(model, codes_, a.seed, sharpen, sort_heights, heights=given)
        print(f"{name}: drawn in {time.perf_counter() - started:.0f} s", flush=True)
        pos = unsort_coordinates(drawn, cfg.box, dim)
        rows[f"{a.decoder}: {name}"] = scored_row(pos, gamma, data, cfg, name)
        if a.decoder == "pair":
            rows[f"{a.decoder}: {name}"]["close_pairs_beyond_window"] = close_pairs_by_order(pos, a.window)
        if a.decoder == "pair" and a.own_sweeps and name in ("generated", "reconstructed", CODES_PRIOR, CODES_MIXTURE):
            started = time.perf_counter()
            swept = gibbs_sweeps(model, codes_, drawn, a.own_sweeps, [a.seed, 3])
            print(f"{name}: {max(a.own_sweeps)} own-potential sweeps in {time.perf_counter() - started:.0f} s")
            for count, coords in swept.items():
                pos = unsort_coordinates(coords, cfg.box, dim)
                rows[f"{a.decoder}: {name}, {count} sweeps of its own potential"] = scored_row(
                    pos, gamma, data, cfg, f"{name}, {count} own sweeps"
                )
    rows["Monte Carlo (test split)"] = scored_row(data.test.positions, data.test.gamma, data, cfg, "mc")
    uniform = np.random.default_rng([a.seed, 2]).uniform(0.0, cfg.box, data.test.positions[: a.limit].shape)
    rows["uniform in the box"] = scored_row(uniform, test_gamma, data, cfg, "uniform")
    if a.baseline:  # the run's Gaussian decoder, trained and sampled as lj-fluid run does
        t = train_view("coords", data, cfg, lambda key: seed_model(a.seed, key))
        gaussian_neg_elbo = float(trained_terms(t, data.test, cfg, model_seed(a.seed, "elbo"))["neg_elbo"].mean())
        g_codes = t.vae.encoder.predict(data.train.coords, verbose=0)[0]
        g_physics = physics_r2(g_codes, data.train, t.vae.encoder.predict(data.test.coords, verbose=0)[0], data.test)
        g_lda = LinearDiscriminantAnalysis().fit(g_codes, data.train.gamma)
        sample = likelihood_sample("coords", decode(t.vae, latent), trained_log_var(t.vae.vae), [a.seed, 1])
        pos = unsort_coordinates(sample, cfg.box, dim)
        rows["Gaussian: generated, likelihood sample"] = {
            **scored_row(pos, g_lda.predict(latent), data, cfg, "gaussian"),
            "test_neg_elbo": gaussian_neg_elbo,
            "physics_r2": g_physics,
            "physics_r2_mean": float(np.mean(g_physics)),
        }
    result = {
        "dataset": a.dataset,
        "seed": a.seed,
        "decoder": a.decoder,
        "grid": a.grid if a.decoder == "pair" else None,
        "window": a.window if a.decoder == "pair" else None,
        "subgrid": a.subgrid if a.decoder == "pair" else None,
        "sharpen": a.sharpen if a.decoder == "pair" else None,
        "hinges": a.hinges if a.decoder == "pair" else None,
        "core_margin": a.core_margin if a.decoder == "pair" else None,
        "signed_hinges": a.signed_hinges if a.decoder == "pair" else None,
        "level_strengths": a.level_strengths if a.decoder == "pair" else None,
        "wall": a.wall if a.decoder == "pair" else None,
        "pair_strengths": (
            [np.asarray(model.potential.strengths(v)).round(4).tolist() for v in (0, 1)]
            if a.decoder == "pair"
            else None
        ),
        "training_closest": list(closest) if closest else None,
        "core": list(core) if core else None,
        "test_closest": list(test_closest) if test_closest else None,
        "hidden": list(hidden),
        "components": a.components,
        "latent": a.latent,
        "free_bits": a.free_bits,
        "patience": a.patience,
        "reduce_lr_patience": a.reduce_lr_patience,
        "learning_rates": [float(x) for x in hist.history.get("learning_rate", [])],
        "epochs": len(hist.history["loss"]),
        "train_seconds": round(seconds, 1),
        "features_seconds": None if features_seconds is None else round(features_seconds, 1),
        "history": {k: [round(float(v), 4) for v in vs] for k, vs in hist.history.items()},
        "best_val_loss": float(min(hist.history["val_loss"])),
        "test_recon_nll": recon_nll,
        "test_kl": float(kl.sum()),
        "test_neg_elbo": recon_nll + float(kl.sum()),
        "kl_per_dim": kl.round(3).tolist(),
        "physics_r2": physics,
        "physics_r2_mean": float(np.mean(physics)),
        "gamma_r2": read.r2,
        "gamma_kmeans_acc": read.clustering["acc"],
        "rows": rows,
        "command": " ".join(sys.argv),
    }
    print(json.dumps(result, indent=1), flush=True)
    if a.limit is None:  # smoke runs are not results
        append_json_row(a.out, result, {"machine": machine_info()})


if __name__ == "__main__":
    main()
