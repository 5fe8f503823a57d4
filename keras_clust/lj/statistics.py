"""Statistics of Monte Carlo traces: autocorrelation, equilibration, decorrelation lag, density profiles.

Pure NumPy. A *series* is a 1-D array indexed by time (sweeps); a batch of series has time on
its last axis and any leading axes (replicas, particles, coordinates), which are pooled.
"""

from __future__ import annotations

import numpy as np

from keras_clust.errors import UsageError

#: Number of candidate equilibration times tried by :func:`detect_equilibration`.
EQUILIBRATION_CANDIDATES = 50

#: Complex FFT entries processed at once by :func:`autocorrelation` (bounds its memory to ~64 MiB).
_FFT_BLOCK = 1 << 22


def autocorrelation(x, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation ``rho(0..max_lag)`` of a series, or pooled over a batch of series.

    Each series has its own time mean subtracted. The autocovariance at lag ``k`` is the
    unbiased ``sum_t dx_t dx_{t+k} / (T - k)``; for a batch it is averaged over the series
    and divided by their average variance (so series of small variance weigh little instead
    of adding noise). Computed with zero-padded FFTs, in blocks of series to bound memory.

    Args:
        x: ``(T,)`` or ``(..., T)`` array, time on the last axis.
        max_lag: Largest lag returned; default ``T - 1``. Must be below ``T``.

    Returns:
        ``(max_lag + 1,)`` float64 array with ``rho[0] = 1``; all NaN when every series is constant.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] < 2:
        raise UsageError(f"autocorrelation needs a series of at least 2 points, got shape {x.shape}")
    t = x.shape[-1]
    max_lag = t - 1 if max_lag is None else int(max_lag)
    if not 0 <= max_lag < t:
        raise UsageError(f"max_lag must be in [0, {t - 1}] for a series of {t} points, got {max_lag}")
    series = x.reshape(-1, t)
    n_fft = 1 << int(np.ceil(np.log2(2 * t)))
    block = max(1, _FFT_BLOCK // n_fft)
    acov = np.zeros(max_lag + 1)
    for start in range(0, len(series), block):
        dx = series[start : start + block]
        dx = dx - dx.mean(axis=1, keepdims=True)
        f = np.fft.rfft(dx, n=n_fft, axis=1)
        acov += np.fft.irfft(f.real**2 + f.imag**2, n=n_fft, axis=1)[:, : max_lag + 1].sum(axis=0)
    acov /= len(series) * (t - np.arange(max_lag + 1))
    if not acov[0] > 0:
        return np.full(max_lag + 1, np.nan)
    return acov / acov[0]


def integrated_autocorrelation_time(x, max_lag: int | None = None) -> float:
    """Statistical inefficiency ``g = 1 + 2 sum_k (1 - k/T) rho(k)`` of a series (``N_eff = T / g``).

    The sum runs over lags ``k >= 1`` until ``rho`` first drops to zero or below (the
    truncation of pymbar's ``statisticalInefficiency``, Chodera 2016). ``g`` is at least 1.

    Args:
        x: ``(T,)`` series or ``(..., T)`` batch (pooled as in :func:`autocorrelation`).
        max_lag: Largest lag summed; default ``T - 1``.
    """
    x = np.asarray(x, dtype=np.float64)
    return iat_from_acf(autocorrelation(x, max_lag), x.shape[-1])


def iat_from_acf(acf, length: int | None = None) -> float:
    """:func:`integrated_autocorrelation_time` from an autocorrelation already computed (``acf[0]
    = 1``), e.g. the ones a simulation's diagnostics keep; ``length`` is the series' length
    (None: the ``1 - k/T`` factor left out, as for ``T`` much longer than the lags summed).
    When ``acf`` never reaches zero the sum stops at its last lag and ``g`` is a lower bound."""
    rho = np.asarray(acf, dtype=np.float64)
    if not len(rho) or np.isnan(rho[0]):
        return 1.0
    nonpositive = np.flatnonzero(rho[1:] <= 0)
    stop = 1 + (nonpositive[0] if len(nonpositive) else len(rho) - 1)
    k = np.arange(1, stop)
    weight = 1.0 if length is None else 1.0 - k / length
    return max(1.0, 1.0 + 2.0 * float(np.sum(weight * rho[1:stop])))


def detect_equilibration(trace, candidates: int = EQUILIBRATION_CANDIDATES, criterion: str = "standard_error") -> int:
    """Start ``t0`` of the equilibrated part of a trace, chosen over a grid of candidates.

    With ``g(t0)`` the :func:`integrated_autocorrelation_time` of ``trace[t0:]``:

    - ``"effective_samples"`` maximises ``N_eff = (T - t0) / g(t0)`` (Chodera 2016, "A simple
      method for automated equilibration detection").
    - ``"standard_error"`` (default) minimises the squared standard error of the mean of
      ``trace[t0:]``, ``var(trace[t0:]) g(t0) / (T - t0)``, i.e. ``N_eff`` weighed by the
      variance. ``N_eff`` alone rewards keeping a transient that is *shorter* than the
      equilibrium correlation time (the transient then lowers ``g``): on the Lennard-Jones
      energy traces at gamma = 4 it returned ``t0 = 0`` although the trace falls from ~1200
      to ~0 in the first few hundred sweeps. The variance factor charges the transient for
      the spread it adds.

    Candidates are ``candidates`` evenly spaced indices in ``[0, (T - 1) / 2]``: a plateau
    reached only in the second half of the trace means the run is too short to tell.

    Args:
        trace: ``(T,)`` series, ``T >= 10``.
        candidates: Number of candidate ``t0`` values.
        criterion: ``"standard_error"`` or ``"effective_samples"``.

    Returns:
        The chosen ``t0`` (index into ``trace``).
    """
    trace = np.asarray(trace, dtype=np.float64)
    if trace.ndim != 1 or len(trace) < 10:
        raise UsageError(f"detect_equilibration needs a 1-D trace of at least 10 points, got shape {trace.shape}")
    if not np.all(np.isfinite(trace)):
        raise UsageError("the trace contains NaN or infinite values; equilibration cannot be detected")
    if criterion not in ("standard_error", "effective_samples"):
        raise UsageError(f"criterion must be 'standard_error' or 'effective_samples', got {criterion!r}")
    grid = np.unique(np.linspace(0, 0.5 * (len(trace) - 1), candidates).astype(int))
    scores = []
    for t0 in grid:
        tail = trace[t0:]
        n_eff = len(tail) / integrated_autocorrelation_time(tail)
        scores.append(n_eff if criterion == "effective_samples" else -tail.var() / n_eff)
    return int(grid[int(np.argmax(scores))])


def decorrelation_lag(acf, threshold: float) -> int | None:
    """First lag ``k >= 1`` with ``acf[k] < threshold``, or None if the autocorrelation never gets there."""
    acf = np.asarray(acf, dtype=np.float64)
    below = np.flatnonzero(acf[1:] < threshold)
    return int(below[0]) + 1 if len(below) else None


def density_profile(positions, box: float, bins: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Number density of particles along one axis, normalised to integrate to 1 over ``[0, box]``.

    Args:
        positions: ``(..., N, dim)`` coordinates (any number of leading sample axes).
        box: Side of the box; the histogram covers ``[0, box]``.
        bins: Number of equal bins.
        axis: Coordinate whose profile is taken; ``-1`` is the height (z in 3-D, y in 2-D).

    Returns:
        ``(bin centres, density)``, both ``(bins,)``.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2:
        raise UsageError(f"positions must be (..., N, dim), got shape {positions.shape}")
    values = positions[..., axis].ravel()
    counts, edges = np.histogram(values, bins=bins, range=(0.0, box))
    width = edges[1] - edges[0]
    density = counts / (max(len(values), 1) * width)
    return 0.5 * (edges[1:] + edges[:-1]), density


def mean_height(positions, axis: int = -1) -> float:
    """Mean of one coordinate (default the height) over every particle and sample."""
    return float(np.mean(np.asarray(positions, dtype=np.float64)[..., axis]))
