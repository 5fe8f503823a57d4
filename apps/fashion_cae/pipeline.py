"""The steps of ``fashion-cae run``: CAE, conv VAE, latent analysis, transfer learning.

Each step takes the config, the prepared data and the :class:`~keras_clust.experiment.Run`,
re-seeds right before building each model (``run.seed_model``), writes its models and
figures, and returns its metrics and history rows.
"""

from __future__ import annotations

import logging
import math

import keras
import numpy as np

from keras_clust.apps.fashion_cae.config import RunConfig
from keras_clust.cluster import evaluate_kmeans, evaluate_method
from keras_clust.cluster.evaluate import k_options
from keras_clust.data.splits import Split
from keras_clust.experiment import Run
from keras_clust.generation import fit_gaussian, latent_grid, prior_samples
from keras_clust.layers import summed_binary_crossentropy
from keras_clust.models import build_conv_vae, build_transfer_classifier
from keras_clust.models.classifier import best_val_accuracy, compile_transfer_classifier
from keras_clust.training import fit_autoencoder, fit_model
from keras_clust.tuning import build_compiled_cae
from keras_clust.viz import (
    latent_map,
    loss_curves,
    pick_examples,
    plot_confusion_matrix,
    plot_image_grids,
    plot_image_rows,
    plot_k_choice,
    plot_latent_map,
    plot_loss_curves,
)

log = logging.getLogger("keras_clust.apps.fashion_cae")

PREDICT = {"batch_size": 1024, "verbose": 0}


def _reconstructions(model, prep: Split, run: Run, key: str, title: str, seed: int) -> None:
    idx = pick_examples(len(prep.x_test), 10, seed)
    recon = model.predict(prep.x_test[idx], verbose=0)
    plot_image_rows(
        [prep.x_test[idx], recon],
        run.figures / f"reconstructions_{key}.png",
        row_titles=["original", "reconstruction"],
        captions=[[prep.class_names[c] for c in prep.y_test[idx]], None],
        title=title,
    )


def train_cae(cfg: RunConfig, prep: Split, run: Run) -> tuple[keras.Model, dict, list]:
    """Train the report's CAE with MSE; returns the autoencoder, its metrics and history."""
    run.seed_model("cae")
    model = build_compiled_cae(**cfg.cae, name="cae")
    log.info("CAE %s", cfg.cae)
    fit = fit_autoencoder(model, prep, epochs=cfg.cae_epochs, batch_size=cfg.batch_size)
    test_mse = float(model.evaluate(prep.x_test, prep.x_test, **PREDICT))
    log.info("CAE test MSE %.5f (%.0f s, %.2f s/epoch)", test_mse, fit.seconds, fit.seconds / fit.epochs_run)
    run.save_model(model, "cae.keras")
    run.save_model(model.get_layer("cae_encoder"), "cae_encoder.keras")
    run.save_model(model.get_layer("cae_decoder"), "cae_decoder.keras")
    plot_loss_curves(loss_curves(fit.history), run.figures / "loss_cae.png", title="CAE: MSE per epoch")
    _reconstructions(model, prep, run, "cae", f"CAE test reconstructions (test MSE {test_mse:.4f})", cfg.seed)
    metrics = {
        "params": cfg.cae,
        "parameters": model.count_params(),
        "epochs_run": fit.epochs_run,
        "train_seconds": round(fit.seconds, 1),
        "seconds_per_epoch": round(fit.seconds / fit.epochs_run, 2),
        "final_val_mse": fit.history["val_loss"][-1],
        "test_mse": test_mse,
    }
    return model, metrics, fit.rows(model="cae")


def compile_vae(vae: keras.Model, learning_rate: float) -> None:
    """Summed binary cross-entropy as the loss (the KL layer adds its term); ``recon`` and
    ``kl`` are logged per epoch."""
    recon = keras.metrics.MeanMetricWrapper(summed_binary_crossentropy, name="recon")
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=summed_binary_crossentropy, metrics=[recon])


def vae_test_terms(vae: keras.Model, x: np.ndarray) -> dict:
    """Test reconstruction, KL and their sum (the negative ELBO, nats per image; one z sample)."""
    ev = vae.evaluate(x, x, return_dict=True, **PREDICT)
    return {
        "recon": float(ev["recon"]),
        "kl": float(ev["kl"]),
        "neg_elbo": float(ev["recon"] + ev["kl"]),
        "loss": float(ev["loss"]),
    }


def train_vae(cfg: RunConfig, prep: Split, run: Run):
    """Train the conv VAE; returns its models, metrics and history."""
    run.seed_model("vae")
    m = build_conv_vae(cfg.latent_vae, cfg.vae_channels, cfg.vae_hidden, cfg.beta, seed=cfg.seed, name="vae")
    compile_vae(m.vae, cfg.vae_learning_rate)
    fit = fit_autoencoder(m.vae, prep, epochs=cfg.vae_epochs, batch_size=cfg.vae_batch_size)
    test = vae_test_terms(m.vae, prep.x_test)
    log.info(
        "VAE test reconstruction %.1f + KL %.1f = -ELBO %.1f nats/image (%.0f s)",
        test["recon"],
        test["kl"],
        test["neg_elbo"],
        fit.seconds,
    )
    run.save_model(m.vae, "vae.keras")
    run.save_model(m.mean_encoder, "vae_encoder.keras")
    run.save_model(m.decoder, "vae_decoder.keras")
    plot_loss_curves(
        loss_curves(fit.history),
        run.figures / "loss_vae.png",
        log_scale=True,
        title="VAE: loss = reconstruction (summed BCE) + beta * KL",
    )
    _reconstructions(m.vae, prep, run, "vae", "VAE test reconstructions (one z sample)", cfg.seed)
    mse = float(
        np.mean((m.decoder.predict(m.mean_encoder.predict(prep.x_test, **PREDICT), **PREDICT) - prep.x_test) ** 2)
    )
    metrics = {
        "latent_dim": cfg.latent_vae,
        "parameters": m.vae.count_params(),
        "epochs_run": fit.epochs_run,
        "train_seconds": round(fit.seconds, 1),
        "beta": cfg.beta,
        "test": test,
        "test_mse_at_mean": mse,
    }
    return m, metrics, fit.rows(model="vae")


def cluster_rows(cfg: RunConfig, prep: Split, codes: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """KMeans (k = ``n_clusters``) fitted on the training side and scored on the test side of each
    code set (standardised) and of the raw pixels, with the same ``kmeans_n_init`` for every row;
    returns ``{row: KMeansEvaluation}``."""
    flat = (prep.x_train.reshape(len(prep.x_train), -1), prep.x_test.reshape(len(prep.x_test), -1))
    inputs = {**{k: (c, "standard") for k, c in codes.items()}, "pixels": (flat, "none")}
    return {
        key: evaluate_kmeans(
            x[0],
            prep.y_train,
            x[1],
            prep.y_test,
            scaling=scaling,
            n_init=cfg.kmeans_n_init,
            random_state=cfg.seed,
            **k_options(cfg),
        )
        for key, (x, scaling) in inputs.items()
    }


def deep_clustering(cfg: RunConfig, prep: Split, run: Run, cae: keras.Model) -> dict:
    """``--cluster dec|idec|n2d`` on the CAE's encoder (and decoder, for IDEC): fitted on the training
    images, scored on the test images."""
    log.info("%s on the CAE encoder", cfg.cluster)
    ev = evaluate_method(
        cfg.cluster,
        cae.get_layer("cae_encoder"),
        prep.x_train,
        prep.y_train,
        prep.x_test,
        prep.y_test,
        decoder=cae.get_layer("cae_decoder"),
        quick=cfg.quick,
        random_state=cfg.seed,
        **k_options(cfg),
    )
    plot_confusion_matrix(
        ev.test_confusion,
        run.figures / f"confusion_cae_{cfg.cluster}.png",
        prep.class_names,
        title=f"{cfg.cluster.upper()} on the CAE encoder (test ACC {ev.test.acc:.3f})",
    )
    run.labels[f"cae_{cfg.cluster}"] = ev.test_clusters
    return {"method": cfg.cluster, **ev.to_dict()}


def analyse_latents(cfg: RunConfig, prep: Split, run: Run, cae: keras.Model, vae) -> dict:
    """PCA/t-SNE maps, generation from both models, KMeans on codes and on pixels."""
    encoders = {"cae": cae.get_layer("cae_encoder"), "vae": vae.mean_encoder}
    decoders = {"cae": cae.get_layer("cae_decoder"), "vae": vae.decoder}
    out: dict = {"maps": {}, "kmeans": {}}
    codes = {}
    for key, enc in encoders.items():
        codes[key] = (enc.predict(prep.x_train, **PREDICT), enc.predict(prep.x_test, **PREDICT))
        for method in ("pca", "tsne"):
            lm = latent_map(codes[key][1], prep.y_test, method=method, seed=cfg.seed, max_points=cfg.tsne_points)
            plot_latent_map(
                lm,
                run.figures / f"latent_{key}_{method}.png",
                prep.class_names,
                title=f"{key.upper()} test codes: {method.upper()} of {len(lm.xy)} points ({lm.seconds:.1f} s)",
            )
            out["maps"][f"{key}_{method}"] = {"points": len(lm.xy), "seconds": round(lm.seconds, 2)}
            log.info("%s %s map of %d codes: %.1f s", key, method, len(lm.xy), lm.seconds)
    log.info("KMeans on the codes and on raw pixels (%d restarts each)", cfg.kmeans_n_init)
    for key, ev in cluster_rows(cfg, prep, codes).items():
        out["kmeans"][key] = {**ev.to_dict(), "n_init": cfg.kmeans_n_init}
        run.labels[f"{key}_kmeans"] = ev.test_clusters  # the test images' clusters, in their order
        if key in encoders:
            plot_confusion_matrix(
                ev.test_confusion,
                run.figures / f"confusion_{key}.png",
                prep.class_names,
                title=f"KMeans on {key.upper()} codes (test ACC {ev.test.acc:.3f})",
            )
        if ev.k_choice is not None:
            plot_k_choice(
                ev.k_choice.to_dict(), run.figures / f"k_choice_{key}.png", title=f"k chosen on the {key} training rows"
            )

    z_vae = prior_samples(64, cfg.latent_vae, cfg.seed)
    gauss = fit_gaussian(codes["cae"][0])
    z_cae = gauss.sample(64, cfg.seed)
    z_cae_prior = prior_samples(64, codes["cae"][0].shape[1], cfg.seed)
    plot_image_grids(
        [
            ("VAE decoder, z ~ N(0, I)", decoders["vae"].predict(z_vae, verbose=0)),
            ("CAE decoder, z ~ Gaussian fitted to its codes", decoders["cae"].predict(z_cae, verbose=0)),
            ("CAE decoder, z ~ N(0, I)", decoders["cae"].predict(z_cae_prior, verbose=0)),
        ],
        run.figures / "generated.png",
        title="64 generated images per model",
    )
    out["generation"] = {
        "samples": 64,
        "cae_code_mean_norm": float(np.linalg.norm(gauss.mean)),
        "cae_code_std": [float(s) for s in np.sqrt(np.diag(gauss.cov))],
    }
    if cfg.latent_vae == 2:
        grid = latent_grid(15)
        plot_image_grids(
            [("VAE decoder over the 2-D prior (5 %..95 % quantiles)", decoders["vae"].predict(grid, verbose=0))],
            run.figures / "traversal_vae.png",
            ncols=15,
        )
        lm = latent_map(codes["vae"][1], prep.y_test, method="identity", seed=cfg.seed, max_points=cfg.tsne_points)
        plot_latent_map(lm, run.figures / "latent_vae_raw.png", prep.class_names, title="VAE z_mean (2-D)")
        out["generation"]["traversal"] = "traversal_vae.png"
    return out


def train_classifiers(cfg: RunConfig, prep: Split, run: Run, cae: keras.Model) -> tuple[dict, list]:
    """Transfer learning from the CAE encoder: frozen encoder, then full fine-tuning.

    Both use Adam at ``clf_learning_rate`` on the head with ``clf_schedule``; when fine-tuned,
    the encoder learns at ``clf_encoder_lr_factor`` times the head's rate. With
    ``clf_patience`` > 0 training stops that many epochs after the best validation accuracy
    and keeps the best epoch's weights.
    """
    encoder = cae.get_layer("cae_encoder")
    metrics, rows = {}, []
    steps = cfg.clf_epochs * math.ceil(len(prep.x_train) / cfg.batch_size)
    for mode, freeze in (("frozen", True), ("finetuned", False)):
        run.seed_model(f"classifier_{mode}")
        clf = build_transfer_classifier(
            encoder,
            n_classes=len(prep.class_names),
            hidden_units=cfg.clf_hidden,
            freeze=freeze,
            name=f"classifier_{mode}",
        )
        compile_transfer_classifier(
            clf,
            cfg.clf_learning_rate,
            encoder_lr_factor=cfg.clf_encoder_lr_factor,
            schedule=cfg.clf_schedule,
            decay_steps=steps,
        )
        stop = best_val_accuracy(cfg.clf_patience) if cfg.clf_patience else None
        before = [w.copy() for w in clf.get_layer(f"classifier_{mode}_encoder").get_weights()]
        fit = fit_model(
            clf,
            prep.x_train,
            prep.y_train,
            (prep.x_val, prep.y_val),
            epochs=cfg.clf_epochs,
            batch_size=cfg.batch_size,
            callbacks=[stop] if stop else (),
        )
        after = clf.get_layer(f"classifier_{mode}_encoder").get_weights()
        unchanged = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        loss, acc = clf.evaluate(prep.x_test, prep.y_test, **PREDICT)
        val = fit.history["val_accuracy"]
        best = stop.best_epoch if stop else len(val) - 1
        log.info(
            "classifier (%s encoder): test accuracy %.4f, weights of epoch %d of %d (%.0f s)",
            mode,
            acc,
            best + 1,
            fit.epochs_run,
            fit.seconds,
        )
        run.save_model(clf, f"classifier_{mode}.keras")
        plot_loss_curves(
            loss_curves(fit.history),
            run.figures / f"classifier_{mode}.png",
            title=f"classifier, {mode} encoder: NLL and accuracy",
        )
        metrics[mode] = {
            "test_accuracy": float(acc),
            "test_nll": float(loss),
            "epochs_run": fit.epochs_run,
            "best_epoch": best + 1,
            "best_val_accuracy": float(val[best]),
            "train_seconds": round(fit.seconds, 1),
            "encoder_weights_unchanged": unchanged,
            "trainable_parameters": int(sum(np.prod(w.shape) for w in clf.trainable_weights)),
        }
        rows += fit.rows(model=f"classifier_{mode}")
    return metrics, rows
