"""``report.md`` and the printed summary of an ``lj-fluid run``."""

from __future__ import annotations

from apps.lj_fluid.config import Config
from apps.lj_fluid.pipeline import VIEW_NAMES, VIEWS
from keras_clust.runs import markdown_table

SEED_NOTES = """\
## Notes on the write-up

- **Gravity's sign.** The slides write U' = 4[(1/r')^12 - (1/r')^6] **-** (mg sigma/eps) r'_z, which lowers the
  energy with height (particles would pile up at the ceiling). Gravity raises it: this code uses
  U' = sum_pairs 4[(1/r')^12 - (1/r')^6] **+** 4 gamma sum_i z'_i with gamma = mg sigma / (4 eps).
- **Metropolis acceptance.** The slides accept every move with dU >= 0 and the others with probability
  exp(-dU/T), the rule inverted. This code accepts dU <= 0 always and dU > 0 with probability exp(-dU/T),
  which samples exp(-U/T) (checked in `tests/test_lj_physics.py` against the barometric law and the two-particle
  pair distribution).
- **Grid cell.** The slides' h = 0.1 sigma gives 50 cells across L = 5, which three 2x poolings cannot halve; the
  default is h = L/32 (0.15625 sigma). Its cell diagonal, 0.27 sigma, is far below the closest pair distance a
  fluid at T = 1 reaches (~0.9 sigma), so a cell still never holds two particles; h = L/48 is three times slower
  per epoch on 2 cores.
- **Likelihoods.** Each VAE's reconstruction term is a log-likelihood summed over features (Bernoulli over the
  grid's cells; Gaussian with a learned sigma per coordinate or per distinct distance), so beta = 1 trains the ELBO
  and every -ELBO below is in nats per configuration.
"""


def _fig(name: str, caption: str) -> str:
    return f"![{caption}](figures/{name})\n\n*{caption}*\n"


def model_rows(metrics: dict) -> list[dict]:
    rows = []
    for view in VIEWS:
        m = metrics["models"][view]
        rows.append({"view": VIEW_NAMES[view], "latent": m["latent_dim"], "active dims": m["active_dims"],
                     "parameters": m["parameters"], "epochs": m["epochs"], "s/epoch": m["seconds_per_epoch"],
                     "test -ELBO": m["test_neg_elbo"], "test recon": m["test_recon"],
                     "test KL": m["test_kl"]})  # fmt: skip
    return rows


def gamma_rows(metrics: dict) -> list[dict]:
    g = metrics["gamma"]
    names = {**VIEW_NAMES, "physics": "physics baseline: mean height, its spread, LJ energy per particle"}
    return [{"codes": names[k], "R^2 of gamma (linear, test)": v["r2"], "KMeans ACC": v["acc"], "NMI": v["nmi"],
             "ARI": v["ari"]} for k, v in g.items()]  # fmt: skip


def anomaly_rows(metrics: dict) -> list[dict]:
    a = metrics["anomaly"]
    kinds = list(a)
    scores = list(next(iter(a.values())))
    rows = []
    for s in scores:
        row = {"score": s}
        for k in kinds:
            row[f"ROC-AUC {k.replace('_', ' ')}"] = a[k][s]["auc"]
        rows.append(row)
    return rows


def summary_rows(metrics: dict) -> list[dict]:
    rows = []
    for view in VIEWS:
        m, g = metrics["models"][view], metrics["gamma"][view]
        row = {"view": view, "test -ELBO": m["test_neg_elbo"], "gamma R^2": g["r2"], "gamma ACC": g["acc"]}
        for kind, per in metrics["anomaly"].items():
            row[f"AUC {kind}"] = per[VIEW_NAMES[view]]["auc"]
        rows.append(row)
    return rows


def render_report(cfg: Config, metrics: dict) -> str:
    sim = metrics["simulation"]
    split = metrics["split"]
    rec = metrics["reconstruction"]
    lines = [
        f"# lj-fluid `{metrics['run_id']}`", "",
        "Three VAEs on configurations of a Lennard-Jones fluid under gravity (Metropolis Monte Carlo), and what "
        "their latent spaces and decoders say about the physics.", "",
        "## Simulation", "",
        sim_section(sim), "",
        _fig("energy_traces.png", "energy of the preliminary run per gamma; the line marks the detected "
             "equilibration"),
        _fig("autocorrelation.png", "autocorrelation of the energy and of the positions; the sampling interval is "
             "the lag where both fall below the threshold"),
        _fig("density_profiles.png", "density along the height per gamma, beside the ideal-gas barometric law"),
        _fig("configurations.png", "a few sampled configurations"),
        _fig("acceptance.png", "Metropolis acceptance rate per gamma (one point per replica)"),
        "## The three VAEs", "",
        f"Training gammas {', '.join(f'{g:g}' for g in split['gammas'])}: {split['train']} training, {split['val']} "
        f"validation, {split['test']} test configurations (stratified by gamma); {split['holdout']} at the held-out "
        f"gamma {split['holdout_gamma']}. Density grid: {split['grid_cells']} cells per side (h = "
        f"{split['grid_h']:.5g} sigma), built from the positions batch by batch in a tf.data pipeline. -ELBO, "
        "reconstruction and KL are nats per test configuration with z = z_mean; active dims: latent dimensions "
        "with a mean KL above 0.01 nats.", "",
        markdown_table(model_rows(metrics), floatfmt=".2f"),
        _fig("loss_coords.png", "sorted coordinates: training and validation -ELBO"),
        _fig("loss_grid.png", "density grid: training and validation -ELBO"),
        _fig("loss_distance.png", "distance matrix: training and validation -ELBO"),
        _fig("grid_reconstructions.png", "density grids of test configurations and their reconstructions"),
        _fig("distance_matrices.png", "distance matrices of test configurations and their reconstructions"),
        "## Back to configurations", "",
        f"Decoded distance matrices of the test set: mean absolute error {rec['matrix_error']['mae_sigma']:.4f} "
        f"sigma per distance (RMSE {rec['matrix_error']['rmse_sigma']:.4f}). Coordinates recovered by classical "
        "MDS (aligned by Kabsch/Procrustes, reflection allowed) and by the coordinate network (trained on true "
        f"matrices, {metrics['models']['coordinate_net']['epochs']} epochs, validation MSE "
        f"{metrics['models']['coordinate_net']['val_mse']:.2e} in box units); RMSD in sigma per particle. The "
        "'true matrix' rows are each method's floor.", "",
        markdown_table(rec["rmsd"], floatfmt=".4f"),
        "Energies (LJ + gravity with each configuration's own gamma, per particle) of the originals and of the "
        f"configurations recovered from decoded matrices; a configuration with a pair closer than "
        f"{cfg.invalid_distance:g} sigma counts as invalid.", "",
        markdown_table(energy_table(rec["energy"], cfg.invalid_distance), floatfmt=".3f"),
        _fig("energy_recovered.png", "energy per particle of original and recovered configurations"),
        _fig("configurations_recovered.png", "test configurations (filled) and those recovered from their decoded "
             "matrices (open)"),
        "## Gamma in the latent space", "",
        "z_mean of the training configurations fits a linear read-out of gamma (R^2 on the test set) and a PCA; "
        f"KMeans with k = {len(split['gammas'])} (10 restarts) on the test codes is scored against the gamma labels "
        "(Hungarian-matched accuracy, NMI, ARI). The physics baseline uses three hand-made features instead of codes.",
        "",
        markdown_table(gamma_rows(metrics), floatfmt=".3f"),
        _fig("latent_pca_gamma.png", "PCA of the test codes, coloured by gamma"),
        "## Anomaly detection", "",
        "Score: -ELBO per configuration (z = z_mean); higher means more anomalous. ROC-AUC of normal test "
        f"configurations against {'configurations at the held-out gamma and ' if 'holdout_gamma' in metrics['anomaly'] else ''}"  # noqa: E501
        f"test configurations with one particle moved to {cfg.overlap_distance:g} sigma of another. The energy "
        "baseline scores -log of a KDE of the training energies at the configuration's energy.", "",
        markdown_table(anomaly_rows(metrics), floatfmt=".3f"),
        _fig("anomaly_roc.png", "ROC curves"),
    ]  # fmt: skip
    if "holdout_gamma" not in metrics["anomaly"]:
        lines.append("No held-out gamma in this run (`--holdout-gamma none`, or a dataset without one): the "
                     "held-out-gamma detection was not measured.\n")  # fmt: skip
    lines.append(SEED_NOTES)
    return "\n".join(lines)


def energy_table(energy: dict, invalid_distance: float) -> list[dict]:
    return [{"configurations": k, "n": v["n"], f"invalid (< {invalid_distance:g} sigma)": v["invalid"],
             "invalid %": 100 * v["invalid_share"], "median U/N (valid)": v["median_energy_valid"],
             "median closest pair": v["min_pair_distance_median"]} for k, v in energy.items()]  # fmt: skip


def sim_section(sim: dict) -> str:
    """The simulation's settings and per-gamma table, from ``simulation_metrics``."""
    from apps.lj_fluid.simulation import simulation_table

    return simulation_table(sim)


def summary(cfg: Config, metrics: dict) -> str:
    return markdown_table(summary_rows(metrics), floatfmt=".3f")
