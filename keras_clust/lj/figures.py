"""Figures of the Lennard-Jones Monte Carlo: energy traces, autocorrelations, configurations, profiles, acceptance.

Each function takes the numbers of :mod:`keras_clust.lj.sampling` (its ``GammaDiagnostics``
or sampled positions), draws them on an Agg canvas and returns the path of the PNG.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_clust.lj.statistics import density_profile
from keras_clust.viz._figure import new_figure, save_figure


def _grid(fig, n: int, ncols: int = 3, **kwargs) -> list:
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    return [fig.add_subplot(nrows, ncols, k + 1, **kwargs) for k in range(n)]


def plot_energy_traces(diagnostics: Sequence, path: str | Path) -> Path:
    """Energy per sweep of the preliminary run, one panel per gamma: every replica faint, their
    mean bold, and a vertical line at the equilibration sweep."""
    n = len(diagnostics)
    fig = new_figure(4.2 * min(n, 3), 3.2 * math.ceil(n / 3))
    for ax, d in zip(_grid(fig, n), diagnostics, strict=True):
        sweeps = np.arange(d.energy_traces.shape[1])
        ax.plot(sweeps, d.energy_traces.T, color="0.75", lw=0.4)
        ax.plot(sweeps, d.energy_trace, color="C0", lw=1.2, label="mean over replicas")
        ax.axvline(d.equilibration_sweep, color="C3", ls="--", label=f"equilibrated from {d.equilibration_sweep}")
        tail = d.energy_traces[:, d.equilibration_sweep :]
        spread = max(np.ptp(tail), 1e-9)
        ax.set_ylim(tail.min() - 0.5 * spread, tail.max() + 0.5 * spread)  # the plateau, not the initial drop
        ax.set_xscale("symlog", linthresh=max(10, d.equilibration_sweep / 4))
        ax.set_xlim(0, sweeps[-1])
        ax.set_title(f"gamma = {d.gamma:g}")
        ax.set_xlabel("sweep")
        ax.set_ylabel("energy")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_autocorrelations(diagnostics: Sequence, threshold: float, path: str | Path) -> Path:
    """Autocorrelation of the energy and of the positions after equilibration, one panel per
    gamma, with the threshold and the chosen lag (dashed when the chains were not decorrelated)."""
    n = len(diagnostics)
    fig = new_figure(4.2 * min(n, 3), 3.2 * math.ceil(n / 3))
    for ax, d in zip(_grid(fig, n), diagnostics, strict=True):
        lags = np.arange(len(d.energy_acf))
        ax.plot(lags, d.energy_acf, label="energy")
        ax.plot(lags, d.position_acf, label="positions")
        ax.axhline(threshold, color="0.4", lw=0.8, ls=":", label=f"threshold {threshold:g}")
        status = "decorrelated" if d.decorrelated else "NOT decorrelated"
        ax.axvline(d.lag, color="C3", ls="-" if d.decorrelated else "--", label=f"lag {d.lag} ({status})")
        ax.set_title(f"gamma = {d.gamma:g}")
        ax.set_xlabel("lag (sweeps)")
        ax.set_ylabel("autocorrelation")
        ax.set_ylim(-0.2, 1.05)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _box_edges(dim: int, box: float):
    """Segments of the box outline: pairs of corners differing in one coordinate."""
    corners = list(itertools.product((0.0, box), repeat=dim))
    pairs = itertools.combinations(corners, 2)
    return [(a, b) for a, b in pairs if sum(x != y for x, y in zip(a, b, strict=True)) == 1]


def plot_configurations(
    positions: Sequence[np.ndarray], box: float, path: str | Path, titles: Sequence[str] | None = None
) -> Path:
    """A few configurations side by side: 3-D scatter (height up) or 2-D scatter, box edges drawn.

    Args:
        positions: Configurations, each ``(N, dim)``.
        box: Side of the box.
        path: Where the PNG goes.
        titles: One title per configuration.
    """
    n = len(positions)
    dim = np.asarray(positions[0]).shape[-1]
    titles = list(titles) if titles is not None else [f"configuration {k + 1}" for k in range(n)]
    fig = new_figure(3.6 * min(n, 4), 3.6 * math.ceil(n / 4))
    axes = _grid(fig, n, ncols=4, **({"projection": "3d"} if dim == 3 else {}))
    for ax, conf, title in zip(axes, positions, titles, strict=True):
        conf = np.asarray(conf)
        for a, b in _box_edges(dim, box):
            ax.plot(*zip(a, b, strict=True), color="0.6", lw=0.6)
        ax.scatter(
            *conf.T,
            s=30 if dim == 3 else 60,
            c=conf[:, -1],
            cmap="viridis",
            vmin=0,
            vmax=max(float(conf[:, -1].max()), 1.0),
            edgecolors="k",
            linewidths=0.3,
        )
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        if dim == 3:
            ax.set_zlabel("z")
        else:
            ax.set_aspect("equal")
    return save_figure(fig, path)


def barometric_density(z: np.ndarray, gamma: float, temperature: float, box: float) -> np.ndarray:
    """Ideal-gas height density ``b exp(-b z) / (1 - exp(-b L))`` with ``b = 4 gamma / T`` (``1 / L`` at gamma 0)."""
    b = 4.0 * gamma / temperature
    if b == 0:
        return np.full_like(np.asarray(z, dtype=float), 1.0 / box)
    return b * np.exp(-b * np.asarray(z)) / -np.expm1(-b * box)


def plot_density_profiles(
    positions_by_gamma: Mapping[float, np.ndarray], box: float, temperature: float, path: str | Path, bins: int = 40
) -> Path:
    """Density along the height per gamma (normalised on ``[0, L]``), each with the ideal-gas
    barometric curve ``exp(-4 gamma z / T)`` dashed in the same colour."""
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    z = np.linspace(0.0, box, 200)
    lowest, highest = np.inf, 0.0
    for k, (gamma, positions) in enumerate(positions_by_gamma.items()):
        centres, density = density_profile(positions, box, bins)
        ax.step(centres, density, where="mid", color=f"C{k}", label=f"gamma = {gamma:g}")
        ax.plot(z, barometric_density(z, gamma, temperature, box), "--", color=f"C{k}", lw=0.9)
        if np.any(density > 0):
            lowest, highest = min(lowest, density[density > 0].min()), max(highest, density.max())
    if highest > 0:  # the measured densities, not the ideal-gas tails far below them
        ax.set_ylim(lowest / 5, highest * 5)
    ax.plot([], [], "--", color="0.4", label="ideal gas, same gamma")
    ax.set_xlabel("height")
    ax.set_ylabel("density (integrates to 1)")
    ax.set_yscale("log")
    ax.set_title(f"density profiles, T = {temperature:g}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_acceptance(diagnostics: Sequence, path: str | Path) -> Path:
    """Acceptance rate per gamma: every replica as a point, the mean as a line."""
    fig = new_figure(5.5, 3.8)
    ax = fig.add_subplot()
    gammas = np.array([d.gamma for d in diagnostics])
    for d in diagnostics:
        ax.plot(np.full(len(d.acceptance), d.gamma), d.acceptance, ".", color="C0", alpha=0.6)
    ax.plot(gammas, [float(np.mean(d.acceptance)) for d in diagnostics], "-o", color="C3", label="mean")
    ax.set_xlabel("gamma")
    ax.set_ylabel("accepted fraction of moves")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
