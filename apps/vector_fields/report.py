"""``report.md`` and the printed summaries of ``vector-fields run`` and ``cluster``."""

from __future__ import annotations

from keras_clust.markdown import format_params, markdown_figure, markdown_table, score_cells

#: The slides' reconstruction losses (their own fields, not ours): for the record only.
SLIDES_MSE = {"DBSCAN solution": 0.007, "KMeans solution": 0.013}

NOTES = """\
## Notes on the slides

- **Architecture.** The `report` preset is the slides' winner: 5 layers, channels 11/10/12/10/3, pools
  2/2/2/2/5, SELU/Softplus/Tanh/Softplus/Tanh. The slides name only the first kernel (9x9); the others (10, 13, 4,
  11) are read off their parameter table (in * out * k^2 + out), which this encoder reproduces exactly (39,549
  parameters). Dilations are not recoverable and are 1.
- **Decoder.** The slides' decoder unpooled with the encoder's max-pooling indices, which hands it where every
  maximum was: information that never passes through the 3-number embedding. This decoder upsamples instead, so its
  reconstruction error measures the embedding alone (and is not comparable to the slides' 0.007 / 0.013, which
  were also on other data).
- **Modified silhouette.** A cluster "cuts" when at least one of its members has a silhouette above the overall
  mean. The study (NSGA-II) maximises the mean silhouette (DBSCAN's noise points counted as 0, so calling the hard
  points noise does not pay) and the *share* of clusters that cut: the slides' count of cutting clusters grows with
  the number of clusters (nearly every cluster has one good member), so maximising it rewards splitting; the count
  is offered as `--objectives silhouette,knife_count`. The optional third objective `spacing` is the standard
  deviation of the centroid distances divided by their mean (scale-free). The chosen solution is the Pareto point
  closest to the ideal point after scaling each objective to [0, 1] over the front (`--choose knee`).
- **Latent size.** The slides' embedding has 3 numbers; the default here is 8, chosen on other fields than the ones
  reported (generator seeds 11 and 7): the validation MSE fell from 0.103 to 0.054 and the study's chosen
  clustering went from 4 clusters (ACC 0.36) to 15 (ACC 0.59). `--latent 3` gives the slides' network exactly.
"""


def score_rows(clustering: dict) -> list[dict]:
    names = {
        "by_type": "by flow type: k from the data (the default)",
        "chosen": "NSGA-II study on the codes (the slides)",
        "kmeans_codes_true_k": "KMeans on codes, true k",
        "kmeans_raw_true_k": "KMeans on raw fields, true k",
    }
    scores = clustering.get("scores", {})
    names.update({f"{m}_true_k": f"{m.upper()} on the encoder, true k" for m in ("dec", "idec", "n2d")})
    return [
        {
            "clustering": names.get(k, k),
            **score_cells(v),
            "clusters": v["clusters"],
            "noise": v["noise"],
        }
        for k, v in scores.items()
    ]


def pareto_rows(clustering: dict) -> list[dict]:
    rows = []
    for p in clustering["study"]["pareto"]:
        rows.append(
            {
                "trial": p["number"],
                "algorithm": p["algorithm"],
                "params": format_params(p["params"]),
                **{k: v for k, v in p["objectives"].items()},
                "clusters": p["n_clusters"],
                "noise": p["noise"],
            }
        )
    return rows


def by_type_lines(by_type: dict) -> list[str]:
    """The default clustering: how k came about, in one paragraph."""
    choice = by_type["k_choice"]
    how = "given (`--k`)"
    if choice is not None:
        low, high = choice["ks"][0], choice["ks"][-1]
        best = max(choice["scores"])
        how = f"chosen among {low}-{high} by the mixtures' silhouette (best {best:.3f}; one cluster below 0.25)"
    lines = [
        "## Clustering by flow type (the default)",
        "",
        f"Every field divided by its norm (a type is a shape, its strength is not), N2D's UMAP map of them, a "
        f"full-covariance Gaussian mixture: **k = {by_type['k']}**, {how}; {by_type['seconds']} s. Labels of "
        "every field, in the data's row order: `labels.npy`.",
        "",
    ]
    if choice is not None:
        lines.append(markdown_figure("k_choice.png", "the silhouette of each k tried; the star is the k chosen"))
    return lines


def clustering_section(clustering: dict) -> list[str]:
    ch = clustering["chosen"]
    st = clustering["study"]
    params = format_params(ch["params"])
    lines = [
        *(by_type_lines(clustering["by_type"]) if "by_type" in clustering else []),
        "## Clustering the codes: the slides' study",
        "",
        f"A multi-objective Optuna study (NSGA-II, {st['trials']} trials, {st['seconds']} s) over "
        f"{' and '.join(st['settings']['algorithms'])}, objectives {', '.join(st['settings']['objectives'])}, "
        f"on {clustering['codes']} codes. **Chosen** (`--choose {st['settings']['choose']}`): trial {ch['number']}, "
        f"{ch['algorithm']} ({params}): {ch['n_clusters']} clusters, silhouette {ch['silhouette']:.3f}, "
        f"{ch['cutting_clusters']} cutting clusters, {ch['noise']} noise points ({100 * ch['noise_share']:.1f} %).",
        "",
        "Pareto front:",
        "",
        markdown_table(pareto_rows(clustering), floatfmt=".4g"),
    ]
    if "scores" in clustering:
        lines += [
            "Against the true flow types (ACC with Hungarian matching, DBSCAN noise counted as wrong; NMI with "
            "the arithmetic mean; both KMeans rows get the true number of types and the same n_init):",
            "",
            markdown_table(score_rows(clustering), floatfmt=".3f"),
        ]
    names = clustering["figures"]
    captions = {
        "pareto_front.png": "the study's trials and Pareto front, the chosen solution marked",
        "silhouette_knives.png": "silhouette knives of the chosen clustering (dashed: overall mean)",
        "latent_3d.png": "the codes in 3-D, by cluster and by true type",
        "latent_2d_clusters.png": "2-D map of the codes by cluster",
        "latent_2d_types.png": "2-D map of the codes by true type",
        "cluster_examples.png": "example fields of each cluster",
        "confusion_chosen.png": "chosen clusters (matched) against the true types",
        "k_choice.png": None,
    }
    for name in names:
        if captions.get(name, name) is not None:  # k_choice.png is drawn with the default clustering
            lines.append(markdown_figure(name, captions.get(name, name)))
    return lines


def render_report(cfg, metrics: dict) -> str:
    d, m = metrics["data"], metrics["model"]
    t = m["test"]
    lines = [
        f"# vector-fields `{metrics['run_id']}`",
        "",
        "A convolutional autoencoder embeds 2-D vector fields into a few numbers. The fields are clustered by "
        "flow type with the number of types found from the data; a multi-objective study clusters the embeddings "
        "as the slides did.",
        "",
        "## Data",
        "",
        f"{d['fields']} fields of shape {tuple(d['shape'])} (channels {', '.join(d['channels'])}); split "
        f"train {d['split']['train']} / validation {d['split']['val']} / test {d['split']['test']}; the models "
        f"divide the fields by the training RMS {d['scale']:.4g}.",
        "",
    ]
    if d.get("classes"):
        lines.append(markdown_figure("flow_types.png", "three generated fields of each flow type (quiver)"))
    lines += [
        "## Autoencoder",
        "",
        f"{m['describe']}; latent {m['architecture']['latent']}"
        + (f" (from `{cfg.params_from}`)" if cfg.params_from else " (the slides' winner: the `report` preset)")
        + ". "
        f"{m['parameters']} parameters; estimated training memory {m['estimated_training_mib']} MiB at batch "
        f"{cfg.batch_size}, {m['train_gmacs_per_field']} GMAC per field per training step.",
        "",
        f"Trained {m['epochs_run']} epochs ({m['seconds']} s, {m['seconds_per_epoch']} s/epoch; "
        + (f"best epoch {m['best_epoch']} kept" if m.get("best_epoch") else "the last epoch kept")
        + f") on {'the negative ELBO (VAE)' if cfg.vae else cfg.loss}.",
        "",
        markdown_table(
            [
                {
                    "test MSE": t["mse"],
                    "test weighted MSE": t["weighted_mse"],
                    "field variance": t["variance"],
                    "MSE / variance": t["mse"] / t["variance"],
                    **{f"MSE {c}": v for c, v in t["mse_per_channel"].items()},
                }
            ],
            floatfmt=".4g",
        ),
        f"(The slides reported {SLIDES_MSE['DBSCAN solution']} and {SLIDES_MSE['KMeans solution']} on their own "
        "fields with an unpooling decoder; see the notes.)",
        "",
        markdown_figure("loss.png", "training and validation loss per epoch"),
    ]
    if len(d["channels"]) >= 2:
        lines.append(
            markdown_figure(
                "reconstructions.png",
                "test fields (left) and their reconstructions (right), streamlines coloured by speed",
            )
        )
    lines += clustering_section(metrics["clustering"])
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


def summary(cfg, metrics: dict) -> str:
    m = metrics["model"]
    c = metrics["clustering"]
    ch = c["chosen"]
    lines = [
        f"autoencoder: {m['describe']}, latent {m['architecture']['latent']}: test MSE {m['test']['mse']:.4g} "
        f"({m['epochs_run']} epochs, {m['seconds']} s)",
        f"NSGA-II study: {ch['algorithm']} {ch['params']}: {ch['n_clusters']} clusters, "
        f"silhouette {ch['silhouette']:.3f}, noise {ch['noise']}",
    ]
    if "by_type" in c:
        made = "chosen" if c["by_type"]["k_choice"] is not None else "given"
        lines.insert(1, f"clustering by flow type: k = {c['by_type']['k']} ({made}); labels.npy in the run folder")
    if "scores" in c:
        lines.append(markdown_table(score_rows(c), floatfmt=".3f").rstrip("\n"))
    return "\n".join(lines) + "\n"
