"""``report.md`` and the printed tables of ``fashion-cae`` runs and searches."""

from __future__ import annotations

from keras_clust.markdown import WITH_SILHOUETTE, k_cell, k_chosen_text, k_text, markdown_table, score_cells
from keras_clust.tuning.results import search_section

REPORT_BEST_MSE = 0.0166


def kmeans_rows(metrics: dict) -> list[dict]:
    rows = []
    for key, label in (("cae", "CAE codes"), ("vae", "VAE z_mean"), ("pixels", "raw pixels")):
        t = metrics["kmeans"][key]["test"]
        rows.append({"input": label, **k_cell(metrics["kmeans"][key]), **score_cells(t, WITH_SILHOUETTE)})
    if "deep_cluster" in metrics:
        d = metrics["deep_cluster"]
        rows.insert(1, {"input": f"CAE encoder + {d['method'].upper()}", **k_cell(d), **score_cells(d["test"])})
    return rows


def summary_rows(metrics: dict) -> list[dict]:
    """One line per headline number of a run."""
    c, v, t = metrics["cae"], metrics["vae"], metrics["transfer"]
    return [
        {"result": "CAE test MSE", "value": c["test_mse"], "reference": f"report {REPORT_BEST_MSE}; aim <= 0.012"},
        {
            "result": "VAE test -ELBO (nats/image)",
            "value": v["test"]["neg_elbo"],
            "reference": f"recon {v['test']['recon']:.1f} + KL {v['test']['kl']:.1f}",
        },
        {
            "result": "classifier, frozen encoder: test accuracy",
            "value": t["frozen"]["test_accuracy"],
            "reference": "report 0.78; aim >= 0.82",
        },
        {
            "result": "classifier, fine-tuned: test accuracy",
            "value": t["finetuned"]["test_accuracy"],
            "reference": "aim >= 0.90",
        },
        {
            "result": "KMeans ACC on CAE codes",
            "value": metrics["kmeans"]["cae"]["test"]["acc"],
            "reference": f"raw pixels {metrics['kmeans']['pixels']['test']['acc']:.3f}",
        },
    ]


def render_run_report(cfg, metrics: dict) -> str:
    src, c, v = metrics["data"], metrics["cae"], metrics["vae"]
    maps = metrics["analysis"]["maps"]
    lines = [
        f"# fashion-cae run `{metrics['run_id']}`",
        "",
        "Convolutional autoencoder (the report's architecture), conv VAE, latent maps, generation, "
        "KMeans on the codes and transfer learning on Fashion-MNIST.",
        "",
        f"**Data:** {src['note']}; train {metrics['n_train']}, validation {metrics['n_val']}, "
        f"test {metrics['n_test']}" + (" (quick mode: a subsample, 1-2 epochs)" if cfg.quick else "") + ".",
        "",
        f"**CAE hyper-parameters:** {c['params']}"
        + (f" (best of tune run `{cfg.params_from}`)" if cfg.params_from else " (the report's best)")
        + f"; {c['epochs_run']} epochs, batch {cfg.batch_size}; {c['seconds_per_epoch']} s/epoch.",
        "",
        "## Results (test set)",
        "",
        markdown_table(summary_rows(metrics)),
        "",
        "## CAE",
        "",
        "![loss](figures/loss_cae.png)",
        "![reconstructions](figures/reconstructions_cae.png)",
        "",
        "## VAE",
        "",
        f"Latent {v['latent_dim']}, beta {v['beta']}, {v['epochs_run']} epochs ({v['train_seconds']} s). "
        f"Test: reconstruction {v['test']['recon']:.2f} + KL {v['test']['kl']:.2f} = negative ELBO "
        f"{v['test']['neg_elbo']:.2f} nats per image (summed binary cross-entropy, one z sample per image); "
        f"MSE of the reconstruction from z_mean {v['test_mse_at_mean']:.4f}.",
        "",
        "![loss](figures/loss_vae.png)",
        "![reconstructions](figures/reconstructions_vae.png)",
        "",
        "## Latent space",
        "",
        f"t-SNE of {maps['cae_tsne']['points']} test codes took {maps['cae_tsne']['seconds']} s (CAE) and "
        f"{maps['vae_tsne']['seconds']} s (VAE); PCA {maps['cae_pca']['seconds']} s / {maps['vae_pca']['seconds']} s.",
        "",
        "| | PCA | t-SNE |",
        "|---|---|---|",
        "| CAE | ![](figures/latent_cae_pca.png) | ![](figures/latent_cae_tsne.png) |",
        "| VAE | ![](figures/latent_vae_pca.png) | ![](figures/latent_vae_tsne.png) |",
        "",
        "## Generation",
        "",
        "The VAE decodes draws from its prior N(0, I); the CAE has no prior, so its draws come from a "
        "Gaussian fitted to its training codes (and, for contrast, from N(0, I), which lies off its code "
        "distribution).",
        "",
        "![generated](figures/generated.png)",
        "",
    ]
    if "traversal" in metrics["analysis"]["generation"]:
        lines += ["![traversal](figures/traversal_vae.png)", "![raw latent](figures/latent_vae_raw.png)", ""]
    lines += [
        f"## KMeans ({k_text(cfg)}) on the codes",
        "",
        f"Fitted on the training codes (standardised), scored on the test codes; ACC after Hungarian "
        f"matching of clusters to classes; {cfg.kmeans_n_init} restarts for every row."
        + ("" if cfg.n_clusters is not None else f" {k_chosen_text(cfg)}"),
        "",
        markdown_table(kmeans_rows(metrics)),
        "",
        "![confusion CAE](figures/confusion_cae.png)",
        "![confusion VAE](figures/confusion_vae.png)",
        *([f"![{cfg.cluster}](figures/confusion_cae_{cfg.cluster}.png)"] if "deep_cluster" in metrics else []),
        *[f"![k choice {key}](figures/k_choice_{key}.png)" for key, e in metrics["kmeans"].items() if "k" in e],
        "",
        "## Transfer learning",
        "",
        f"Encoder of the CAE + Dense({cfg.clf_hidden}, ReLU) + Dense(10) + log-softmax, negative "
        f"log-likelihood. Adam, head learning rate {cfg.clf_learning_rate:g} ({cfg.clf_schedule} schedule); "
        f"fine-tuned, the encoder learns at {cfg.clf_encoder_lr_factor:g} times that rate. "
        + (
            f"Training stops {cfg.clf_patience} epochs after the best validation accuracy and keeps that "
            f"epoch's weights (at most {cfg.clf_epochs} epochs)."
            if cfg.clf_patience
            else f"{cfg.clf_epochs} epochs, the last epoch's weights kept."
        ),
        "",
        markdown_table(
            [
                {
                    "mode": m,
                    "test accuracy": r["test_accuracy"],
                    "test NLL": r["test_nll"],
                    "trainable params": r["trainable_parameters"],
                    "epochs": r["epochs_run"],
                    "kept epoch": r.get("best_epoch", r["epochs_run"]),
                    "encoder unchanged": r["encoder_weights_unchanged"],
                }
                for m, r in metrics["transfer"].items()
            ]
        ),
        "",
        "![frozen](figures/classifier_frozen.png)",
        "![fine-tuned](figures/classifier_finetuned.png)",
    ]
    return "\n".join(lines)


def engine_rows(metrics: dict) -> list[dict]:
    rows = []
    for e in metrics["engines"].values():
        s = e["summary"]
        rows.append(
            {
                "engine": s["engine"],
                "algorithm": s["algorithm"],
                "best val MSE": s["best_value"],
                "trials": s["trials"],
                "complete": s["complete"],
                "pruned": s["pruned"],
                "failed": s["failed"],
                "search s": round(s["seconds"]),
                "test MSE (best trial)": e["test"].get("checkpoint_test_mse"),
                "test MSE (retrained)": e["test"].get("final_test_mse"),
            }
        )
    return rows


def engine_table(metrics: dict) -> str:
    """The engines side by side (Markdown), as printed and as written to report.md."""
    return markdown_table(engine_rows(metrics), floatfmt=".4g")


def render_tune_report(cfg, metrics: dict, earlier: list[dict]) -> str:
    src = metrics["data"]
    lines = [
        f"# fashion-cae tune `{metrics['run_id']}`",
        "",
        f"**Data:** {src['note']}; train {metrics['n_train']}, validation {metrics['n_val']}, "
        f"test {metrics['n_test']}" + (" (quick mode)" if cfg.quick else "") + ".",
        "",
        f"**Search:** validation MSE after {cfg.epochs} epochs per trial, batch {cfg.batch_size}, "
        f"up to {cfg.trials} trials, seed {cfg.seed}. The best configuration is then retrained for "
        f"{cfg.final_epochs} epochs and scored on the test set (the report's best: {REPORT_BEST_MSE}).",
        "",
        "## Engines",
        "",
        engine_table(metrics),
        "",
        f"**Best configuration** ({metrics['best_engine']}): `{metrics['best_params']}`",
        "",
    ]
    if earlier:
        lines += ["## Earlier tune runs under the same folder", "", markdown_table(earlier), ""]
    for name, e in metrics["engines"].items():
        lines += search_section(name, e)
        for fig in e["figures"]:
            lines.append(f"![{fig}](figures/{name}_{fig}.png)")
        lines += ["", f"![reconstructions](figures/reconstructions_{name}.png)", ""]
    return "\n".join(lines) + "\n"
