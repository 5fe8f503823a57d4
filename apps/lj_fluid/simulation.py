"""The simulation part of ``lj-fluid``: its figures, its metrics and its report section."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_clust.lj.figures import (
    plot_acceptance,
    plot_autocorrelations,
    plot_configurations,
    plot_density_profiles,
    plot_energy_traces,
)
from keras_clust.lj.results import Simulation
from keras_clust.lj.sampling import RELIABLE_LAG_FRACTION
from keras_clust.lj.statistics import mean_height
from keras_clust.markdown import markdown_table

#: Figure file of each simulation figure.
FIGURES = {
    "energy_traces": "energy_traces.png",
    "autocorrelation": "autocorrelation.png",
    "configurations": "configurations.png",
    "density_profiles": "density_profiles.png",
    "acceptance": "acceptance.png",
}

CORRECTIONS = """\
Two formulas of the slides are corrected here:

- **Gravity's sign.** The slides write the gravitational term as `-mg sigma/eps r'_z`. Gravity raises
  the energy with height, so the reduced potential is `U = sum_pairs 4 (r^-12 - r^-6) + 4 gamma sum_i z_i`
  (`gamma = m g sigma / (4 eps)`): `+4 gamma z`. With the slides' sign the particles would gather at the
  ceiling. The density profiles above fall with height as the barometric law `exp(-4 gamma z / T)` says.
- **Metropolis acceptance.** The slides accept every move with `dU >= 0` and the others with probability
  `exp(-dU/T)`, which is inverted: it favours moves that raise the energy. We accept every move with
  `dU <= 0` and a move with `dU > 0` with probability `exp(-dU/T)`, which samples `exp(-U/T)`.
"""


def simulation_figures(sim: Simulation, folder: str | Path) -> dict[str, Path]:
    """Draw the five simulation figures into ``folder``; ``{name: path}`` (names as in :data:`FIGURES`)."""
    folder = Path(folder)
    s = sim.settings
    by_gamma = sim.positions_by_gamma()
    shown = {g: p[0] for g, p in by_gamma.items() if len(p)}
    return {
        "energy_traces": plot_energy_traces(sim.diagnostics, folder / FIGURES["energy_traces"]),
        "autocorrelation": plot_autocorrelations(
            sim.diagnostics, float(s["threshold"]), folder / FIGURES["autocorrelation"]
        ),
        "configurations": plot_configurations(
            list(shown.values()), float(s["box"]), folder / FIGURES["configurations"], [f"gamma = {g:g}" for g in shown]
        ),
        "density_profiles": plot_density_profiles(
            by_gamma, float(s["box"]), float(s["temperature"]), folder / FIGURES["density_profiles"]
        ),
        "acceptance": plot_acceptance(sim.diagnostics, folder / FIGURES["acceptance"]),
    }


def simulation_metrics(sim: Simulation) -> dict:
    """JSON-ready numbers of the simulation: the settings and one row per gamma."""
    n = int(sim.settings["n_particles"])
    rows = []
    by_gamma = sim.positions_by_gamma()
    for d in sim.diagnostics:
        mask = sim.gamma == np.float32(d.gamma)
        rows.append(
            {
                "gamma": float(d.gamma),
                "samples": int(mask.sum()),
                "equilibration_sweep": int(d.equilibration_sweep),
                "preliminary_sweeps": int(d.preliminary_sweeps),
                "lag": int(d.lag),
                "crossing": None if d.crossing is None else int(d.crossing),
                "decorrelated": bool(d.decorrelated),
                "iat_energy": d.energy_iat,
                "iat_positions": d.position_iat,
                "acceptance_mean": float(np.mean(d.acceptance)),
                "acceptance_min": float(np.min(d.acceptance)),
                "acceptance_max": float(np.max(d.acceptance)),
                "mean_height": mean_height(by_gamma[float(d.gamma)]),
                "energy_per_particle": float(np.mean(sim.energy[mask]) / n),
                "moves": int(d.moves),
                "moves_per_second": float(d.moves_per_second),
                "seconds": float(d.seconds),
                "energy_drift": float(d.energy_drift),
            }
        )
    return {"settings": dict(sim.settings), "gammas": rows, "seconds": float(sum(d.seconds for d in sim.diagnostics))}


def simulation_table(metrics: dict) -> str:
    """The settings in one line and the per-gamma table (Markdown), from :func:`simulation_metrics`."""
    s = metrics["settings"]
    head = (
        f"N = {s['n_particles']} particles, box {s['box']:g} ({s['dim']}-D), T = {s['temperature']:g}, "
        f"{s['replicas']} replicas, kick {s['kick']:g}, seed {s['seed']}, threshold {s['threshold']:g}, "
        f"{s['samples_per_gamma']} configurations per gamma; {metrics['seconds']:.1f} s."
    )
    rows = [
        {
            "gamma": r["gamma"],
            "equilibrated at sweep": r["equilibration_sweep"],
            "preliminary sweeps": r["preliminary_sweeps"],
            "lag (sweeps)": r["lag"],
            "decorrelated": "yes" if r["decorrelated"] else "NO",
            "IAT energy / positions (sweeps)": _iat_cell(r),
            "acceptance mean (min-max)": f"{r['acceptance_mean']:.3f} ({r['acceptance_min']:.3f}-"
            f"{r['acceptance_max']:.3f})",
            "mean height": r["mean_height"],
            "U/N": r["energy_per_particle"],
            "moves/s": f"{r['moves_per_second']:.3g}",
            "s": f"{r['seconds']:.1f}",
        }
        for r in metrics["gammas"]
    ]
    return head + "\n\n" + markdown_table(rows, floatfmt=".3f")


#: What the IAT column says (the simulation report and the run report).
IAT_TEXT = (
    "IAT: the integrated autocorrelation time 1 + 2 sum_k rho(k) of the energy and of the (sorted) "
    "coordinates after equilibration, summed until rho first reaches zero, in sweeps; configurations saved a "
    "lag of at least the IAT apart are about independent (a lower bound when rho never reached zero)."
)


def _iat_cell(row: dict) -> str:
    """``tau_E / tau_x`` of a gamma's row, or a dash for a run written before they were kept."""
    if "iat_energy" not in row:
        return "-"
    return f"{row['iat_energy']:.0f} / {row['iat_positions']:.0f}"


def simulation_report(metrics: dict) -> str:
    """Markdown section of the simulation (from :func:`simulation_metrics`): settings, per-gamma table,
    the figures and the two corrections."""
    s = metrics["settings"]
    undecorrelated = [r["gamma"] for r in metrics["gammas"] if not r["decorrelated"]]
    note = ""
    if undecorrelated:
        note = (
            f"\n**Not decorrelated** at gamma {', '.join(f'{g:g}' for g in undecorrelated)}: the autocorrelations "
            f"did not cross {s['threshold']:g} at a lag of at most {RELIABLE_LAG_FRACTION:g} of the preliminary "
            "run after equilibration, even after doubling it; the configurations were saved at the largest lag "
            "measured and may still be correlated. Raise `--preliminary-sweeps`.\n"
        )
    lines = [
        "## Simulation",
        "",
        "Metropolis Monte Carlo of a Lennard-Jones fluid under gravity (reduced units, no cutoff, reflecting "
        "walls), independent chains per gamma. Each gamma: a preliminary run from a jittered lattice; the "
        "equilibration sweep minimises the standard error of the mean energy after it; after it, the "
        "autocorrelations of the energy and of the particle coordinates give the lag, the first where both "
        f"fall below {s['threshold']:g}; then every chain saves configurations that many sweeps apart. " + IAT_TEXT,
        "",
        simulation_table(metrics),
        note,
        "![energy traces](figures/energy_traces.png)",
        "",
        "Energy per sweep of the preliminary run (grey: replicas; blue: their mean); dashed: equilibration.",
        "",
        "![autocorrelations](figures/autocorrelation.png)",
        "",
        "Autocorrelation of the energy and of the positions after equilibration; vertical line: the lag used.",
        "",
        "![configurations](figures/configurations.png)",
        "",
        "One sampled configuration per gamma (colour: height).",
        "",
        "![density profiles](figures/density_profiles.png)",
        "",
        "Density along the height per gamma; dashed: the ideal-gas barometric law `exp(-4 gamma z / T)` "
        "normalised on [0, L]. The fluid departs from it where particles pack against the floor.",
        "",
        "![acceptance](figures/acceptance.png)",
        "",
        "Accepted fraction of moves per gamma, one point per replica.",
        "",
        "### Corrections to the slides",
        "",
        CORRECTIONS,
    ]
    return "\n".join(lines)
