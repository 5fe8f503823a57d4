"""Physics of the Monte Carlo and of the scores that compare configurations with it: g(r) of a
dilute gas against the two-particle Boltzmann factor, rho(z) against the barometric law, the
energy histogram of one chain against an independent one."""

import numpy as np
import pytest

from keras_clust.lj import Chains, LJSystem, initial_configurations
from keras_clust.lj.structure import (
    close_pair_share,
    histogram_overlap,
    physicality,
    radial_distribution,
)


def _sample(system, gamma, kick, seed, replicas, burn, sweeps, every):
    chains = Chains(system, initial_configurations(system, replicas, seed), gamma, kick, seed)
    chains.run(burn)
    rec = chains.run(sweeps, record_every=every, record_positions=True)
    return rec.positions.reshape(-1, system.n_particles, system.dim), rec.energy.ravel()


def _lj(r):
    return 4.0 * (r**-12 - r**-6)


@pytest.fixture(scope="module")
def dilute_pairs():
    """Two particles in a 6-sigma box at T = 1, no gravity: 80,000 configurations."""
    system = LJSystem(2, 6.0, 3, 1.0)
    x, _ = _sample(system, 0.0, 1.5, seed=11, replicas=200, burn=200, sweeps=8000, every=20)
    return x


def test_g_of_r_of_a_dilute_gas_is_the_boltzmann_factor(dilute_pairs):
    """For one pair, g(r) = exp(-u(r)/T) / <exp(-u/T)>: its shape is the Boltzmann factor (its
    mean over each bin), the peak (e^1 at r = 2^(1/6)) in the bin of r = 1.1, nothing inside 0.8 sigma."""
    r, g = radial_distribution(dilute_pairs, r_max=3.0, bins=15)
    width = r[1] - r[0]
    expected = np.array(
        [np.mean(np.exp(-_lj(np.linspace(c - width / 2, c + width / 2, 201)[1:]))) for c in r]
    )  # the bin's mean Boltzmann factor
    use = (r > 0.95) & (r < 2.9)
    ratio = g[use] / expected[use]
    scale = np.median(ratio)
    assert 0.85 < scale < 1.05  # 1 / <exp(-u)> over the box: about 0.95 in a 216 sigma^3 box
    np.testing.assert_allclose(ratio / scale, 1.0, atol=0.08)
    peak = np.argmax(g)
    assert r[peak] == pytest.approx(2 ** (1 / 6), abs=width)
    far = (r > 2.0) & (r < 3.0)
    assert g[peak] / np.mean(g[far]) == pytest.approx(expected[peak] / np.mean(expected[far]), rel=0.08)
    assert expected[peak] / np.mean(expected[far]) > 2.2  # a peak the test can see
    assert g[r < 0.8].sum() == 0 and close_pair_share(dilute_pairs) == 0.0


def test_height_profile_follows_the_barometric_law():
    """Two particles under gravity gamma = 0.5 at T = 1: rho(z) proportional to exp(-4 gamma z / T)
    in the box (pair interactions barely matter at this density)."""
    system = LJSystem(2, 6.0, 3, 1.0)
    x, _ = _sample(system, 0.5, 1.5, seed=12, replicas=200, burn=200, sweeps=2000, every=20)
    edges = np.linspace(0.0, 6.0, 25)
    observed = np.histogram(x[..., -1].ravel(), bins=edges)[0] / x[..., -1].size
    b = 4 * 0.5 / 1.0
    barometric = (np.exp(-b * edges[:-1]) - np.exp(-b * edges[1:])) / -np.expm1(-b * 6.0)
    assert np.abs(observed - barometric).sum() < 0.04
    wrong = (np.exp(-0.5 * edges[:-1]) - np.exp(-0.5 * edges[1:])) / -np.expm1(-0.5 * 6.0)  # gamma without the 4
    assert np.abs(observed - wrong).sum() > 0.5


def test_energy_histogram_matches_an_independent_chain():
    """Eight particles at gamma 1: two chains of different seeds and step sizes sample one
    distribution (overlap near 1, equal mean energies); a chain 30 % hotter does not (0.65)."""
    system = LJSystem(8, 4.0, 3, 1.0)
    common = dict(replicas=64, burn=500, sweeps=2000, every=10)
    _, e1 = _sample(system, 1.0, 0.3, seed=21, **common)
    _, e2 = _sample(system, 1.0, 0.6, seed=22, **common)
    _, e3 = _sample(LJSystem(8, 4.0, 3, 1.3), 1.0, 0.3, seed=23, **common)
    assert histogram_overlap(e2, e1) > 0.92
    assert abs(e1.mean() - e2.mean()) < 0.3  # mean about 2.9, standard errors about 0.05
    assert histogram_overlap(e3, e1) < 0.8 and e3.mean() > e1.mean() + 2


def test_physicality_of_monte_carlo_and_of_overlapping_configurations(dilute_pairs):
    """MC scored against another half of the same MC: no close pair, near-equal histograms;
    the same configurations with the pair pushed to 0.5 sigma: every one a close pair."""
    a, b = dilute_pairs[:40000], dilute_pairs[40000:]
    same = physicality(a, b, gamma=0.0, box=6.0)
    assert same.close_pair_share == 0.0 and same.energy_overlap > 0.95
    assert same.g_r_l1 < 0.15 and same.rho_z_l1 < 0.05
    squeezed = a.copy()
    direction = squeezed[:, 1] - squeezed[:, 0]
    squeezed[:, 1] = squeezed[:, 0] + 0.5 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    squeezed = np.clip(squeezed, 0.0, 6.0)
    bad = physicality(squeezed, b, gamma=0.0, box=6.0)
    assert bad.close_pair_share == 1.0 and bad.energy_overlap < 0.05 and bad.g_r_l1 > 1.0
    assert bad.mean_energy > 100 and same.mean_energy == pytest.approx(same.mc_mean_energy, abs=0.05)


def test_histogram_overlap_of_known_distributions():
    """Two unit normals 2 sd apart overlap by 2 Phi(-1) = 0.317; huge values match no bin."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(200_000), rng.standard_normal(200_000)
    assert histogram_overlap(a, b) == pytest.approx(1.0, abs=0.01)
    assert histogram_overlap(a + 2.0, b) == pytest.approx(0.317, abs=0.02)
    assert histogram_overlap(np.r_[a[:1000], np.full(1000, 1e10)], b) == pytest.approx(0.5, abs=0.03)
