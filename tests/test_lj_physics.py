"""Physics and statistics of the Lennard-Jones Monte Carlo (keras_clust.lj.monte_carlo, lj_sampling, lj_io, lj_stats).

Sampling checks compare histograms with exact densities. Their tolerance is a z-score per bin,
``(observed - expected) / sqrt(expected * g)``, where ``g`` is the statistical inefficiency of
the recorded series measured on the data itself (correlated records count ``g`` times less);
with ~20 bins, ``|z| < 4.5`` fails by chance with probability ~1e-4, and the seeds are fixed.
"""

import math
import zipfile

import numba
import numpy as np
import pytest

from keras_clust.errors import DataError, UsageError
from keras_clust.lj.dataset import load_lj_dataset, save_lj_dataset
from keras_clust.lj.monte_carlo import (
    MIN_SPACING,
    Chains,
    LJSystem,
    check_kick,
    initial_configurations,
    lj_energy,
    move_delta,
)
from keras_clust.lj.sampling import MAX_DOUBLINGS, simulate
from keras_clust.lj.statistics import (
    autocorrelation,
    decorrelation_lag,
    density_profile,
    detect_equilibration,
    iat_from_acf,
    integrated_autocorrelation_time,
    mean_height,
)

Z_MAX = 4.5


def pair_distances(x: np.ndarray) -> np.ndarray:
    """All pair distances of each configuration of ``x`` (``(..., N, dim)``), flattened."""
    d = np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)
    i, j = np.triu_indices(x.shape[-2], 1)
    return d[..., i, j].ravel()


def z_scores(observed: np.ndarray, expected: np.ndarray, g: float) -> np.ndarray:
    return (observed - expected) / np.sqrt(expected * g)


@pytest.fixture(scope="module")
def small_sim():
    """A tiny two-gamma simulation (a second or two once the kernels are compiled)."""
    return simulate(
        LJSystem(5, 4.0), [0.5, 1.0], 10, replicas=4, kick=0.3, seed=3, preliminary_sweeps=100, progress=False
    )


# ---------------------------------------------------------------- energies


@pytest.mark.parametrize("dim", [2, 3])
def test_move_delta_is_the_difference_of_total_energies(dim):
    system = LJSystem(12, 4.0, dim)
    rng = np.random.default_rng(dim)
    for x in initial_configurations(system, 5, seed=dim):
        for _ in range(4):
            i = int(rng.integers(12))
            new = np.clip(x[i] + rng.uniform(-0.3, 0.3, dim), 0, 4.0)
            moved = x.copy()
            moved[i] = new
            gamma = float(rng.uniform(0, 3))
            expected = lj_energy(moved, gamma) - lj_energy(x, gamma)
            assert move_delta(x, i, new, gamma) == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_lj_energy_by_hand():
    # two particles at r = 2^(1/6) (the minimum, -1) at heights 1 and 1: U = -1 + 4 * 0.5 * 2
    r = 2 ** (1 / 6)
    x = np.array([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]])
    assert lj_energy(x, 0.5) == pytest.approx(-1.0 + 4.0)
    batch = lj_energy(np.stack([x, x]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(batch, [-1.0, -1.0 + 8.0])
    assert lj_energy(x[:, :2], 0.0) == pytest.approx(-1.0)  # 2-D, height = y


# ---------------------------------------------------------------- sampling


def test_ideal_gas_at_tiny_density_accepts_every_move():
    system = LJSystem(2, 1000.0)
    chains = Chains(system, initial_configurations(system, 2, 0), 0.0, 0.2, seed=0)
    chains.run(5000)
    assert np.all(chains.acceptance > 0.999)


def test_mean_height_falls_as_gravity_rises():
    system = LJSystem(10, 4.0)
    gammas = np.repeat([0.25, 0.5, 1.0], 2)
    chains = Chains(system, initial_configurations(system, 6, 1), gammas, 0.3, seed=1)
    chains.run(1000)
    rec = chains.run(3000, 10, record_positions=True)
    heights = [mean_height(rec.positions[gammas == g]) for g in (0.25, 0.5, 1.0)]
    # the ideal gas would give 0.95, 0.50, 0.25; the fluid's layers sit a little higher, but
    # each doubling of gamma must lower the mean height clearly
    assert heights[0] > 1.2 * heights[1] > 1.2**2 * heights[2]


def test_barometric_profile_of_a_dilute_gas():
    # 3 particles in a box of 40: pairs rarely meet, so the height density is the ideal gas's,
    # b exp(-b z) / (1 - exp(-b L)) with b = 4 gamma / T = 0.2 (scale height 5)
    system, gamma, box = LJSystem(3, 40.0), 0.05, 40.0
    chains = Chains(system, initial_configurations(system, 8, 2), gamma, 4.0, seed=2)
    chains.run(500)
    z = chains.run(20000, 10, record_positions=True).positions[..., -1]  # (R, T, N)
    g = integrated_autocorrelation_time(np.moveaxis(z, 1, -1))
    b = 4 * gamma / system.temperature
    edges = np.linspace(0, box, 21)
    observed, _ = np.histogram(z, bins=edges)
    expected = z.size * (np.exp(-b * edges[:-1]) - np.exp(-b * edges[1:])) / -np.expm1(-b * box)
    well = expected >= 50
    assert well.sum() >= 8
    assert np.max(np.abs(z_scores(observed[well], expected[well], g))) < Z_MAX
    exact_mean = 1 / b - box / np.expm1(b * box)
    assert abs(z.mean() - exact_mean) < Z_MAX * z.std() * math.sqrt(g / z.size)
    centres, density = density_profile(z[..., None], box, 20)
    assert np.sum(density) * (box / 20) == pytest.approx(1.0)


def pair_density_in_cube(r: np.ndarray, box: float) -> np.ndarray:
    """Density (unnormalised) of the distance of two uniform points in a cube of side ``box``, r <= box."""
    s = r / box
    return r**2 * (4 * np.pi - 6 * np.pi * s + 8 * s**2 - s**3)


def test_pair_distance_of_two_particles_follows_boltzmann():
    box, temperature = 4.0, 1.0
    system = LJSystem(2, box, 3, temperature)
    chains = Chains(system, initial_configurations(system, 16, 4), 0.0, 1.5, seed=4)
    chains.run(500)
    x = chains.run(20000, 5, record_positions=True).positions  # (R, T, 2, 3)
    r = np.linalg.norm(x[:, :, 0] - x[:, :, 1], axis=-1)  # (R, T)
    g = integrated_autocorrelation_time(r)
    lo, hi = 0.85, 3.0  # the formula holds for r <= L; below 0.85 the Boltzmann factor is < 1e-6
    edges = np.linspace(lo, hi, 23)
    fine = np.linspace(lo, hi, 20001)
    u = 4 * (fine**-12 - fine**-6)
    weight = np.exp(-u / temperature) * pair_density_in_cube(fine, box)
    cumulative = np.concatenate([[0], np.cumsum((weight[1:] + weight[:-1]) / 2 * np.diff(fine))])
    inside = (r >= lo) & (r < hi)
    expected = inside.sum() * np.diff(np.interp(edges, fine, cumulative)) / cumulative[-1]
    observed, _ = np.histogram(r[inside], bins=edges)
    well = expected >= 50
    assert well.sum() >= 18
    assert np.max(np.abs(z_scores(observed[well], expected[well], g))) < Z_MAX
    # the repulsive core: exp(-U(0.9)/T) = 1.3e-3 and exp(-U(0.85)/T) = 3e-8
    assert np.sum(r < 0.9) < 1e-3 * r.size


def test_reflection_keeps_every_coordinate_in_the_box():
    system = LJSystem(2, 2.0, 3)
    chains = Chains(system, initial_configurations(system, 4, 5), 0.0, 0.99, seed=5)
    x = chains.run(3000, 1, record_positions=True).positions
    assert x.min() >= 0.0 and x.max() <= 2.0
    assert x.min() < 0.01 and x.max() > 1.99  # the walls are reached (and reflected from)
    assert np.all((chains.positions >= 0) & (chains.positions <= 2.0))


def test_running_energy_matches_the_exact_energy():
    system = LJSystem(20, 4.0)
    chains = Chains(system, initial_configurations(system, 4, 6), 1.5, 0.2, seed=6)
    chains.run(500)
    np.testing.assert_allclose(chains.energy, lj_energy(chains.positions, 1.5), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_chains_with_one_or_two_threads():
    system = LJSystem(15, 4.0)
    start = initial_configurations(system, 6, 7)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            numba.set_num_threads(threads)
            chains = Chains(system, start, [0.5, 1, 2, 0.5, 1, 2], 0.25, seed=7, key=(3,))
            rec = chains.run(300, 10, record_positions=True)
            results.append((chains.positions, chains.energy, chains.accepted, rec.energy, rec.positions))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)
    different = Chains(system, start, [0.5, 1, 2, 0.5, 1, 2], 0.25, seed=8, key=(3,))
    different.run(300)
    assert not np.array_equal(different.positions, results[0][0])


def test_simulate_is_reproducible_and_consistent(small_sim):
    again = simulate(
        LJSystem(5, 4.0), [0.5, 1.0], 10, replicas=4, kick=0.3, seed=3, preliminary_sweeps=100, progress=False
    )
    for name in ("positions", "gamma", "energy", "replica"):
        assert np.array_equal(getattr(small_sim, name), getattr(again, name))
    sim = small_sim
    assert sim.positions.shape == (20, 5, 3) and sim.positions.dtype == np.float32
    np.testing.assert_array_equal(sim.gamma, np.repeat(np.float32([0.5, 1.0]), 10))
    # 10 samples from 4 replicas: 3 saves each, trimmed; replicas interleave
    np.testing.assert_array_equal(sim.replica[:10], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    np.testing.assert_allclose(sim.energy, lj_energy(sim.positions, sim.gamma), rtol=1e-4, atol=1e-4)
    for d in sim.diagnostics:
        assert d.energy_drift < 1e-9
        assert d.preliminary_sweeps in {100 << doublings for doublings in range(MAX_DOUBLINGS + 1)}
        assert 1 <= d.lag <= len(d.energy_acf) - 1
        assert d.moves == 4 * 5 * (d.preliminary_sweeps + 3 * d.lag)
        assert np.all((d.acceptance > 0) & (d.acceptance < 1))
        assert d.energy_traces.shape == (4, d.preliminary_sweeps + 1)
        assert d.energy_acf[0] == pytest.approx(1.0) and d.position_acf[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- set-up and validation


@pytest.mark.parametrize(
    ("n", "dim", "box"), [(2, 3, 1.8), (27, 3, 2.7), (30, 3, 3.6), (30, 3, 5.0), (10, 2, 3.6), (16, 2, 3.6)]
)
def test_initial_configurations_do_not_overlap(n, dim, box):
    system = LJSystem(n, box, dim)
    x = initial_configurations(system, 6, seed=0)
    assert x.shape == (6, n, dim)
    assert x.min() >= 0 and x.max() <= box
    for conf in x:
        assert pair_distances(conf).min() >= MIN_SPACING - 1e-12
    np.testing.assert_array_equal(x, initial_configurations(system, 6, seed=0))
    if system.lattice_side**dim > n or box > system.min_box:
        assert not np.array_equal(x[0], x[1])


def test_validate_names_the_problem():
    with pytest.raises(UsageError, match="at least 2 particles"):
        LJSystem(1, 5.0).validate()
    with pytest.raises(UsageError, match="temperature"):
        LJSystem(30, 5.0, 3, 0.0).validate()
    with pytest.raises(UsageError, match="temperature"):
        LJSystem(30, 5.0, 3, float("nan")).validate()
    with pytest.raises(UsageError, match="dim must be 2 or 3"):
        LJSystem(30, 5.0, 4).validate()
    with pytest.raises(UsageError, match="box side"):
        LJSystem(30, -1.0).validate()
    with pytest.raises(UsageError, match=r"too small for 30 .* at least 3\.6 "):
        LJSystem(30, 3.5).validate()
    LJSystem(30, 3.6).validate()
    with pytest.raises(UsageError, match=r"at least 2\.7 "):
        LJSystem(8, 2.0, 2).validate()  # 3 x 3 lattice in 2-D
    with pytest.raises(UsageError, match="kick"):
        check_kick(2.5, 5.0)
    with pytest.raises(UsageError, match="kick"):
        check_kick(0.0, 5.0)


# ---------------------------------------------------------------- statistics


def ar1(phi: float, shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=shape) * math.sqrt(1 - phi**2)
    x = np.empty(shape)
    x[:, 0] = rng.normal(size=shape[0])
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


@pytest.mark.parametrize("criterion", ["standard_error", "effective_samples"])
def test_detect_equilibration_finds_the_knee(criterion):
    rng = np.random.default_rng(0)
    tau, amplitude = 50.0, 20.0
    t = np.arange(4000)
    trace = amplitude * np.exp(-t / tau) + rng.normal(size=t.size)
    t0 = detect_equilibration(trace, criterion=criterion)
    # the relaxation sinks into the unit noise at tau ln(20) = 150 sweeps; before 2 tau it is
    # still 2.7 sigma high, after 8 tau the discarded data would be wasted
    assert 2 * tau <= t0 <= 8 * tau


def test_standard_error_criterion_survives_slow_fluctuations():
    # equilibrium noise correlated over ~100 steps (AR(1), phi 0.99), longer than the transient:
    # maximising N_eff alone keeps the transient (t0 = 0), the standard error does not
    trace = 20 * np.exp(-np.arange(20000) / 50) + ar1(0.99, (1, 20000), 1)[0]
    assert detect_equilibration(trace, criterion="effective_samples") == 0
    assert 100 <= detect_equilibration(trace) <= 1000


def test_autocorrelation_and_decorrelation_lag_of_ar1():
    phi, threshold = 0.9, 0.1
    x = ar1(phi, (8, 20000), 2)
    acf = autocorrelation(x, 60)
    np.testing.assert_allclose(acf[:6], phi ** np.arange(6), atol=0.02)
    expected = math.log(threshold) / math.log(phi)  # 21.9
    assert abs(decorrelation_lag(acf, threshold) - expected) <= 2
    assert integrated_autocorrelation_time(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.15)
    # from a stored autocorrelation (a simulation's diagnostics): the same sum, 19 for phi 0.9
    assert iat_from_acf(phi ** np.arange(400)) == pytest.approx((1 + phi) / (1 - phi), rel=1e-6)
    assert iat_from_acf(acf, 20000) == pytest.approx(integrated_autocorrelation_time(x, 60), rel=1e-9)
    assert iat_from_acf([1.0, -0.2, 0.5]) == 1.0  # stops at the first non-positive lag
    assert decorrelation_lag(acf[:10], threshold) is None
    assert np.all(np.isnan(autocorrelation(np.ones((3, 50)), 5)))


def test_density_profile_and_mean_height():
    x = np.zeros((2, 3, 3))
    x[..., -1] = [[0.5, 1.5, 1.5], [3.5, 3.5, 3.5]]
    centres, density = density_profile(x, 4.0, 4)
    np.testing.assert_allclose(centres, [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(density, [1 / 6, 2 / 6, 0, 3 / 6])
    assert mean_height(x) == pytest.approx((0.5 + 3 + 10.5) / 6)


# ---------------------------------------------------------------- dataset files


def test_save_load_round_trip_is_exact(small_sim, tmp_path):
    path = save_lj_dataset(small_sim, tmp_path / "sim.npz")
    loaded = load_lj_dataset(path)
    for name in ("positions", "gamma", "energy", "replica"):
        a, b = getattr(small_sim, name), getattr(loaded, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert loaded.settings == small_sim.settings
    for a, b in zip(small_sim.diagnostics, loaded.diagnostics, strict=True):
        assert a.scalars() == b.scalars()
        for name in ("energy_traces", "energy_acf", "position_acf", "acceptance"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
    assert [p.name for p in tmp_path.iterdir()] == ["sim.npz"]


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(dst, **arrays)
    return dst


def test_load_errors_say_what_is_wrong(small_sim, tmp_path):
    good = save_lj_dataset(small_sim, tmp_path / "good.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_lj_dataset(tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_lj_dataset(tmp_path / "text.npz")
    with pytest.raises(DataError, match="missing field.*energy"):
        load_lj_dataset(_rewrite(good, tmp_path / "a.npz", energy=None))
    nan = small_sim.positions.copy()
    nan[3, 1, 0] = np.nan
    with pytest.raises(DataError, match="positions contain NaN"):
        load_lj_dataset(_rewrite(good, tmp_path / "b.npz", positions=nan))
    outside = small_sim.positions.copy()
    outside[0, 0, 2] = 4.5
    with pytest.raises(DataError, match=r"outside the box \[0, 4\]"):
        load_lj_dataset(_rewrite(good, tmp_path / "c.npz", positions=outside))
    with pytest.raises(DataError, match="shape"):
        load_lj_dataset(_rewrite(good, tmp_path / "d.npz", energy=small_sim.energy[:-1]))
    with pytest.raises(DataError, match="re-create it with 'keras-clust lj-fluid simulate'"):
        load_lj_dataset(_rewrite(good, tmp_path / "e.npz", positions=outside))


def test_failed_save_leaves_nothing(small_sim, tmp_path, monkeypatch):
    path = tmp_path / "sim.npz"
    save_lj_dataset(small_sim, path)
    before = path.read_bytes()

    def broken(file, *args, **kwargs):
        file.write(b"PK half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        save_lj_dataset(small_sim, path)
    with pytest.raises(OSError, match="disk full"):
        save_lj_dataset(small_sim, tmp_path / "new.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.npz"]
    assert path.read_bytes() == before
    assert zipfile.is_zipfile(path)
