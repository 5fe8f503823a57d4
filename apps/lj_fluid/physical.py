"""Are the VAEs' configurations physical? Reconstructed and generated configurations of each view
with a path back to coordinates, scored against fresh Monte Carlo configurations at the same gamma.

- ``coords``: the decoder's sorted coordinates are positions (times the box side).
- ``distance``: a decoded matrix becomes coordinates by classical MDS aligned (Kabsch) onto the
  original for a reconstruction; a generated matrix has no original, so the coordinate network
  (trained on true matrices) places it in the box.
- ``grid``: a density grid has no particle identities; it has no coordinate path here.

Generated configurations come from N(0, I) prior draws; each draw is given the gamma whose
training codes a linear discriminant (fitted on the training codes) finds most likely, and is
scored against the Monte Carlo at that gamma. The pair decoder's are also drawn from a density of
its own codes (``fitted``): a Gaussian mixture fitted to the training codes without labels
(:func:`keras_clust.generation.fit_mixture`, its size by BIC), whose draws fall where the codes are,
where the N(0, I) prior also has mass between the codes' gamma clusters; they are given their
gamma by the same discriminant. Each draw is decoded twice: the decoder's mean
(``generated``) and a sample of the view's likelihood, the mean plus the learned sigma times
standard normal noise (``sampled``; for a distance matrix, on its distinct distances). The Monte
Carlo reference is the validation split (configurations no score uses otherwise); its own test
split scored the same way is the floor, and as many configurations uniform in the box (no
model) are the reference a model must beat. The pair decoder has no mean: its configurations
are draws, each followed by ``cfg.coords_gibbs_sweeps`` Gibbs-style sweeps of its own
conditionals (:func:`keras_clust.lj.pair_decoder.gibbs_sweeps`), the one-pass draws scored raw beside
them.

Every set is also scored relaxed: its positions clipped into the box, every pair closer than
:data:`RELAX_SEPARATION` pushed apart (:func:`separate_overlaps`), then
:data:`RELAX_SWEEPS` Metropolis sweeps at its gamma (the run's kick and temperature). The raw and
the relaxed rows stand side by side, and the uniform row relaxed the same way says how much of
a relaxed row the repair alone makes. The same chains are also scored after every count of
sweeps of :data:`RELAX_LADDER` (the report's relaxation curve): how many sweeps a model's
configurations need, against uniform ones, to come near the Monte Carlo's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from keras_clust.apps.lj_fluid import pair
from keras_clust.apps.lj_fluid.config import Config
from keras_clust.apps.lj_fluid.data import RunData
from keras_clust.apps.lj_fluid.pipeline import SCORE_BATCH, VIEW_NAMES, codes
from keras_clust.data.gmm import sample_mixture
from keras_clust.errors import UsageError
from keras_clust.files import atomic_save_npz
from keras_clust.generation import MAX_MIXTURE_COMPONENTS, MixtureFit, fit_mixture, prior_samples
from keras_clust.lj.geometry import classical_mds, kabsch_align
from keras_clust.lj.monte_carlo import Chains, LJSystem
from keras_clust.lj.overlaps import MAX_ITERATIONS, separate_overlaps
from keras_clust.lj.pair_decoder import PairVAE
from keras_clust.lj.representations import matrices_to_distances, unsort_coordinates
from keras_clust.lj.structure import CLOSE_PAIR, physicality
from keras_clust.seeding import model_seed
from keras_clust.viz._figure import new_figure, save_figure

log = logging.getLogger("keras_clust.apps.lj_fluid")

#: The views with a path back to coordinates.
COORDINATE_VIEWS = ("coords", "distance")
#: Row of the Monte Carlo's own test configurations (the floor of every score).
MONTE_CARLO = "Monte Carlo (test split)"
#: Row of configurations uniform in the box: what a relaxed row is worth without a model.
UNIFORM = "uniform in the box"
#: Metropolis sweeps of the relaxed rows. Chosen on the design runs (simulations of seeds 100 and
#: 101, ``bench/study_lj_physical.py --sweeps``) as the smallest count of :data:`RELAX_LADDER`
#: from 20 on after which some generated row's energy overlap with the Monte Carlo reaches half
#: the Monte Carlo's own while uniform configurations relaxed the same way stay below it
#: (BENCHMARKS.md, "How many sweeps").
RELAX_SWEEPS = 100
#: Sweep counts at which every relaxed row is also scored: the report's relaxation curve.
RELAX_LADDER = (0, 20, 50, 100, 200, 500)
#: Before the sweeps, every pair closer than this (sigma) is pushed apart. Chosen on the design
#: runs (simulations of seeds 100 and 101, ``bench/study_lj_physical.py``) as the smallest of 0.8,
#: 0.9 and 1.0 after which no relaxed configuration has a pair under ``CLOSE_PAIR``: at 0.8 the
#: sweeps trade pairs of a jam and leave up to 4 % with one (BENCHMARKS.md).
RELAX_SEPARATION = 0.9


def relax_ladder(
    positions: np.ndarray,
    gamma: np.ndarray,
    cfg: Config,
    seed: int,
    key: int = 0,
    counts: Sequence[int] = RELAX_LADDER,
    separation: float = RELAX_SEPARATION,
) -> dict[int, np.ndarray]:
    """Every configuration clipped into ``[0, box]``, its pairs closer than ``separation`` pushed
    apart (:func:`separate_overlaps`), then Metropolis sweeps at its own gamma (one chain per
    configuration, seeded by ``seed`` and ``key``), the positions taken after each of ``counts``
    sweeps (0: the separated ones), one chain continued from each count to the next."""
    if not counts or min(counts) < 0:
        raise UsageError(f"sweep counts must be >= 0 and at least one, got {list(counts)}")
    system = LJSystem(cfg.particles, cfg.box, cfg.dim, cfg.temperature)
    start, passes = separate_overlaps(positions, cfg.box, separation)
    stuck = int(np.sum(passes > MAX_ITERATIONS))
    if stuck:
        log.info(
            "%d of %d configurations kept a pair closer than %g sigma after separating", stuck, len(start), separation
        )
    chains = Chains(system, start, np.asarray(gamma, np.float64), cfg.kick, seed, key=(7, int(key)))
    out, done = {}, 0
    for count in sorted(set(int(c) for c in counts)):
        if count > done:
            chains.run(count - done)
            done = count
        out[count] = chains.positions if count else start
    return out


def relax(
    positions: np.ndarray,
    gamma: np.ndarray,
    cfg: Config,
    seed: int,
    key: int = 0,
    sweeps: int = RELAX_SWEEPS,
    separation: float = RELAX_SEPARATION,
) -> np.ndarray:
    """:func:`relax_ladder` taken after ``sweeps`` sweeps alone (0: the separated positions)."""
    return relax_ladder(positions, gamma, cfg, seed, key, (sweeps,), separation)[sweeps]


def decode(vae, latent: np.ndarray) -> np.ndarray:
    """The decoder's output for latent points: sorted coordinates or distance matrices."""
    return np.asarray(vae.decoder.predict(latent.astype(np.float32), batch_size=SCORE_BATCH, verbose=0))


def to_positions(view: str, decoded: np.ndarray, net, cfg: Config, original: np.ndarray | None = None) -> np.ndarray:
    """Positions ``(S, N, dim)`` in sigma (the box's corner at the origin) from decoder outputs;
    with ``original`` (a reconstruction), a distance matrix goes through MDS + Kabsch onto it,
    without (a generated one), through the coordinate network."""
    if view == "coords":
        return unsort_coordinates(decoded, cfg.box, cfg.dim)
    if original is not None:
        return kabsch_align(classical_mds(matrices_to_distances(decoded, cfg.box, cfg.dim), cfg.dim), original)
    return np.asarray(net.predict(decoded, batch_size=SCORE_BATCH, verbose=0), np.float64) * cfg.box


def likelihood_sample(view: str, decoded: np.ndarray, log_var: np.ndarray, seed: int | Sequence[int]) -> np.ndarray:
    """A draw of the view's Gaussian likelihood around decoder outputs.

    Args:
        view: ``"coords"`` or ``"distance"``.
        decoded: The decoder's outputs: sorted coordinates ``(S, N * dim)`` or matrices ``(S, N, N[, 1])``.
        log_var: The likelihood's learned ``log sigma^2``: one per sorted coordinate, or one per
            distinct distance (then, with ``--distance-likelihood contacts``, one per contact,
            which are not used: a sample draws the distances, and their contacts follow from them).
        seed: Seed of the noise (anything ``np.random.default_rng`` takes).

    Returns:
        The mean plus ``exp(log_var / 2)`` times standard normal noise, per sorted coordinate, or
        per distinct distance of a matrix (mirrored, the diagonal kept 0); in the decoder's units.
    """
    rng = np.random.default_rng(seed)
    sd = np.exp(0.5 * np.asarray(log_var, np.float64))
    if view == "coords":
        flat = np.asarray(decoded, np.float64).reshape(len(decoded), -1)
        return (flat + sd * rng.standard_normal(flat.shape)).astype(np.float32)
    m = np.asarray(decoded, np.float64)
    m = m[..., 0] if m.ndim == 4 else m
    rows, cols = np.triu_indices(m.shape[1], k=1)
    sd = sd[: len(rows)]  # the distances' (their contacts', if any, follow)
    tri = m[:, rows, cols] + sd * rng.standard_normal((len(m), len(rows)))
    out = np.zeros_like(m)
    out[:, rows, cols] = tri
    out[:, cols, rows] = tri
    return out[..., None].astype(np.float32)


def view_configurations(
    view: str, vae, log_var: np.ndarray, net, data: RunData, cfg: Config, seed: int
) -> tuple[dict, MixtureFit | None]:
    """Reconstructions of the test configurations, and as many generated ones (the decoder's
    mean and a sample of the likelihood with ``log_var`` for each prior draw; a pair decoder's
    draws, "drawn", as it has no mean), with their gammas. ``vae`` has the view's ``encoder`` (the
    posterior) and ``decoder``, or is a :class:`PairVAE`: with ``cfg.coords_gibbs_sweeps`` > 0 its
    "reconstructed" and "drawn" configurations are its one-pass draws after that many sweeps of
    its own Gibbs sampler (:func:`pair.swept`), and the one-pass draws come too, as the kinds
    "reconstructed_one_pass" and "drawn_one_pass" (:data:`ONE_PASS`). A pair decoder's
    configurations are also drawn (and swept) from as many draws of a Gaussian mixture fitted to
    its training codes, the kind "fitted" (:data:`FITTED`).

    Returns:
        ``{kind: (positions, gamma)}``, and the fitted mixture (None for a view without one).
    """
    test_codes, train_codes = codes(view, vae, data.test, cfg), codes(view, vae, data.train, cfg)
    latent = prior_samples(len(data.test), test_codes.shape[1], seed)
    lda = LinearDiscriminantAnalysis().fit(train_codes, data.train.gamma)
    assigned = lda.predict(latent).astype(np.float32)
    if isinstance(vae, PairVAE):
        reconstructed, drawn = pair.configurations(vae, test_codes, latent, seed)
        most = min(MAX_MIXTURE_COMPONENTS, len(train_codes) // 2)  # a tiny simulation fits fewer
        mixture = fit_mixture(train_codes, max_components=most, seed=model_seed(seed, "fitted-prior"))
        fitted = sample_mixture(mixture.mixture, len(data.test), model_seed(seed, "fitted-draws"))[0]
        kinds = {
            "reconstructed": (reconstructed, test_codes, data.test.gamma),
            "drawn": (drawn, latent, assigned),
            FITTED: (pair.drawn(vae, fitted, seed, "pair-fitted"), fitted, lda.predict(fitted).astype(np.float32)),
        }
        out = {}
        for kind, (coords, given, gamma) in kinds.items():
            if cfg.coords_gibbs_sweeps:
                if kind != FITTED:  # its one pass is not kept: the prior's rows say what the sweeps do
                    out[kind + ONE_PASS] = (to_positions(view, coords, net, cfg), gamma)
                coords = pair.swept(vae, given, coords, cfg.coords_gibbs_sweeps, seed, f"gibbs-{kind}")
            out[kind] = (to_positions(view, coords, net, cfg), gamma)
        return out, mixture
    original = data.test.ordered if view == "distance" else None
    reconstructed = to_positions(view, decode(vae, test_codes), net, cfg, original)
    decoded = decode(vae, latent)
    generated = to_positions(view, decoded, net, cfg)
    sampled = to_positions(view, likelihood_sample(view, decoded, log_var, [seed, 1]), net, cfg)
    return {
        "reconstructed": (reconstructed, data.test.gamma),
        "generated": (generated, assigned),
        "sampled": (sampled, assigned),
    }, None


def score_by_gamma(positions: np.ndarray, gamma: np.ndarray, data: RunData, cfg: Config, what: str = "") -> dict:
    """:func:`physicality` of the configurations at each training gamma against the validation
    split's Monte Carlo at that gamma; a gamma no configuration was given (or with fewer than two
    Monte Carlo ones) is left out, and logged."""
    out = {}
    for g in cfg.gammas:
        mine, mc = positions[np.isclose(gamma, g)], data.val.positions[np.isclose(data.val.gamma, g)]
        if len(mine) and len(mc) > 1:
            out[f"{g:g}"] = physicality(mine, mc, g, cfg.box)
        else:
            log.info(
                "%s: gamma %g left out of the physical scores (%d configurations, %d MC)", what, g, len(mine), len(mc)
            )
    return out


#: The kind of the configurations a pair decoder draws from a Gaussian mixture fitted to its codes.
FITTED = "fitted"
#: The file each kind of configuration is kept in (one array per view): a pair decoder's draws
#: ("drawn") are its generated configurations.
FILES = {
    "reconstructed": "reconstructed.npz",
    "generated": "generated.npz",
    "sampled": "generated_samples.npz",
    "drawn": "generated.npz",
    "reconstructed_one_pass": "reconstructed_one_pass.npz",
    "drawn_one_pass": "generated_one_pass.npz",
    FITTED: "generated_fitted.npz",
}
#: The file the gammas the generated configurations of each file were scored at are kept in.
GAMMA_FILES = {"generated.npz": "generated_gamma.npz", "generated_fitted.npz": "generated_fitted_gamma.npz"}
#: The kind of a pair decoder's one-pass draws that its Gibbs sweeps followed: the kind's name plus this.
ONE_PASS = "_one_pass"
#: Each kind's relaxation stream (a pair decoder's draws take the generated ones'); the one-pass
#: draws that Gibbs sweeps followed are scored raw only. The fitted draws' streams come after the
#: uniform row's, so that every other row's chains are what they were before they were added.
_STREAM = {"reconstructed": 0, "generated": 1, "sampled": 2, "drawn": 1}
_STREAMS = 3
_UNIFORM_KEY = len(COORDINATE_VIEWS) * _STREAMS


def physical_samples(
    vaes: dict,
    log_vars: dict,
    net,
    data: RunData,
    cfg: Config,
    run,
    separation: float = RELAX_SEPARATION,
    sweeps: int = RELAX_SWEEPS,
    ladder: Sequence[int] = RELAX_LADDER,
) -> dict:
    """Score every coordinate view's reconstructed and generated configurations (raw and
    relaxed) and the uniform reference, write ``reconstructed.npz``, ``generated.npz`` and
    ``generated_samples.npz`` (one array per view; a file no view has configurations for is not
    written) and the figures (``physical_relaxation.png`` among them, when the ladder has more
    than one count). A pair decoder's one-pass draws that its Gibbs sweeps followed are scored
    raw only, kept in ``reconstructed_one_pass.npz`` and ``generated_one_pass.npz`` and left out
    of the figures. ``vaes`` and ``log_vars``: each
    coordinate view's encoder/decoder pair and its likelihood's learned ``log sigma^2``;
    ``separation`` and ``sweeps``: the relaxation's (:data:`RELAX_SEPARATION`,
    :data:`RELAX_SWEEPS`; a study may try others); ``ladder``: the other counts of sweeps every
    relaxed row is also scored at (:data:`RELAX_LADDER`; ``()`` for ``sweeps`` alone).

    Returns:
        The metrics: ``rows`` (each row's scores per gamma; relaxed rows after ``sweeps``),
        ``relax_ladder`` (each relaxed row, keyed without its ", relaxed", its means over the
        gammas after each count of sweeps), ``floor`` (the Monte Carlo row's means) and the settings,
        ``gibbs_sweeps`` among them (0 without a pair decoder).
    """
    seed = model_seed(cfg.seed, "generated")
    sweeps = int(sweeps)
    counts = sorted({*(int(c) for c in ladder), sweeps})
    scored = {MONTE_CARLO: score_by_gamma(data.test.positions, data.test.gamma, data, cfg, MONTE_CARLO)}
    curves = {}

    def score_relaxed(name: str, positions: np.ndarray, gamma: np.ndarray, key: int) -> None:
        steps = relax_ladder(positions, gamma, cfg, seed, key=key, counts=counts, separation=separation)
        by_count = {c: score_by_gamma(p, gamma, data, cfg, f"{name}, relaxed") for c, p in steps.items()}
        scored[f"{name}, relaxed"] = by_count[sweeps]
        curves[name] = {str(c): weighted_scores([p.to_dict() for p in s.values()]) for c, s in by_count.items()}

    uniform = np.random.default_rng([seed, 2]).uniform(0.0, cfg.box, data.test.positions.shape)
    scored[UNIFORM] = score_by_gamma(uniform, data.test.gamma, data, cfg, UNIFORM)
    score_relaxed(UNIFORM, uniform, data.test.gamma, key=_UNIFORM_KEY)
    arrays = {file: {} for file in FILES.values()}
    gammas = {file: {} for file in GAMMA_FILES.values()}
    mixtures = {}
    for v, view in enumerate(COORDINATE_VIEWS):
        configurations, mixture = view_configurations(view, vaes[view], log_vars[view], net, data, cfg, seed)
        if mixture is not None:
            mixtures[view] = {"components": mixture.components, "bic": list(mixture.bic)}
        for kind, (positions, gamma) in configurations.items():
            arrays[FILES[kind]][view] = positions.astype(np.float32)
            if FILES[kind] in GAMMA_FILES:  # generated: the gamma each one was scored at
                gammas[GAMMA_FILES[FILES[kind]]][view] = gamma
            scored[f"{view}, {kind}"] = score_by_gamma(positions, gamma, data, cfg, f"{view}, {kind}")
            if kind in _STREAM:
                score_relaxed(f"{view}, {kind}", positions, gamma, key=_STREAMS * v + _STREAM[kind])
            elif kind == FITTED:
                score_relaxed(f"{view}, {kind}", positions, gamma, key=_UNIFORM_KEY + 1 + v)
    for file, by_view in [*arrays.items(), *gammas.items()]:
        if by_view:
            atomic_save_npz(run.file(file), by_view)
    plot_structure({r: s for r, s in scored.items() if not r.endswith(("relaxed", ONE_PASS))}, cfg, run.figures, "")
    plot_structure(
        {r: s for r, s in scored.items() if r == MONTE_CARLO or r.endswith("relaxed")}, cfg, run.figures, "_relaxed"
    )
    floor = weighted_scores([p.to_dict() for p in scored[MONTE_CARLO].values()])
    gibbs = cfg.coords_gibbs_sweeps if any(isinstance(m, PairVAE) for m in vaes.values()) else 0
    if len(counts) > 1:
        plot_relaxation(curves, floor, run.figures, {"rows": scored, "gibbs_sweeps": gibbs})
    return {
        "close_pair": CLOSE_PAIR,
        "gibbs_sweeps": gibbs,
        # each view's Gaussian mixture fitted to its training codes (its components by BIC)
        "fitted_prior": mixtures,
        "relax_separation": separation,
        "relax_sweeps": sweeps,
        # each relaxed row's scores (means over its gammas) after each count of sweeps
        "relax_ladder": curves,
        "floor": floor,
        "reference": "validation split (Monte Carlo) at the same gamma",
        "rows": {row: {g: p.to_dict() for g, p in by_gamma.items()} for row, by_gamma in scored.items()},
    }


#: How the report names each kind of configuration.
KIND_NAMES = {
    "generated": "generated, decoder's mean",
    "sampled": "generated, likelihood sample",
    "drawn": "generated, drawn by the pair decoder",
    "drawn_one_pass": "generated, the pair decoder's one pass",
    "reconstructed_one_pass": "reconstructed, the pair decoder's one pass",
    FITTED: "generated from a Gaussian mixture fitted to its training codes",
}


#: The scores every row is summarised by: key in :class:`Physicality`, and its column.
SCORES = {
    "close_pair_share": "share with a pair < {close:g} sigma",
    "energy_overlap": "energy overlap",
    "g_r_l1": "g(r) L1",
    "rho_z_l1": "rho(z) L1",
}


def weighted_scores(values: Sequence[dict]) -> dict:
    """The mean of each of :data:`SCORES` over a row's gammas (their ``Physicality.to_dict()``),
    weighted by their number of configurations, and that number (``configurations``)."""
    weights = [v["configurations"] for v in values]
    out = {key: float(np.average([v[key] for v in values], weights=weights)) for key in SCORES}
    return {"configurations": int(sum(weights)), **out}


def physical_rows(metrics: dict) -> list[dict]:
    """The report's table: each row's scores averaged over the gammas it has configurations at,
    weighted by their number of configurations."""
    rows = []
    for name, by_gamma in metrics["rows"].items():
        if not by_gamma:
            continue
        means = weighted_scores(list(by_gamma.values()))
        base = name.removesuffix(", relaxed")
        label = row_name(base, metrics)
        if base != name:  # "<view>, <kind>, relaxed" or "<row>, relaxed"
            label += (", " if ", " in base else ": ") + _relaxed_text(metrics)
        rows.append(
            {
                "configurations": label,
                "n": means["configurations"],
                "gammas": ", ".join(by_gamma),
                **{column.format(close=metrics["close_pair"]): means[key] for key, column in SCORES.items()},
            }
        )
    return rows


def row_name(name: str, metrics: dict | None = None) -> str:
    """How the report names a row key such as ``"coords, sampled"`` or ``"uniform in the box"``;
    with the physical ``metrics``, a row whose one pass was followed by Gibbs sweeps says so."""
    view, _, kind = name.partition(", ")
    if not kind:
        return name
    label = f"{VIEW_NAMES.get(view, view)}: {KIND_NAMES.get(kind, kind)}"
    if metrics is not None and f"{name}{ONE_PASS}" in metrics.get("rows", {}):
        what = "the pair decoder's draw" if kind == "reconstructed" else "its one pass"
        label += f" ({what}, then {metrics.get('gibbs_sweeps', '?')} Gibbs sweeps of its own potential)"
    elif metrics is not None and kind == FITTED:
        fitted = metrics.get("fitted_prior", {}).get(view, {})
        label += f" ({fitted.get('components', '?')} components by BIC; the pair decoder's draw"
        gibbs = metrics.get("gibbs_sweeps", 0)
        label += f", then {gibbs} Gibbs sweeps of its own potential)" if gibbs else ")"
    return label


def ladder_rows(metrics: dict, key: str = "energy_overlap") -> list[dict]:
    """One score (default: the energy overlap) of every relaxed row after each count of sweeps it
    was scored at (:data:`RELAX_LADDER` and the run's own), the Monte Carlo floor last; ``[]`` for
    a run written before the ladder."""
    ladder = metrics.get("relax_ladder")
    if not ladder:
        return []
    counts = sorted(next(iter(ladder.values())), key=int)
    rows = [
        {"relaxed": row_name(name, metrics), **{f"{c} sweeps": by[c][key] for c in counts}}
        for name, by in ladder.items()
    ]
    rows.append({"relaxed": MONTE_CARLO, **{f"{c} sweeps": metrics["floor"][key] for c in counts}})
    return rows


def plot_relaxation(ladder: dict, floor: dict, folder, metrics: dict | None = None) -> None:
    """``physical_relaxation.png``: each relaxed row's energy overlap, g(r) L1 and rho(z) L1
    against the Metropolis sweeps after the separation, the Monte Carlo's own as a dashed line;
    ``metrics`` (``rows`` and ``gibbs_sweeps``) name the rows as the report does (:func:`row_name`)."""
    panels = (("energy_overlap", "energy overlap (1 = equal)"), ("g_r_l1", "g(r) L1"), ("rho_z_l1", "rho(z) L1"))
    fig = new_figure(4.2 * len(panels), 3.8 + 0.17 * (len(ladder) + 1))  # room for the legend below
    axes = fig.subplots(1, len(panels))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for name, by_count in ladder.items():
            counts = sorted(int(c) for c in by_count)
            # sweeps + 1 on a log axis, so that the separation alone (0 sweeps) has a place
            style = "k:" if name == UNIFORM else "-"
            ax.plot(
                np.add(counts, 1),
                [by_count[str(c)][key] for c in counts],
                style,
                marker="o",
                label=row_name(name, metrics),
            )
        ax.axhline(floor[key], color="k", linestyle="--", linewidth=1.5, label=MONTE_CARLO)
        ax.set_xscale("log")
        ax.set_xlabel("Metropolis sweeps after the separation, + 1")
        ax.set_ylabel(label)
    # below the panels: the rows' names are long, and inside a panel they would hide the curves
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=7)
    save_figure(fig, folder / "physical_relaxation.png")


def _relaxed_text(metrics: dict) -> str:
    sweeps = metrics["relax_sweeps"]  # every run with relaxed rows wrote it (since 2236ffd)
    if "relax_separation" not in metrics:  # a run written before the overlaps were separated first
        return f"relaxed ({sweeps} sweeps)"
    return f"relaxed (pairs separated to {metrics['relax_separation']:g} sigma, {sweeps} sweeps)"


def plot_structure(scored: dict, cfg: Config, folder, suffix: str = "") -> None:
    """``physical_g_r<suffix>.png``, ``physical_rho_z<suffix>.png`` and
    ``physical_energy<suffix>.png``: one panel per gamma, the Monte Carlo reference against every
    row of ``scored``."""
    gammas = [f"{g:g}" for g in cfg.gammas]
    specs = (
        (f"physical_g_r{suffix}.png", "r", "g", "g_mc", "r (sigma)", "g(r)"),
        (f"physical_rho_z{suffix}.png", "z", "rho", "rho_mc", "height (sigma)", "rho(z)"),
    )
    for name, x, y, ref, xlabel, ylabel in specs:
        fig = new_figure(4.2 * len(gammas), 3.6)
        axes = np.atleast_1d(fig.subplots(1, len(gammas)))
        for ax, g in zip(axes, gammas, strict=True):
            first = next((rows[g] for rows in scored.values() if g in rows), None)
            if first is not None:
                ax.plot(first.curves[x], first.curves[ref], "k-", linewidth=2.5, label="Monte Carlo (validation)")
                # the Monte Carlo's scale: a collapsed row's spike at r -> 0 runs off the top
                ax.set_ylim(0.0, 2.5 * max(float(np.max(first.curves[ref])), 1e-9))
            for row, by_gamma in scored.items():
                if g in by_gamma and row != MONTE_CARLO:
                    c = by_gamma[g].curves
                    ax.plot(c[x], c[y], linewidth=1.2, label=f"{row} (L1 {_l1(by_gamma[g], y):.2f})")
            ax.set_title(f"gamma {g}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{ylabel} (cut at 2.5x the Monte Carlo's peak)")
        axes[-1].legend(fontsize=7)
        save_figure(fig, folder / name)
    fig = new_figure(4.2 * len(gammas), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(gammas)))
    for ax, g in zip(axes, gammas, strict=True):
        first = next((rows[g] for rows in scored.values() if g in rows), None)
        if first is None:
            continue
        mc = first.curves["mc_energy"]
        lo, hi = np.percentile(mc, 0.5) - 5.0, np.percentile(mc, 99.5) + 20.0
        bins = np.linspace(lo, hi, 50)
        ax.hist(mc, bins=bins, density=True, histtype="stepfilled", color="0.8", label="Monte Carlo (validation)")
        for row, by_gamma in scored.items():
            if g in by_gamma and row != MONTE_CARLO:
                e = np.clip(by_gamma[g].curves["energy"], lo, hi)  # overlaps pile up at the right edge
                ax.hist(e, bins=bins, density=True, histtype="step", label=f"{row} ({by_gamma[g].energy_overlap:.2f})")
        # the Monte Carlo's scale: rows whose energies pile up at the right edge would flatten it
        ax.set_ylim(0.0, 2.5 * float(np.histogram(mc, bins=bins, density=True)[0].max()))
        ax.set_title(f"gamma {g}: U = LJ + gravity, overlap in ()")
        ax.set_xlabel(f"U (clipped to [{lo:.0f}, {hi:.0f}])")
        ax.set_ylabel("density (cut at 2.5x the Monte Carlo's peak)")
    axes[-1].legend(fontsize=7)
    save_figure(fig, folder / f"physical_energy{suffix}.png")


def _l1(p, what: str) -> float:
    return p.g_r_l1 if what == "g" else p.rho_z_l1
