"""How physical a set of configurations is, measured against Monte Carlo configurations.

Four numbers compare configurations (decoded, generated, or a second chain's) with fresh Monte
Carlo configurations at the same gravity:

- the share with a pair closer than ``CLOSE_PAIR`` (0.8 sigma, where ``exp(-u/T)`` is about
  ``e^-43`` at T = 1: the Monte Carlo practically never puts one there);
- the overlap of their potential-energy histograms (LJ + gravity), ``sum_b min(p_b, q_b)``:
  1 for the same distribution, 0 for disjoint ones;
- the L1 distance between their radial distribution functions ``g(r)``;
- the L1 distance between their height profiles ``rho(z)``.

``g(r)`` here is the pair-distance density divided by that of *decorrelated* pairs (one particle
from each of two different configurations): in a closed box under gravity the ideal-gas pair
distribution is not flat, and that reference carries the box's shape and the height profile, so
what is left is the correlation the interactions make (``exp(-u(r)/T)`` for a dilute gas).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.lj.geometry import min_pair_distance
from keras_clust.lj.monte_carlo import lj_energy
from keras_clust.lj.statistics import density_profile

#: A pair closer than this (in sigma) counts as an overlap.
CLOSE_PAIR = 0.8
#: Bins of the histograms compared (energies, g(r), rho(z)).
BINS = 40


def _configurations(positions) -> np.ndarray:
    x = np.asarray(positions, np.float64)
    if x.ndim != 3 or x.shape[1] < 2:
        raise UsageError(f"configurations must be (S, N >= 2, dim), got shape {x.shape}")
    return x


def pair_distances(positions) -> np.ndarray:
    """Every pair distance of every configuration ``(S, N, dim)``, flattened."""
    x = _configurations(positions)
    i, j = np.triu_indices(x.shape[1], k=1)
    return np.linalg.norm(x[:, i] - x[:, j], axis=-1).ravel()


def decorrelated_pair_distances(positions, seed: int = 0, pairings: int = 4) -> np.ndarray:
    """Distances between particle ``i`` of one configuration and particle ``j != i`` of
    another (each configuration paired with ``pairings`` seeded random others): the pair
    distances of configurations without interactions between their particles."""
    x = _configurations(positions)
    if len(x) < 2:
        raise UsageError("decorrelated pairs need at least 2 configurations")
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(x.shape[1], k=1)
    out = []
    for _ in range(pairings):
        other = x[(np.arange(len(x)) + rng.integers(1, len(x), size=len(x))) % len(x)]
        out.append(np.linalg.norm(x[:, i] - other[:, j], axis=-1).ravel())
    return np.concatenate(out)


def radial_distribution(positions, r_max: float, bins: int = BINS, reference=None, seed: int = 0):
    """``(bin centres, g(r))`` of configurations, over ``(0, r_max]``.

    Args:
        positions: ``(S, N, dim)`` configurations.
        r_max: Largest distance binned.
        bins: Equal bins.
        reference: Configurations whose decorrelated pairs normalise ``g`` (default
            ``positions``); compare two sets with the same reference.
        seed: Seed of the decorrelated pairing.

    Returns:
        ``g`` is 0 where the reference has no pair (below the closest decorrelated distance).
    """
    edges = np.linspace(0.0, float(r_max), int(bins) + 1)
    ref = positions if reference is None else reference
    ideal, _ = np.histogram(decorrelated_pair_distances(ref, seed), bins=edges)
    return 0.5 * (edges[1:] + edges[:-1]), _g_of(positions, edges, ideal)


def _g_of(positions, edges: np.ndarray, ideal: np.ndarray) -> np.ndarray:
    """``g`` on ``edges``: the pair-distance histogram of ``positions`` over the reference's
    decorrelated one, ``ideal`` (both normalised; 0 where ``ideal`` is empty)."""
    pairs, _ = np.histogram(pair_distances(positions), bins=edges)
    p = pairs / max(pairs.sum(), 1)
    q = ideal / max(ideal.sum(), 1)
    return np.divide(p, q, out=np.zeros_like(p, dtype=np.float64), where=q > 0)


def close_pair_share(positions, distance: float = CLOSE_PAIR) -> float:
    """Share of configurations with a pair closer than ``distance``."""
    return float(np.mean(min_pair_distance(_configurations(positions)) < distance))


def histogram_overlap(a, b, bins: int = BINS) -> float:
    """``sum_b min(p_b, q_b)`` of the histograms of ``a`` and of the reference ``b`` on bins over
    ``b``'s range (its 0.5-99.5 % quantiles, widened by a tenth on each side): 1 for equal
    distributions. A value of ``a`` outside those bins (an overlapping pair's huge energy) is mass
    no bin of ``b`` matches. Fewer bins for a small reference (``sqrt`` of its size, at least 5)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    b = b[np.isfinite(b)]
    if len(b) < 2 or not len(a):
        raise UsageError("a histogram overlap needs values and a reference of at least 2 finite values")
    lo, hi = np.quantile(b, [0.005, 0.995])
    pad = 0.1 * (hi - lo) if hi > lo else 1.0
    edges = np.linspace(lo - pad, hi + pad, min(int(bins), max(5, int(np.sqrt(len(b))))) + 1)
    p = np.histogram(a[np.isfinite(a)], bins=edges)[0] / len(a)
    q = np.histogram(b, bins=edges)[0] / len(b)
    return float(np.minimum(p, q).sum())


@dataclass(frozen=True)
class Physicality:
    """How a set of configurations compares with Monte Carlo ones at the same gravity.

    Attributes:
        configurations: How many were scored.
        close_pair_share: Share with a pair closer than :data:`CLOSE_PAIR` (MC: about 0).
        energy_overlap: Overlap of the potential-energy histograms (1: the same).
        g_r_l1: L1 distance ``sum |g - g_mc| dr`` over ``(0, r_max]``.
        rho_z_l1: L1 distance ``sum |rho - rho_mc| dz`` of the height profiles (at most 2).
        mean_energy, mc_mean_energy: Mean potential energies (an overlap can have infinite energy).
        curves: The compared curves for figures: ``r``, ``g``, ``g_mc``, ``z``, ``rho``,
            ``rho_mc``, ``energy``, ``mc_energy`` (not in :meth:`to_dict`).
    """

    configurations: int
    close_pair_share: float
    energy_overlap: float
    g_r_l1: float
    rho_z_l1: float
    mean_energy: float
    mc_mean_energy: float
    curves: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "curves"}


def physicality(positions, mc_positions, gamma: float, box: float, bins: int = BINS, seed: int = 0) -> Physicality:
    """Score ``positions`` ``(S, N, dim)`` against Monte Carlo configurations ``mc_positions``
    of the same system at gravity ``gamma`` (both in sigma, the box's corner at the origin)."""
    x, mc = _configurations(positions), _configurations(mc_positions)
    if x.shape[1:] != mc.shape[1:]:
        raise UsageError(f"configurations {x.shape[1:]} and Monte Carlo ones {mc.shape[1:]} differ in shape")
    energy = np.atleast_1d(lj_energy(x, gamma))
    mc_energy = np.atleast_1d(lj_energy(mc, gamma))
    edges = np.linspace(0.0, box / 2, int(bins) + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    ideal, _ = np.histogram(decorrelated_pair_distances(mc, seed), bins=edges)  # one reference for both
    g, g_mc = _g_of(x, edges, ideal), _g_of(mc, edges, ideal)
    z, rho = density_profile(x, box, bins)
    _, rho_mc = density_profile(mc, box, bins)
    curves = {
        "r": r,
        "g": g,
        "g_mc": g_mc,
        "z": z,
        "rho": rho,
        "rho_mc": rho_mc,
        "energy": energy,
        "mc_energy": mc_energy,
    }
    return Physicality(
        configurations=len(x),
        close_pair_share=close_pair_share(x),
        energy_overlap=histogram_overlap(energy, mc_energy, bins),
        g_r_l1=float(np.sum(np.abs(g - g_mc)) * (r[1] - r[0])),
        rho_z_l1=float(np.sum(np.abs(rho - rho_mc)) * box / bins),
        mean_energy=float(np.mean(energy)),
        mc_mean_energy=float(np.mean(mc_energy)),
        curves=curves,
    )
