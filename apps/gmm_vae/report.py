"""Tables and the report of ``gmm-vae run``: rows across mixtures, per mixture, the first mixture's figures."""

from __future__ import annotations

import numpy as np

from keras_clust.apps.gmm_vae.config import Config, ModelSettings
from keras_clust.markdown import markdown_table

#: Name of the row that scores samples of the true mixture itself.
REFERENCE = "true mixture"

#: (column, path into a row's metrics, scale)
SUMMARY_COLUMNS = (
    ("modes", ("modes", "modes_captured_weighted"), 1),
    ("modes >= min share", ("modes", "modes_captured_min_share"), 1),
    ("modes >= 1 sample", ("modes", "modes_captured"), 1),
    ("HQ % (3 sd)", ("modes", "high_quality_fraction"), 100),
    ("HQ % (chi2)", ("modes", "high_quality_fraction_chi2"), 100),
    ("samples: modes", ("modes_samples", "modes_captured_weighted"), 1),
    ("samples: modes >= min share", ("modes_samples", "modes_captured_min_share"), 1),
    ("samples: HQ % (3 sd)", ("modes_samples", "high_quality_fraction"), 100),
    ("-ELBO nats", ("heldout_elbo", "neg_elbo"), 1),
    ("train s", ("train_seconds",), 1),
)


#: The figures of each model in the report, by caption (``{key}``: the model's name).
MODEL_FIGURES = {
    "samples": "samples_{key}.png",
    "samples min-max": "samples_{key}_minmax.png",
    "k": "kselect_{key}.png",
    "loss": "loss_{key}.png",
    "t-SNE": "latent_tsne_{key}.png",
}


def objective(s: ModelSettings | dict) -> str:
    """What a row's training objective is, in a few words."""
    s = s if isinstance(s, dict) else s.__dict__
    if s["recon_loss"] == "mean-mse":
        if s["beta"] == 1:
            return "mean MSE + KL (the write-up's) = ELBO of sigma^2 = d/2"
        return f"mean MSE + {s['beta']:g} KL = ELBO of sigma^2 = {s['beta']:g} d/2"
    sigma = "learned sigma" if s["sigma"] is None else f"sigma {s['sigma']:g}"
    prior = " to a mixture prior" if s.get("prior") == "mixture" else ""
    return f"Gaussian NLL ({sigma}) + {'' if s['beta'] == 1 else format(s['beta'], 'g') + ' '}KL{prior}"


def _get(m: dict, path: tuple[str, ...]) -> float:
    for key in path:
        m = m[key]
    return float(m)


def summarise(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value), min and max of a row's values over mixtures."""
    a = np.asarray(values, np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
        "values": a.tolist(),
    }


def summary(metrics: dict) -> dict:
    """``{row: {column: summarise(values over mixtures)}}``."""
    out = {}
    for row in metrics["rows"]:
        out[row] = {
            col: summarise([_get(mix["models"][row], path) * scale for mix in metrics["mixtures"].values()])
            for col, path, scale in SUMMARY_COLUMNS
        }
    mixtures = metrics["mixtures"].values()
    out[REFERENCE] = {
        col: summarise([_get(mix["reference"], path) * scale for mix in mixtures])
        for col, path, scale in SUMMARY_COLUMNS
        if path[0] == "modes"
    }
    out[REFERENCE]["-ELBO nats"] = summarise([mix["true_nll"] for mix in mixtures])  # the true NLL
    return out


def _cell(s: dict, digits: int) -> str:
    if s["sd"] == 0 and s["min"] == s["max"]:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def summary_rows(metrics: dict) -> list[dict]:
    """The headline table: each row's mean ± sd (min–max) over the run's mixtures."""
    digits = {
        "modes": 1,
        "modes >= min share": 1,
        "modes >= 1 sample": 1,
        "HQ % (3 sd)": 1,
        "HQ % (chi2)": 1,
        "samples: modes": 1,
        "samples: modes >= min share": 1,
        "samples: HQ % (3 sd)": 1,
        "-ELBO nats": 3,
        "train s": 0,
    }
    rows = []
    for row, cols in metrics["summary"].items():
        if row == REFERENCE:
            rows.append(
                {
                    "row": row,
                    "objective": "samples of the true mixture; -ELBO column: its true NLL",
                    "model": "",
                    **{c: _cell(cols[c], digits[c]) for c in digits if c in cols},
                }
            )
            continue
        s = metrics["mixtures"][next(iter(metrics["mixtures"]))]["models"][row]["settings"]
        rows.append(
            {
                "row": row,
                "objective": objective(s),
                "model": f"{','.join(map(str, s['hidden_units']))}, {s['epochs']} ep {s['schedule']}",
                **{c: _cell(cols[c], digits[c]) for c in digits},
            }
        )
    return rows


def per_mixture_rows(metrics: dict) -> list[dict]:
    rows = []
    for key, mix in metrics["mixtures"].items():
        for row, m in [*mix["models"].items(), (REFERENCE, mix["reference"])]:
            md = m["modes"]
            rows.append(
                {
                    "mixture": key,
                    "row": row,
                    "modes": f"{md['modes_captured_weighted']}/{md['n_components']}",
                    "modes >= min share": md["modes_captured_min_share"],
                    "modes >= 1 sample": md["modes_captured"],
                    "HQ % (3 sd)": f"{100 * md['high_quality_fraction']:.1f}",
                    "HQ % (chi2)": f"{100 * md['high_quality_fraction_chi2']:.1f}",
                    "samples: modes": m["modes_samples"]["modes_captured_weighted"] if "modes_samples" in m else None,
                    "samples: HQ %": f"{100 * m['modes_samples']['high_quality_fraction']:.1f}"
                    if "modes_samples" in m
                    else None,
                    "reverse KL": md["reverse_kl"],
                    "-ELBO nats": m["heldout_elbo"]["neg_elbo"] if "heldout_elbo" in m else None,
                    "KL nats": m["heldout_elbo"]["kl"] if "heldout_elbo" in m else None,
                    "true NLL nats": mix["true_nll"],
                    "KMeans k (silhouette)": m["kmeans_minmax"]["best_k_silhouette"] if "kmeans_minmax" in m else None,
                }
            )
    return rows


def render_report(cfg: Config, metrics: dict) -> str:
    mixtures = metrics["mixtures"]
    first_key = next(iter(mixtures))
    first = mixtures[first_key]
    md0 = first["models"][metrics["rows"][0]]["modes"]
    n_gen, need = cfg.generated, metrics["min_share_samples"]
    sources = "; ".join(f"{k}: {m['source']}" for k, m in mixtures.items())
    lines = [
        f"# gmm-vae run `{metrics['run_id']}`",
        "",
        f"**Data:** {len(mixtures)} mixture(s) of {first['n_components']} Gaussians in {first['dim']}-D "
        f"({sources}). Per mixture {cfg.samples} training "
        f"samples and {cfg.samples} held-out samples; inputs standardised per column for training. Presets were "
        "chosen on other mixtures (seeds 100-104, `apps/gmm_vae/preset_sweep.md`; its mixture-prior candidates "
        "were designed on seeds 200-204 and narrow-mode 2-D 300-304, docs/gmm-vae.md), not on these.",
        "",
        "**Rows (training objectives):**",
        "",
        '- `report-mse`: the write-up\'s exact objective, Keras `loss="mse"` (the mean over the d features) '
        "plus the KL summed over latent dimensions. That is the negative ELBO (up to constants) of a Gaussian "
        "decoder with a fixed variance of d/2 per standardised feature, more than the data's whole variance "
        "(1): the latent code can buy at most d / (2 * d/2) = 1 nat of reconstruction per sample, less than "
        "the KL of telling the components apart, and training finds the collapsed solution (KL about 0, every "
        "prior draw decoded near the data mean).",
        "- `report`: the same model and training, the reconstruction term written as the Gaussian negative "
        "log-likelihood summed over features with a learned sigma per feature (constants included), so "
        "beta = 1 is the ELBO itself.",
        "- `tuned` (the default): the preset chosen by the sweep on mixtures 100-104: a wider network trained "
        "longer, with a learned Gaussian-mixture prior refitted by EM to the codes every few epochs and KL "
        "warm-up; its samples are drawn from that prior (the N(0, I) prior decodes the space between the modes "
        "into samples between them).",
        "",
        f"**-ELBO:** nats per sample on the held-out samples, {cfg.elbo_draws} latent draws each, evaluated at "
        "beta = 1 with the likelihood each row was trained with (for `mean-mse`, sigma^2 = beta d/2), constants "
        "included and in data units (the standardisation's log Jacobian, sum of log std, added). It is an upper "
        "bound of -log p(x); `true NLL` is -log p(x) under the true mixture, the floor it could reach.",
        "",
        f"**Scoring:** {n_gen} draws from each row's prior (N(0, I), or the learned mixture) through the decoder. "
        "The first columns score the decoder's means (as the write-up did); the `samples:` columns score "
        "samples of the decoder's likelihood, the means plus the row's own observation noise (its sigma; for "
        "`mean-mse` the implied sqrt(beta d/2)), in data units. A generated "
        f"sample is *high quality (3 sd)* when its Mahalanobis distance to the nearest component is <= "
        f"{cfg.threshold:g}, the VEEGAN/PacGAN rule and the headline; in {first['dim']}-D that radius holds "
        f"P(chi2_{first['dim']} <= {cfg.threshold**2:g}) = {md0['threshold_share']:.3f} of a component's own "
        f"samples. *HQ (chi2)* uses the radius {md0['chi2_radius']:.3f} = sqrt(chi2_{first['dim']} quantile "
        f"{cfg.chi2_quantile:g}), which holds {cfg.chi2_quantile:g} of a component's own samples in any "
        f"dimension. A mode is *captured* (headline `modes`) when its high-quality (3 sd) samples reach "
        f"{cfg.mode_share:g} of those the mixture's own {n_gen} samples give it on average ({n_gen} x its weight "
        f"x {md0['threshold_share']:.3f}), and at least one: a light mode needs few samples, a heavy one many. "
        f"`modes >= min share` asks every mode for {100 * cfg.min_share:g} % of all samples ({need} of {n_gen}), "
        "more than a mode lighter than that gets even from the mixture itself; the lenient count needs one. "
        "Reverse KL is KL(q || p) of the histogram q of nearest components against the true weights p. The "
        f"write-up's method is KMeans on the min-max scaled generated samples, k by silhouette over 2..{cfg.k_max}.",
        "",
        f"## Summary over {len(mixtures)} mixture(s): mean ± sd (min–max)",
        "",
        markdown_table(summary_rows(metrics)),
        "",
        f"The `{REFERENCE}` row scores {n_gen} fresh samples of each true mixture with the same metric: the "
        "ceiling of every row (in `modes >= min share`, a component lighter than the minimum share is often "
        "missed even by the mixture's own samples); its -ELBO cell is the true NLL of the held-out samples. "
        "Wall time of the "
        f"whole run: {metrics['total_seconds']} s.",
        "",
        "## Per mixture",
        "",
        markdown_table(per_mixture_rows(metrics), floatfmt=".3f"),
        "",
        f"## Mixture {first_key}: losses and figures",
        "",
    ]
    for key, m in first["models"].items():
        lines += [
            f"**{key}:** "
            + ", ".join(f"epoch {e}: {v:.4f}" for e, v in m["loss_at"].items())
            + f"; final KL {m['final_kl']:.3f}; sigma per standardised feature "
            + ", ".join(f"{v:.3f}" for v in m["sigma"])
            + f"; {m['train_seconds']} s.",
            "",
        ]
    lines += [
        "The write-up scaled the true and the generated samples to [0, 1] per column, each set on its own. "
        "That stretches any generated cloud, however narrow or displaced, over the same unit cube as the "
        "data, so a collapsed generator can look as if it covers the data. The data-unit figures share "
        "one set of axes and show where the generated samples really fall relative to the component means "
        "(black crosses).",
        "",
    ]
    for key, m in first["models"].items():
        lines += [f"### {key}", "", *(f"![{c}](figures/{f.format(key=key)})" for c, f in MODEL_FIGURES.items())]
        if m["settings"]["latent_dim"] == 2:
            lines.append(f"![latent](figures/latent_raw_{key}.png)")
        lines += [
            "",
            f"t-SNE of the {cfg.samples} codes took {m['tsne_seconds']} s. High-quality (3 sd) samples "
            f"per component: {m['modes']['hq_counts']}; the mixture's own samples give on average "
            f"{[round(v, 1) for v in m['modes']['expected_hq_counts']]}.",
            "",
        ]
    lines += [
        f"Models saved and exported: row `{metrics['primary']}` trained on mixture {first_key} "
        "(`export --row` serves another row).",
        "",
    ]
    return "\n".join(lines) + "\n"
