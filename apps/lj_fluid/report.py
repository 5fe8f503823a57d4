"""``report.md`` and the printed summary of an ``lj-fluid run``."""

from __future__ import annotations

from keras_clust.apps.lj_fluid.config import COORDS_MIN_LR, GAMMAS_K, Config
from keras_clust.apps.lj_fluid.physical import ladder_rows, physical_rows
from keras_clust.apps.lj_fluid.pipeline import VIEW_NAMES, VIEWS
from keras_clust.apps.lj_fluid.simulation import CORRECTIONS, IAT_TEXT, simulation_table
from keras_clust.markdown import k_cell, k_chosen_text, k_text, markdown_figure, markdown_table

NOTES = """\
## Notes on the write-up

- **Grid cell.** The slides' h = 0.1 sigma gives 50 cells across L = 5, which three 2x poolings cannot halve; the
  default is 24 cells across the box (h = 0.2083 sigma for L = 5, chosen on a design simulation by the test -ELBO in
  continuous units; 32 cells fit it 0.8 nats worse in twice the time), whose cell diagonal (0.36 sigma) is well
  below the closest pair distance of the fluid at T = 1; the share of configurations with a doubly occupied cell
  is measured above. 48 cells cost about three times the time per epoch of 32 on 2 cores.
- **Likelihoods.** Each VAE's reconstruction term is a log-likelihood summed over features (Bernoulli over the
  grid's cells, from logits, or with `--grid-smoothing W` a Gaussian with a learned sigma per cell of the smooth
  density; Gaussian with a learned sigma per sorted coordinate or per distinct distance), so beta = 1 trains the
  ELBO. A view with free bits (the table's "free nats/dim") trains it with each latent
  dimension's KL charged only above that floor (Kingma et al. 2016); the test -ELBO and KL above are the true ones.
- **The sorted-coordinate VAE** is the write-up's first model, on particles sorted by x; the write-up found that it
  "didn't learn anything". Sorted by x on the plain ELBO it collapsed on the design simulation (KL 0.00 nats); with
  0.25 free nats per dimension (the default, chosen on a design simulation) both of its dimensions are used. Sorted
  by height (`--coords-sort height`, the default), the k-th entry is the k-th lowest particle, whose height gravity
  sets; with `--coords-encoder deepsets` (the default) its encoder reads the particles as a set, so the code does
  not depend on their order. A VAE whose KL falls to zero (no active latent dimension) has
  collapsed: its decoder ignores the code, and the rows of its codes below measure nothing but noise.
- **The grid VAE's blocks.** The write-up's Conv + max-pooling blocks are `--grid-blocks pool`. The default since
  2026-12-07, pool-shuffle, keeps that encoder and ends the decoder at half the size with a Conv whose 2^dim channels
  become the full grid's cells (a sub-pixel layer): over three model seeds on two design simulations it fit as well
  or better and trained about 2x faster. The run's design is `grid_blocks` in its config.json.

"""


def _epochs_text(m: dict) -> str:
    """Epochs trained, and the one whose weights were kept when early stopping chose another."""
    kept = m.get("kept_epoch", m["epochs"])  # runs before --patience kept the last
    return f"{m['epochs']}" if kept == m["epochs"] else f"{m['epochs']} ({kept})"


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _patience_text(cfg: Config) -> str:
    def rule(patience: int) -> str:
        return (
            f"stops after {_epochs(patience)} without a lower validation loss" if patience else "trains all its epochs"
        )

    schedule = (
        f" The sorted-coordinate VAE's learning rate halves after every run of {_epochs(cfg.coords_lr_plateau)} "
        f"without a lower validation loss (down to {COORDS_MIN_LR:g}); the other models' stays at "
        f"{cfg.learning_rate:g}."
        if cfg.coords_lr_plateau
        else ""
    )
    if not cfg.patience and not cfg.coords_patience:
        return " Every model trained all its epochs and kept the last." + schedule
    return (
        f" Early stopping: every model but the sorted-coordinate VAE {rule(cfg.patience)}, and that VAE "
        f"{rule(cfg.coords_patience)} (the validation loss is the training objective: the -ELBO with beta and free "
        "bits; the coordinate network's MSE); a model that stops keeps its best epoch's weights, in brackets when "
        "that is not the last." + schedule
    )


def model_rows(metrics: dict) -> list[dict]:
    rows = []
    for view in VIEWS:
        m = metrics["models"][view]
        rows.append(
            {
                "view": VIEW_NAMES[view],
                "latent": m["latent_dim"],
                "active dims": m["active_dims"],
                "free nats/dim": m.get("free_bits", 0.0),  # runs before free bits: the plain ELBO
                "parameters": m["parameters"],
                "epochs (kept)": _epochs_text(m),
                "s/epoch": m["seconds_per_epoch"],
                "test -ELBO": m["test_neg_elbo"],
                "test recon": m["test_recon"],
                "test KL": m["test_kl"],
                "KL per dimension": ", ".join(f"{v:.2f}" for v in m["kl_per_dim"]),
            }
        )
    return rows


def _k_text(cfg: Config, split: dict) -> str:
    return f"k = {len(split['gammas'])} (the number of gammas)" if cfg.n_clusters == GAMMAS_K else k_text(cfg)


def _deep_text(cfg: Config) -> str:
    if cfg.cluster == "kmeans":
        return ""
    if cfg.cluster == "n2d":
        return (
            " N2D (`--cluster n2d`): a UMAP map of the same test codes (of the physics baseline's features too) "
            "and a Gaussian mixture on it, with the same k; its ACC and NMI follow KMeans's."
        )
    return (
        f" {cfg.cluster.upper()} (`--cluster {cfg.cluster}`) fine-tunes a copy of each view's encoder on the test "
        "configurations, with the same k; its ACC and NMI follow KMeans's (the physics baseline has no encoder)."
    )


def gamma_rows(metrics: dict) -> list[dict]:
    g = metrics["gamma"]
    names = {**VIEW_NAMES, "physics": "physics baseline: mean height, its spread, LJ energy per particle"}
    rows = []
    for k, v in g.items():
        rows.append(
            {
                "codes": names[k],
                "R^2 of gamma (linear, test)": v["r2"],
                **k_cell(v),
                "KMeans ACC": v["acc"],
                "NMI": v["nmi"],
                "ARI": v["ari"],
            }
        )
        if "deep" in v:
            rows[-1][f"{v['deep']['method'].upper()} ACC"] = v["deep"]["acc"]
            rows[-1][f"{v['deep']['method'].upper()} NMI"] = v["deep"]["nmi"]
    return rows


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
        if "deep" in g:
            row[f"gamma {g['deep']['method'].upper()} ACC"] = g["deep"]["acc"]
        for kind, per in metrics["anomaly"].items():
            row[f"AUC {kind}"] = per[VIEW_NAMES[view]]["auc"]
        rows.append(row)
    return rows


def render_report(cfg: Config, metrics: dict) -> str:
    if cfg.grid_likelihood == "gaussian":
        grid_kind = (
            f", smooth: a Gaussian blob of width {cfg.grid_smoothing:g} sigma per particle, with a Gaussian likelihood "
            "of one learned sigma per cell"
        )
        grid_things = "smooth density grids"
    else:
        grid_kind, grid_things = (
            ", occupancy: counts over the largest count, with a Bernoulli likelihood",
            "binary grids",
        )
    sim = metrics["simulation"]
    split = metrics["split"]
    rec = metrics["reconstruction"]
    lines = [
        f"# lj-fluid `{metrics['run_id']}`",
        "",
        "Three VAEs on configurations of a Lennard-Jones fluid under gravity (Metropolis Monte Carlo), and what "
        "their latent spaces and decoders say about the physics.",
        "",
        "## Simulation",
        "",
        simulation_table(sim),
        "",
        IAT_TEXT,
        "",
        markdown_figure(
            "energy_traces.png", "energy of the preliminary run per gamma; the line marks the detected equilibration"
        ),
        markdown_figure(
            "autocorrelation.png",
            "autocorrelation of the energy and of the positions; the sampling interval is "
            "the lag where both fall below the threshold",
        ),
        markdown_figure(
            "density_profiles.png", "density along the height per gamma, beside the ideal-gas barometric law"
        ),
        markdown_figure("configurations.png", "a few sampled configurations"),
        markdown_figure("acceptance.png", "Metropolis acceptance rate per gamma (one point per replica)"),
        "## The three VAEs",
        "",
        f"Training gammas {', '.join(f'{g:g}' for g in split['gammas'])}: {split['train']} training, {split['val']} "
        f"validation, {split['test']} test configurations (stratified by gamma); {split['holdout']} at the held-out "
        f"gamma {split['holdout_gamma'] if split['holdout_gamma'] is not None else '(none)'}; a chain's "
        "configurations all go to one set. Density grid: "
        f"{split['grid_cells']} cells per side (h = {split['grid_h']:.5g} sigma), built from the positions batch by "
        f"batch in a tf.data pipeline{grid_kind}; configurations with a cell holding two particles: "
        f"{100 * split['doubly_occupied_share']:.2f} %. -ELBO = E_q[-log p(x|z)] ("
        f"{metrics['models']['grid']['elbo_draws']} seeded draws of z per configuration) + KL, in nats per test "
        f"configuration; the three views' -ELBOs are densities of different things ({grid_things}, coordinates / L, "
        f"{_distance_things(cfg)}) and are not comparable with each other. Active dims: latent dimensions whose "
        "z_mean varies across test configurations (variance > 0.01, Burda et al. 2016). Sorted coordinates: the "
        f"particles sorted by {cfg.coords_sort} (`--coords-sort`), read by a {cfg.coords_encoder} encoder "
        "(`--coords-encoder`)." + _pair_text(metrics) + _patience_text(cfg),
        "",
        collapse_note(metrics),
        markdown_table(model_rows(metrics), floatfmt=".2f"),
        markdown_figure("loss_coords.png", "sorted coordinates: training and validation -ELBO"),
        markdown_figure("loss_grid.png", "density grid: training and validation -ELBO"),
        markdown_figure("loss_distance.png", "distance matrix: training and validation -ELBO"),
        markdown_figure("grid_reconstructions.png", "density grids of test configurations and their reconstructions"),
        markdown_figure("distance_matrices.png", "distance matrices of test configurations and their reconstructions"),
        "## Back to configurations",
        "",
        f"Decoded distance matrices of the test set: mean absolute error {rec['matrix_error']['mae_sigma']:.4f} "
        f"sigma per distance (RMSE {rec['matrix_error']['rmse_sigma']:.4f}). Coordinates recovered by classical "
        "MDS (aligned by Kabsch/Procrustes, reflection allowed) and by the coordinate network (trained on true "
        f"matrices, {_epochs_text(metrics['models']['coordinate_net'])} epochs, validation MSE "
        f"{metrics['models']['coordinate_net']['val_mse']:.2e} in box units); RMSD in sigma per particle. The "
        "'true matrix' rows are each method's floor.",
        "",
        markdown_table(rec["rmsd"], floatfmt=".4f"),
        "Energies (LJ + gravity with each configuration's own gamma, per particle) of the originals and of the "
        f"configurations recovered from decoded matrices; a configuration with a pair closer than "
        f"{cfg.invalid_distance:g} sigma counts as invalid.",
        "",
        markdown_table(energy_table(rec["energy"], cfg.invalid_distance), floatfmt=".3f"),
        markdown_figure("energy_recovered.png", "energy per particle of original and recovered configurations"),
        markdown_figure(
            "configurations_recovered.png",
            "test configurations (filled) and those recovered from their decoded matrices (open)",
        ),
        *physical_section(metrics),
        "## Gamma in the latent space",
        "",
        "z_mean of the training configurations fits a linear read-out of gamma (R^2 on the test set) and a PCA; "
        f"KMeans with {_k_text(cfg, split)} (10 restarts) on the test codes is scored against the gamma labels "
        "(Hungarian-matched accuracy, NMI, ARI). The physics baseline uses three hand-made features instead of codes."
        + ("" if cfg.n_clusters is not None else " " + k_chosen_text(cfg, "test codes"))
        + _deep_text(cfg),
        "",
        markdown_table(gamma_rows(metrics), floatfmt=".3f"),
        *[f"![k choice {v}](figures/k_choice_{v}.png)" for v, g in metrics["gamma"].items() if "k" in g],
        markdown_figure("latent_pca_gamma.png", "PCA of the test codes, coloured by gamma"),
        *(
            [markdown_figure("latent_energy_map.png", "the same plane of the best view, coloured by energy")]
            if "energy_map_view" in metrics
            else []
        ),
        "## Anomaly detection",
        "",
        "Score: -ELBO per configuration (as above); higher means more anomalous. ROC-AUC of normal test "
        f"configurations against {'configurations at the held-out gamma and ' if 'holdout_gamma' in metrics['anomaly'] else ''}"  # noqa: E501
        f"test configurations with one particle moved to {cfg.overlap_distance:g} sigma of another (each "
        "anomalous set at most as large as the test set). The physics baseline sees positions only, as the VAEs "
        "do: -log of a KDE of the training configurations' Lennard-Jones energy (gravity left out, it would need "
        "gamma) at the configuration's.",
        "",
        markdown_table(anomaly_rows(metrics), floatfmt=".3f"),
        markdown_figure("anomaly_roc.png", "ROC curves"),
    ]
    if "holdout_gamma" not in metrics["anomaly"]:
        lines.append(
            "No held-out gamma in this run (`--holdout-gamma none`, or a dataset without one): the "
            "held-out-gamma detection was not measured.\n"
        )
    lines += [NOTES, CORRECTIONS]
    return "\n".join(lines)


def _distance_things(cfg: Config) -> str:
    if cfg.distance_likelihood == "contacts":
        return "distances / box diagonal and, as a second observation, their contacts (sigma/r)^6"
    return "distances / box diagonal"


def physical_section(metrics: dict) -> list[str]:
    """The report's section on reconstructed and generated configurations against Monte Carlo."""
    if "physical" not in metrics:  # a run written before the section existed
        return []
    p = metrics["physical"]
    return [
        "## Are the VAEs' configurations physical?",
        "",
        "Each view with a path back to coordinates: the sorted-coordinates decoder's output is positions; a "
        "decoded distance matrix becomes positions by classical MDS aligned onto its original (a reconstruction) "
        "or through the coordinate network (a generated one, which has no original). The density grid has no "
        "particle identities and no such path. Reconstructions: the test configurations decoded from z_mean. "
        + (
            "The pair decoder has no mean: its configurations are draws of its likelihood (one pass), a "
            "reconstruction one given the test configuration's z_mean, a generated one given a prior draw. "
            if _has_draws(p)
            else ""
        )
        + "Generated: as many N(0, I) prior draws, each assigned the gamma a linear discriminant of the training "
        "codes finds most likely"
        + (" and, but for the pair decoder's, which are drawn as above" if _has_draws(p) else "")
        + (
            ", decoded to the decoder's mean and to a sample of the likelihood (the mean plus the learned sigma "
            "times standard normal noise; for a distance matrix of its distances, whose contacts follow). "
            if _has_samples(p)
            else ". "
        )
        + _gibbs_sentence(p)
        + _fitted_sentence(p)
        + f"Scored against the {p['reference']}: the share of configurations with a pair "
        f"closer than {p['close_pair']:g} sigma, the overlap of the energy histograms (LJ + gravity; 1 = equal), "
        "and the L1 distances of g(r) (normalised by decorrelated pairs) and of the height profile rho(z); each "
        "the mean over the gammas the row has configurations at, weighted by their number. The Monte Carlo row "
        "is the test split scored the same way: the floor. "
        + _relaxed_sentence(p)
        + " The raw positions are in `generated.npz`, "
        + ("`generated_samples.npz` (likelihood samples) " if _has_samples(p) else "")
        + "and `reconstructed.npz` (one array per view, sigma, the box's corner at the origin; reconstructions in the "
        "test split's order, as `labels.npz`), the gamma each generated one was scored at in "
        "`generated_gamma.npz`.",
        "",
        markdown_table(physical_rows(p), floatfmt=".3f"),
        *(
            markdown_figure(f"physical_{name}{suffix}.png", f"{what} per gamma against the Monte Carlo's{rows}")
            for suffix, rows in (("", ""), ("_relaxed", ", relaxed rows"))
            if suffix == "" or "relax_separation" in p
            for name, what in (
                ("energy", "energy histograms"),
                ("g_r", "radial distribution functions"),
                ("rho_z", "height profiles"),
            )
        ),
        *relaxation_section(p),
    ]


def relaxation_section(p: dict) -> list[str]:
    """How the relaxed rows' energy overlap grows with the sweeps (runs since 2026-12-06 evening)."""
    rows = ladder_rows(p)
    if not rows:
        return []
    return [
        "",
        "### How many sweeps the relaxation needs",
        "",
        "The same relaxed chains scored after other numbers of Metropolis sweeps (0: the pairs separated, no "
        f"sweep; the rows above are after {p['relax_sweeps']}): the energy overlap with the Monte Carlo (means over "
        "the gammas as above). A model whose configurations come near the Monte Carlo's in fewer sweeps than "
        "uniform ones has given the chains a head start; at enough sweeps every row is the Monte Carlo's "
        "and says nothing of the model.",
        "",
        markdown_table(rows, floatfmt=".3f"),
        markdown_figure(
            "physical_relaxation.png",
            "energy overlap, g(r) L1 and rho(z) L1 of the relaxed rows against the sweeps; dashed: the Monte "
            "Carlo's own",
        ),
    ]


def _pair_text(metrics: dict) -> str:
    """The pair decoder's design, for a run that had it (``--coords-decoder pair``)."""
    lattice = metrics["models"]["coords"].get("pair_lattice")
    if lattice is None:
        return ""
    potential = (
        "a learned pair potential that may repel or attract at each of its hinges"
        if metrics["models"]["coords"].get("pair_signed")
        else "a learned repulsive pair potential"
    )
    g, s = lattice["grid"], lattice["sub"]
    below = min(lattice["window"], lattice["n_particles"] - 1)
    where = (
        f"x on a line of {g} cells of {s} sub-cells each"
        if lattice["dim"] == 2
        else f"position in the plane on a {g} x {g} lattice of {s} x {s} sub-cells"
    )
    return (
        " Its decoder is the pair decoder (`--coords-decoder pair`): the heights by a MADE, then each particle's "
        f"{where}, lowest particle first, with logits "
        f"that hold, with the {below} particles below it, {potential}, and a hard core at "
        f"{lattice['core'][0]:.3f} sigma (cells) and {lattice['core'][1]:.3f} sigma (sub-cells), just inside the "
        "training configurations' closest approach; its -ELBO is a density of the same sorted coordinates / L as "
        "the Gaussian decoder's."
    )


def _gibbs_sentence(p: dict) -> str:
    """What the pair decoder's Gibbs sweeps did (runs since ``--coords-gibbs-sweeps``, with some)."""
    sweeps = p.get("gibbs_sweeps", 0)
    if not sweeps:
        return ""
    return (
        f"The pair decoder's draws, generated and reconstructed, are each followed by {sweeps} Gibbs-style "
        "sweeps of its own conditionals (`--coords-gibbs-sweeps`): each particle's position in the plane re-drawn "
        "in turn against every other particle, not only those drawn before it, by the learned background and "
        "pair potential, the heights kept. No Lennard-Jones term enters: the swept configurations are still the "
        "model's own, and they are its raw rows (relaxed as every row is). Its one-pass draws are scored raw "
        "beside them, not relaxed and not in the figures (positions in `generated_one_pass.npz` and "
        "`reconstructed_one_pass.npz`). "
    )


def _fitted_sentence(p: dict) -> str:
    """The pair decoder's draws from a mixture fitted to its codes (runs since 2026-12-08)."""
    fitted = p.get("fitted_prior") or {}
    if not fitted:
        return ""
    sizes = ", ".join(f"{VIEW_NAMES.get(v, v)}: {f['components']}" for v, f in fitted.items())
    tried = len(next(iter(fitted.values()))["bic"])
    return (
        "The pair decoder also generates from a density of its own codes: as many draws from a Gaussian mixture "
        "fitted to the training configurations' z_mean without labels, with as many components (1 to "
        f"{tried}) as give the lowest BIC ({sizes}), each given its gamma by the same "
        "discriminant and drawn and swept as the prior's are. The N(0, I) prior also has mass between the codes' "
        "gamma clusters, where the heights belong to no gamma; these draws fall where the codes are (positions in "
        "`generated_fitted.npz`, their gammas in `generated_fitted_gamma.npz`). "
    )


def _has_draws(p: dict) -> bool:
    """Whether a run's coordinate view had the pair decoder, whose configurations are draws."""
    return any(row.endswith(", drawn") for row in p["rows"])


def _has_samples(p: dict) -> bool:
    """Whether a run scored likelihood samples (runs before 2026-12-06 scored the decoder's means only)."""
    return any(row.endswith(", sampled") for row in p["rows"])


def _relaxed_sentence(p: dict) -> str:
    if "relax_separation" not in p:  # a run written before the overlaps were separated first
        return (
            f"The relaxed rows: the same configurations after {p.get('relax_sweeps')} Metropolis sweeps at their "
            "gamma (the run's kick and temperature) from their positions clipped into the box."
        )
    return (
        "The relaxed rows: the same configurations clipped into the box, every pair closer than "
        f"{p['relax_separation']:g} sigma pushed apart along its line (each particle by half the shortfall, pair "
        f"after pair, until none is left), then {p['relax_sweeps']} Metropolis sweeps at their gamma (the run's "
        "kick and temperature). The uniform rows are as many configurations uniform in the box, raw and relaxed "
        "the same way: what the relaxation makes without a model."
    )


def energy_table(energy: dict, invalid_distance: float) -> list[dict]:
    return [
        {
            "configurations": k,
            "n": v["n"],
            f"invalid (< {invalid_distance:g} sigma)": v["invalid"],
            "invalid %": 100 * v["invalid_share"],
            "median U/N (valid)": v["median_energy_valid"],
            "median closest pair": v["min_pair_distance_median"],
        }
        for k, v in energy.items()
    ]


def collapse_note(metrics: dict) -> str:
    collapsed = [VIEW_NAMES[v] for v in VIEWS if metrics["models"][v]["active_dims"] == 0]
    if not collapsed:
        return ""
    return (
        f"**Collapsed:** {', '.join(collapsed)} — no latent dimension is active (its KL is ~0): the decoder "
        "ignores the code, so that view's latent rows below (gamma read-out, anomaly scores from the KL) say "
        "nothing about the configurations.\n"
    )


def summary(cfg: Config, metrics: dict) -> str:
    return markdown_table(summary_rows(metrics), floatfmt=".3f")
