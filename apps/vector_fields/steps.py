"""The steps of a ``vector-fields run``: fields -> autoencoder -> codes -> clustering -> figures."""

from __future__ import annotations

import logging

import numpy as np

from keras_clust.apps.vector_fields.clustering import cluster_by_type, cluster_codes, scores_with_noise
from keras_clust.apps.vector_fields.config import Config
from keras_clust.apps.vector_fields.data import acquire, split_fields, uv_channels
from keras_clust.apps.vector_fields.pipeline import build, check_architecture, cost_row, reconstruction_scores, train
from keras_clust.errors import UsageError
from keras_clust.experiment import Run
from keras_clust.fields.autoencoder import FieldAEConfig
from keras_clust.viz.clustering import plot_k_choice

log = logging.getLogger("keras_clust.apps.vector_fields")


def load_data(cfg: Config):
    """The run's fields (generated with the run's seed, or ``cfg.dataset``)."""
    return acquire(cfg, cfg.seed)


def steps(cfg: Config, run: Run) -> None:
    from keras_clust.fields.dataset import fields_source
    from keras_clust.fields.figures import plot_field_gallery, plot_field_pairs
    from keras_clust.viz import loss_curves, plot_loss_curves

    fs = load_data(cfg)
    run.set_data(fields_source(fs, cfg.dataset))
    shape = tuple(int(d) for d in fs.fields.shape[1:])
    architecture = FieldAEConfig.from_dict(cfg.architecture)
    check_architecture(architecture, shape[0])
    if fs.n <= cfg.cluster.k_max:
        raise UsageError(f"{fs.n} fields are too few for --k-max {cfg.cluster.k_max}; lower --k-max")
    splits = split_fields(fs.fields, fs.labels, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    run.metrics["data"] = {
        "fields": fs.n,
        "shape": list(shape),
        "channels": list(fs.channels),
        "classes": list(fs.class_names) if fs.labels is not None else None,
        "split": splits.sizes,
        "scale": splits.scale,
        "settings": fs.settings,
    }
    uv = uv_channels(fs.channels)  # the figures draw u and v; a one-channel field has no figure of arrows
    if fs.labels is not None and uv is not None:
        plot_field_gallery(
            fs.fields[..., uv],
            fs.labels,
            fs.class_names,
            run.figures / "flow_types.png",
            per_class=3,
            title="the data: three fields of each flow type",
        )

    run.seed_model("field_ae")
    ae = build(cfg, shape, splits.scale, seed=cfg.seed)
    log.info("autoencoder: %s", architecture.describe())
    fit = train(ae, cfg, splits)
    run.history += fit.rows()
    plot_loss_curves(
        loss_curves(fit.history),
        run.figures / "loss.png",
        title=f"{'VAE' if cfg.vae else 'autoencoder'} ({cfg.loss if not cfg.vae else '-ELBO'})",
    )
    codes = ae.encoder.predict(fs.fields, batch_size=256, verbose=0)  # every field once: scored, exported, clustered
    recon = ae.decoder.predict(codes[splits.idx_test], batch_size=256, verbose=0)
    scores = reconstruction_scores(splits.x_test, recon, fs.channels, cfg.weight_floor)
    run.metrics["model"] = {
        "architecture": architecture.to_dict(),
        "describe": architecture.describe(),
        **cost_row(architecture, shape, cfg.batch_size),
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.kept_epoch if cfg.patience else None,
        "seconds": round(fit.seconds, 1),
        "seconds_per_epoch": round(fit.seconds / max(1, fit.epochs_run), 2),
        "test": scores,
    }
    idx = np.random.default_rng(cfg.seed).choice(len(splits.x_test), min(6, len(splits.x_test)), replace=False)
    titles = None
    if fs.labels is not None:
        titles = [fs.class_names[fs.labels[splits.idx_test[i]]] for i in idx]
    if uv is not None:
        plot_field_pairs(
            splits.x_test[idx][..., uv], recon[idx][..., uv], run.figures / "reconstructions.png", titles=titles
        )
    for file, model in (
        ("encoder.keras", ae.encoder),
        ("decoder.keras", ae.decoder),
        ("autoencoder.keras", ae.autoencoder),
    ):
        run.save_model(model, file)
    run.export_samples["fields"] = splits.x_test[:16]
    run.export_samples["embedding"] = codes[splits.idx_test[:16]]

    metrics, chosen = cluster_codes(codes, fs.fields, fs.labels, fs.class_names, cfg.cluster, cfg.seed, run.figures, uv)
    by_type, labels = cluster_by_type(fs.fields, cfg.k, cfg.k_range, cfg.seed)
    np.save(run.file("labels.npy"), labels)  # the default clustering, in the fields' row order
    metrics["by_type"] = by_type
    if by_type["k_choice"] is not None:
        metrics["figures"] = sorted(
            [*metrics["figures"], plot_k_choice(by_type["k_choice"], run.figures / "k_choice.png").name]
        )
    if fs.labels is not None:
        metrics["scores"] = {"by_type": scores_with_noise(fs.labels, labels), **metrics["scores"]}
    if cfg.deep_cluster != "kmeans" and fs.labels is None:
        log.warning("--cluster %s needs the fields' labels (the true number of types); skipped", cfg.deep_cluster)
    elif cfg.deep_cluster != "kmeans":
        metrics["scores"][f"{cfg.deep_cluster}_true_k"] = deep_clustering(cfg, fs, ae)
    run.metrics["clustering"] = metrics
    np.savez_compressed(
        run.file("clusters.npz"),
        codes=codes,
        cluster=chosen,
        **({"labels": fs.labels} if fs.labels is not None else {}),
    )


def deep_clustering(cfg: Config, fs, ae) -> dict:
    """``--cluster dec|idec|n2d`` on the run's encoder (a copy; IDEC with its decoder) at the true
    number of types, on every field as the other rows of the table."""
    from keras_clust.cluster.deep import DeepSettings, cluster_embedding

    settings = DeepSettings.for_run(len(np.unique(fs.labels)), cfg.quick, batch_size=cfg.batch_size)
    log.info("%s on the encoder, k = %d", cfg.deep_cluster, settings.n_clusters)
    res = cluster_embedding(cfg.deep_cluster, fs.fields, settings, ae.encoder, ae.decoder, cfg.seed)
    return {**scores_with_noise(fs.labels, res.labels), "seconds": round(sum(res.stage_seconds.values()), 1)}
