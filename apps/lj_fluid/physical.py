"""Are the VAEs' configurations physical? Reconstructed and generated configurations of each view
with a path back to coordinates, scored against fresh Monte Carlo configurations at the same gamma.

- ``coords``: the decoder's sorted coordinates are positions (times the box side).
- ``distance``: a decoded matrix becomes coordinates by classical MDS aligned (Kabsch) onto the
  original for a reconstruction; a generated matrix has no original, so the coordinate network
  (trained on true matrices) places it in the box.
- ``grid``: an occupancy grid has no particle identities; it has no coordinate path here.

Generated configurations come from N(0, I) prior draws; each draw is given the gamma whose
training codes a linear discriminant (fitted on the training codes) finds most likely, and is
scored against the Monte Carlo at that gamma. The Monte Carlo reference is the validation split
(configurations no score uses otherwise); its own test split scored the same way is the floor.

Every set is also scored after :data:`RELAX_SWEEPS` Metropolis sweeps at its gamma (the run's
kick and temperature), from its positions clipped into the box: how far a few local moves take
a decoded configuration towards a physical one. The raw and the relaxed rows stand side by side.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from keras_clust.apps.lj_fluid.config import Config
from keras_clust.apps.lj_fluid.data import RunData
from keras_clust.apps.lj_fluid.pipeline import SCORE_BATCH, VIEW_NAMES, codes
from keras_clust.files import atomic_save_npz
from keras_clust.generation import prior_samples
from keras_clust.lj.geometry import classical_mds, kabsch_align
from keras_clust.lj.monte_carlo import Chains, LJSystem
from keras_clust.lj.representations import matrices_to_distances, unsort_coordinates
from keras_clust.lj.structure import CLOSE_PAIR, physicality
from keras_clust.seeding import model_seed
from keras_clust.viz._figure import new_figure, save_figure

log = logging.getLogger("keras_clust.apps.lj_fluid")

#: The views with a path back to coordinates.
COORDINATE_VIEWS = ("coords", "distance")
#: Row of the Monte Carlo's own test configurations (the floor of every score).
MONTE_CARLO = "Monte Carlo (test split)"
#: Metropolis sweeps of the relaxed rows.
RELAX_SWEEPS = 20


def relax(
    positions: np.ndarray, gamma: np.ndarray, cfg: Config, seed: int, key: int = 0, sweeps: int = RELAX_SWEEPS
) -> np.ndarray:
    """``sweeps`` Metropolis sweeps of every configuration at its own gamma, from its positions
    clipped into ``[0, box]`` (one chain per configuration, seeded by ``seed`` and ``key``)."""
    system = LJSystem(cfg.particles, cfg.box, cfg.dim, cfg.temperature)
    start = np.clip(np.asarray(positions, np.float64), 0.0, cfg.box)
    chains = Chains(system, start, np.asarray(gamma, np.float64), cfg.kick, seed, key=(7, int(key)))
    chains.run(sweeps)
    return chains.positions


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


def view_configurations(view: str, vae, net, data: RunData, cfg: Config, seed: int) -> dict:
    """Reconstructions of the test configurations and as many generated ones, with their gammas."""
    test_codes = codes(view, vae, data.test, cfg)
    original = data.test.ordered if view == "distance" else None
    reconstructed = to_positions(view, decode(vae, test_codes), net, cfg, original)
    latent = prior_samples(len(data.test), test_codes.shape[1], seed)
    generated = to_positions(view, decode(vae, latent), net, cfg)
    lda = LinearDiscriminantAnalysis().fit(codes(view, vae, data.train, cfg), data.train.gamma)
    return {
        "reconstructed": (reconstructed, data.test.gamma),
        "generated": (generated, lda.predict(latent).astype(np.float32)),
    }


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


def physical_samples(trained: dict, net, data: RunData, cfg: Config, run) -> dict:
    """Score every coordinate view's reconstructed and generated configurations, write
    ``generated.npz``/``reconstructed.npz`` (one array per view) and the three figures."""
    seed = model_seed(cfg.seed, "generated")
    scored = {MONTE_CARLO: score_by_gamma(data.test.positions, data.test.gamma, data, cfg, MONTE_CARLO)}
    arrays = {"generated": {}, "reconstructed": {}}
    gammas = {}
    for v, view in enumerate(COORDINATE_VIEWS):
        for k, (kind, (positions, gamma)) in enumerate(
            view_configurations(view, trained[view].vae, net, data, cfg, seed).items()
        ):
            arrays[kind][view] = positions.astype(np.float32)
            if kind == "generated":
                gammas[view] = gamma
            scored[f"{view}, {kind}"] = score_by_gamma(positions, gamma, data, cfg, f"{view}, {kind}")
            relaxed = relax(positions, gamma, cfg, seed, key=2 * v + k)
            scored[f"{view}, {kind}, relaxed"] = score_by_gamma(relaxed, gamma, data, cfg, f"{view}, {kind}, relaxed")
    for kind, by_view in arrays.items():
        atomic_save_npz(run.file(f"{kind}.npz"), by_view)
    atomic_save_npz(run.file("generated_gamma.npz"), gammas)  # the gamma each generated one was scored at
    plot_structure(scored, cfg, run.figures)
    return {
        "close_pair": CLOSE_PAIR,
        "relax_sweeps": RELAX_SWEEPS,
        "reference": "validation split (Monte Carlo) at the same gamma",
        "rows": {row: {g: p.to_dict() for g, p in by_gamma.items()} for row, by_gamma in scored.items()},
    }


def physical_rows(metrics: dict) -> list[dict]:
    """The report's table: each row's scores averaged over the gammas it has configurations at,
    weighted by their number of configurations."""
    rows = []
    for name, by_gamma in metrics["rows"].items():
        values = list(by_gamma.values())
        if not values:
            continue
        weights = [v["configurations"] for v in values]

        def mean(key, values=values, weights=weights):
            return float(np.average([v[key] for v in values], weights=weights))

        view, _, kind = name.partition(", ")
        kind = kind.replace("relaxed", f"relaxed ({metrics.get('relax_sweeps', RELAX_SWEEPS)} sweeps)")
        rows.append(
            {
                "configurations": f"{VIEW_NAMES.get(view, view)}: {kind}" if kind else name,
                "n": sum(v["configurations"] for v in values),
                "gammas": ", ".join(by_gamma),
                f"share with a pair < {metrics['close_pair']:g} sigma": mean("close_pair_share"),
                "energy overlap": mean("energy_overlap"),
                "g(r) L1": mean("g_r_l1"),
                "rho(z) L1": mean("rho_z_l1"),
            }
        )
    return rows


def plot_structure(scored: dict, cfg: Config, folder) -> None:
    """``physical_g_r.png``, ``physical_rho_z.png`` and ``physical_energy.png``: one panel per
    gamma, the Monte Carlo reference against every row."""
    gammas = [f"{g:g}" for g in cfg.gammas]
    specs = (
        ("physical_g_r.png", "r", "g", "g_mc", "r (sigma)", "g(r)"),
        ("physical_rho_z.png", "z", "rho", "rho_mc", "height (sigma)", "rho(z)"),
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
            ax.set_title(f"gamma {g} (y clipped at 2.5x the Monte Carlo's peak)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
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
        ax.set_title(f"gamma {g}: U = LJ + gravity, overlap in ()")
        ax.set_xlabel(f"U (clipped to [{lo:.0f}, {hi:.0f}])")
    axes[-1].legend(fontsize=7)
    save_figure(fig, folder / "physical_energy.png")


def _l1(p, what: str) -> float:
    return p.g_r_l1 if what == "g" else p.rho_z_l1
