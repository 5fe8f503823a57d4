"""The steps of ``lj-fluid run``: data, the three VAEs, the coordinate network, the analyses, figures."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np

from keras_clust.apps.lj_fluid import pair
from keras_clust.apps.lj_fluid.analysis import (
    active_dimensions,
    anomaly_roc,
    energy_mapping,
    energy_surprise,
    gamma_readout,
    kl_per_dimension,
    matrix_error,
    physics_features,
    reconstruction_table,
    recovered_rows,
)
from keras_clust.apps.lj_fluid.config import Config
from keras_clust.apps.lj_fluid.data import RunData, Split, acquire, insert_overlap, make_split, split_data
from keras_clust.apps.lj_fluid.figures import (
    plot_energy_histograms,
    plot_energy_map,
    plot_gamma_maps,
    plot_grid_reconstructions,
    plot_matrices,
    plot_recovered,
    plot_rocs,
)
from keras_clust.apps.lj_fluid.physical import COORDINATE_VIEWS, physical_samples
from keras_clust.apps.lj_fluid.pipeline import (
    VIEW_NAMES,
    VIEWS,
    codes,
    decode_grids,
    decode_matrices,
    posterior,
    save_likelihood,
    scoring_decoder,
    train_coordinate_net,
    train_view,
    trained_log_var,
    trained_terms,
    view_arrays,
)
from keras_clust.apps.lj_fluid.simulation import simulation_figures, simulation_metrics
from keras_clust.cluster.evaluate import k_options
from keras_clust.experiment import Run
from keras_clust.lj.dataset import save_lj_dataset
from keras_clust.lj.monte_carlo import lj_energy
from keras_clust.lj.pair_decoder import PairVAE
from keras_clust.lj.representations import cell_indices, grids_of
from keras_clust.seeding import model_seed
from keras_clust.viz import loss_curves, pick_examples, plot_k_choice, plot_loss_curves

log = logging.getLogger("keras_clust.apps.lj_fluid")

N_EXAMPLES = 4
ENERGY_BASELINE = "LJ energy (physics baseline)"


def data_note(sim, where: str) -> str:
    """The data line of a report: the simulation's settings and where its configurations came from."""
    s = sim.settings
    gammas = ", ".join(f"{g:g}" for g in sorted(set(np.unique(sim.gamma).tolist())))
    return (
        f"Lennard-Jones fluid, {s['n_particles']} particles, box {s['box']:g} sigma, {s['dim']}-D, "
        f"T {s['temperature']:g}, gamma {gammas}: {len(sim.positions)} configurations ({where}; "
        f"Metropolis, seed {s['seed']})"
    )


def steps(cfg: Config, run: Run) -> None:
    sim, cfg = acquire(cfg, progress=not cfg.quick)  # with a dataset: its physical settings
    run.set_data({"note": data_note(sim, cfg.dataset or "simulated by this run"), "full": True})
    save_lj_dataset(sim, run.file("dataset.npz"))
    m = run.metrics
    m["simulation"] = simulation_metrics(sim)
    m["simulation_figures"] = sorted(p.name for p in simulation_figures(sim, run.figures).values())
    data = split_data(sim, cfg)
    cells = cfg.grid_cells
    m["split"] = {
        "train": len(data.train),
        "val": len(data.val),
        "test": len(data.test),
        "holdout": 0 if data.holdout is None else len(data.holdout),
        "gammas": list(cfg.gammas),
        "holdout_gamma": cfg.holdout_gamma,
        "grid_cells": cells,
        "grid_h": cfg.box / cells,
        "doubly_occupied_share": doubly_occupied_share(sim.positions, cfg.box, cells),
    }

    trained = {}
    for view in VIEWS:
        t = train_view(view, data, cfg, run.seed_model)
        trained[view] = t
        run.history += t.fit.rows(model=f"{view}_vae")
        plot_loss_curves(
            loss_curves(t.fit.history),
            run.figures / f"loss_{view}.png",
            title=f"{VIEW_NAMES[view]}: recon + {cfg.beta:g} x KL (nats per configuration)",
        )
        if isinstance(t.vae, PairVAE):
            pair.save(t.vae, run)
            continue
        run.save_model(t.vae.mean_encoder, f"{view}_encoder.keras")
        run.save_model(t.vae.encoder, f"{view}_posterior.keras")
        run.save_model(t.vae.decoder, f"{view}_decoder.keras")
        run.save_model(scoring_decoder(t), f"{view}_scoring_decoder.keras")
        save_likelihood(run.file, view, t.vae.vae)
    net, net_fit = train_coordinate_net(data, cfg, run.seed_model)
    run.history += net_fit.rows(model="coordinate_net")
    run.save_model(net, "coordinate_net.keras")

    m["elbo_seed"] = model_seed(cfg.seed, "elbo")
    test_terms = {view: trained_terms(trained[view], data.test, cfg, m["elbo_seed"]) for view in VIEWS}
    m["models"] = {view: model_metrics(trained[view], test_terms[view], data, cfg) for view in VIEWS}
    m["models"]["coordinate_net"] = {
        "epochs": net_fit.epochs_run,
        "kept_epoch": net_fit.kept_epoch,
        "train_seconds": round(net_fit.seconds, 1),
        "val_mse": net_fit.history["val_loss"][net_fit.kept_epoch - 1],
        "parameters": net.count_params(),
    }
    m["reconstruction"] = reconstruct(trained["distance"], net, data, cfg, run)
    m["physical"] = physical_samples(
        {v: trained[v].vae for v in COORDINATE_VIEWS},
        {v: trained_log_var(trained[v].vae.vae) for v in COORDINATE_VIEWS},
        net,
        data,
        cfg,
        run,
    )
    m["gamma"] = gamma_in_latent(trained, data, cfg, run)
    m["anomaly"] = anomalies(trained, {v: t["neg_elbo"] for v, t in test_terms.items()}, data, cfg, run)
    draw_reconstructions(trained, data, cfg, run)
    idx = pick_examples(len(data.test), 16, cfg.seed)
    run.export_samples = {
        "coordinates": data.test.coords[idx],
        "distance_matrix": data.test.matrices[idx],
        "density_grid": grids_of(data.test.positions[idx], cfg.box, cells, cfg.grid_smoothing),
    }


def doubly_occupied_share(positions: np.ndarray, box: float, cells: int) -> float:
    """Share of configurations with a grid cell holding two or more particles (the grid then
    is not binary, and the Bernoulli likelihood scores a soft label)."""
    flat = cell_indices(positions, box, cells)
    occupied = np.array([len(np.unique(row)) for row in flat])
    return float(np.mean(occupied < flat.shape[1]))


def model_metrics(t, terms: dict, data: RunData, cfg: Config) -> dict:
    """Training summary and the test set's -ELBO ``terms`` (``cfg.elbo_draws`` seeded draws)."""
    z_mean, z_log_var = posterior(t.view, t.vae.encoder, data.test, cfg)
    h = t.fit.history
    return {
        "epochs": t.fit.epochs_run,
        "kept_epoch": t.fit.kept_epoch,
        "train_seconds": round(t.fit.seconds, 1),
        "seconds_per_epoch": round(t.fit.seconds / max(1, t.fit.epochs_run), 2),
        "parameters": t.vae.vae.count_params(),
        "model_seed": t.seed,
        "final_loss": h["loss"][-1],
        "final_val_loss": h["val_loss"][-1],
        "kept_val_loss": h["val_loss"][t.fit.kept_epoch - 1],
        "elbo_draws": cfg.elbo_draws,
        "test_neg_elbo": float(terms["neg_elbo"].mean()),
        "test_recon": float(terms["recon"].mean()),
        "test_kl": float(terms["kl"].mean()),
        "latent_dim": int(z_mean.shape[1]),
        "active_dims": active_dimensions(z_mean),
        "kl_per_dim": kl_per_dimension(z_mean, z_log_var).round(4).tolist(),
        "free_bits": getattr(cfg, f"{t.view}_free_bits"),
        **(
            {"pair_lattice": asdict(t.vae.lattice), "pair_signed": t.vae.potential.signed}
            if isinstance(t.vae, PairVAE)
            else {}
        ),
    }


def reconstruct(t, net, data: RunData, cfg: Config, run: Run) -> dict:
    """Decoded distance matrices -> coordinates (MDS and the network), RMSD and energies."""
    test = data.test
    decoded = decode_matrices(t.vae, test)
    rows = reconstruction_table(test.matrices, decoded, test.ordered, net, cfg.box)
    recovered = {f"{r.method}, {r.source}": r.positions for r in rows if r.source == "decoded matrix"}
    mapping = energy_mapping(test.ordered, recovered, test.gamma, cfg.invalid_distance)
    plot_energy_histograms(mapping, run.figures / "energy_recovered.png", cfg.invalid_distance)
    idx = pick_examples(len(test), 3, cfg.seed)
    plot_recovered(
        test.ordered[idx],
        {f"{r.method} (decoded)": r.positions[idx] for r in rows if r.source == "decoded matrix"},
        cfg.box,
        run.figures / "configurations_recovered.png",
    )
    return {
        "matrix_error": matrix_error(test.matrices, decoded, cfg.box, cfg.dim),
        "rmsd": recovered_rows(rows),
        "energy": {k: {kk: vv for kk, vv in v.items() if kk != "energy_per_particle"} for k, v in mapping.items()},
    }


def gamma_in_latent(trained, data: RunData, cfg: Config, run: Run) -> dict:
    out, maps = {}, {}
    for view in VIEWS:
        vae = trained[view].vae
        r = gamma_readout(
            codes(view, vae, data.train, cfg),
            data.train.gamma,
            codes(view, vae, data.test, cfg),
            data.test.gamma,
            cfg.seed,
            **k_options(cfg),
        )
        plot_chosen_k(r, view, run)
        maps[view] = r.pca_test
        run.labels[f"{view}_kmeans"] = r.labels  # the test configurations' clusters, in their order
        out[view] = {"r2": r.r2, "pca_explained": r.explained, **r.clustering}
        if cfg.cluster != "kmeans":
            x = view_arrays(view, data.test, cfg)
            out[view]["deep"] = deep_gamma_clustering(
                view,
                x,
                vae.mean_encoder,
                getattr(vae, "decoder", None),
                r.k,
                data,
                cfg,
                run,
            )
    train_features = physics_features(data.train.positions, data.train.gamma)
    test_features = physics_features(data.test.positions, data.test.gamma)
    base = gamma_readout(train_features, data.train.gamma, test_features, data.test.gamma, cfg.seed, **k_options(cfg))
    plot_chosen_k(base, "physics", run)
    out["physics"] = {"r2": base.r2, "pca_explained": base.explained, **base.clustering}
    run.labels["physics_kmeans"] = base.labels
    if cfg.cluster == "n2d":  # DEC and IDEC fine-tune an encoder, which the features have not
        out["physics"]["deep"] = deep_gamma_clustering(
            "physics",
            test_features,
            features_encoder(test_features.shape[1]),
            None,
            base.k,
            data,
            cfg,
            run,
        )
    plot_gamma_maps(
        maps,
        data.test.gamma,
        {v: f"{VIEW_NAMES[v]}: R^2 {out[v]['r2']:.3f}" for v in VIEWS},
        run.figures / "latent_pca_gamma.png",
    )
    best = max(VIEWS, key=lambda v: out[v]["r2"])
    run.metrics["energy_map_view"] = best
    plot_energy_map(
        maps[best],
        data.test.energy / cfg.particles,
        f"{VIEW_NAMES[best]} (the best gamma read-out): test codes by energy",
        run.figures / "latent_energy_map.png",
    )
    return out


def plot_chosen_k(readout, name: str, run: Run) -> None:
    """``--k auto``: the criterion's curve of one set of codes (``figures/k_choice_<name>.png``)."""
    if "k_choice" in readout.clustering:
        plot_k_choice(
            readout.clustering["k_choice"], run.figures / f"k_choice_{name}.png", title=f"k of the {name} codes"
        )


def features_encoder(width: int):
    """A Keras model that passes ``width`` features through unchanged: the physics baseline's
    "encoder", so that N2D maps the very features KMeans clusters."""
    import keras

    return keras.Sequential([keras.Input((width,)), keras.layers.Identity()], name="physics_features")


def deep_gamma_clustering(
    name: str, x: np.ndarray, encoder, decoder, k: int, data: RunData, cfg: Config, run: Run
) -> dict:
    """``--cluster dec|idec|n2d`` on ``encoder`` (a copy; IDEC with ``decoder``) over the test
    configurations ``x`` (the view's arrays, or the physics baseline's features), with the ``k``
    KMeans found on the same codes (the number of gammas, ``--k``, or the one ``--k auto`` chose), scored
    against their gamma as the KMeans column. The clusters go to ``labels.npz`` as ``<name>_<method>``."""
    from keras_clust.cluster import score_clustering
    from keras_clust.cluster.deep import DeepSettings, cluster_embedding

    _, classes = np.unique(data.test.gamma, return_inverse=True)
    if int(k) == 1:  # --k auto found one cluster: no method is needed to find it
        labels = np.zeros(len(x), dtype=np.int64)
    else:
        settings = DeepSettings.for_run(int(k), cfg.quick, batch_size=cfg.batch_size)
        labels = cluster_embedding(cfg.cluster, x, settings, encoder, decoder, cfg.seed).labels
    scores = score_clustering(classes, labels)
    what = "features" if name == "physics" else "codes"
    log.info("%s on the %s %s: gamma ACC %.3f", cfg.cluster, name, what, scores.acc)
    run.labels[f"{name}_{cfg.cluster}"] = labels  # the test configurations' clusters, in their order
    return {"method": cfg.cluster, **scores.to_dict()}


def overlap_split(test: Split, cfg: Config) -> Split:
    """The test configurations with one particle moved to ``cfg.overlap_distance`` of another
    (seeded from the run's seed): the anomaly set of the inserted overlapping pair."""
    overlapped = insert_overlap(test.positions, cfg.box, cfg.overlap_distance, model_seed(cfg.seed, "overlap"))
    return make_split(overlapped, test.gamma, lj_energy(overlapped, test.gamma), cfg)


def anomalies(trained, normal: dict, data: RunData, cfg: Config, run: Run) -> dict:
    """ROC-AUC of each VAE's -ELBO, and of the Lennard-Jones energy alone (a physics baseline
    that, like the VAEs, sees positions only: no gamma), for configurations at the held-out
    gamma and for test configurations with one overlapping pair inserted, each against the
    normal test configurations' -ELBO ``normal`` (by view; the anomalous sets capped at the
    test set's size)."""
    test = data.test
    sets = {"overlap": overlap_split(test, cfg)}
    if data.holdout is not None:
        keep = np.sort(
            np.random.default_rng(model_seed(cfg.seed, "holdout-sample")).permutation(len(data.holdout))[: len(test)]
        )
        h = data.holdout
        sets = {"holdout_gamma": make_split(h.positions[keep], h.gamma[keep], h.energy[keep], cfg), **sets}
    seed = model_seed(cfg.seed, "elbo")
    energy_score = energy_surprise(lj_energy(data.train.positions, 0.0))
    normal_energy = energy_score(lj_energy(test.positions, 0.0))
    out, curves = {}, {}
    for kind, split in sets.items():
        curves[kind] = {}
        for view in VIEWS:
            bad = trained_terms(trained[view], split, cfg, seed)["neg_elbo"]
            curves[kind][VIEW_NAMES[view]] = anomaly_roc(normal[view], bad)
        curves[kind][ENERGY_BASELINE] = anomaly_roc(normal_energy, energy_score(lj_energy(split.positions, 0.0)))
        out[kind] = {
            name: {"auc": a.auc, "n_normal": a.n_normal, "n_anomalous": a.n_anomalous}
            for name, a in curves[kind].items()
        }
    titles = [
        f"held-out gamma {cfg.holdout_gamma:g} vs test"
        if k == "holdout_gamma"
        else f"one pair at {cfg.overlap_distance:g} sigma inserted vs test"
        for k in curves
    ]
    plot_rocs(curves, run.figures / "anomaly_roc.png", titles)
    return out


def draw_reconstructions(trained, data: RunData, cfg: Config, run: Run) -> None:
    idx = pick_examples(len(data.test), N_EXAMPLES, cfg.seed)
    original, decoded = decode_grids(trained["grid"].vae, data.test.positions[idx], cfg)
    plot_grid_reconstructions(original, decoded, run.figures / "grid_reconstructions.png", cfg.box / cfg.grid_cells)
    sub = make_split(data.test.positions[idx], data.test.gamma[idx], data.test.energy[idx], cfg)
    plot_matrices(sub.matrices, decode_matrices(trained["distance"].vae, sub), run.figures / "distance_matrices.png")
