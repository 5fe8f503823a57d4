"""Synthetic 2-D vector fields with ground truth: eleven flow types on a square grid.

Every field is one flow pattern (a source, a vortex, a saddle...) placed at a random centre,
turned by a random angle, scaled to a random strength and blurred by Gaussian noise. The
parameters of every field are kept, so a clustering can be checked against the flow type and
its errors explained by the centre, angle or strength.

Layout: ``fields[n, i, j, c]`` is channel ``c`` of field ``n`` at the pixel centre
``(x_j, y_i)`` with ``x_j = y_j = -1 + (2 j + 1) / size`` (:func:`pixel_centres`): rows run along
y, **row 0 is y = -1 (the bottom)**, columns along x. Draw with ``origin="lower"``.

A pattern is defined in local coordinates ``q = R(-theta) (p - c)`` and its velocity ``w(q)`` is
turned back by ``R(theta)``. With ``r = |q|``, ``e_r = q / r``, ``e_t = (-q_y, q_x) / r``
(counter-clockwise) and the profile ``f(r) = 2 r r0 / (r^2 + r0^2)`` (1 at ``r = r0``):

========== =====================================================================
source     ``+f e_r``
sink       ``-f e_r``
vortex_ccw ``+f e_t``; vortex_cw ``-f e_t``
spiral_out ``(f e_r + f e_t) / sqrt 2``; spiral_in ``(-f e_r + f e_t) / sqrt 2``
uniform    ``(1, 0)``
saddle     ``(q_x, -q_y)``
shear      ``(q_y, 0)``
dipole     a source at ``q = (+r0, 0)`` plus a sink at ``(-r0, 0)``
vortex_pair a ccw vortex at ``(0, +r0)`` and a cw vortex at ``(0, -r0)`` (a jet along +x)
========== =====================================================================

Each field is then scaled so its largest speed on the grid is its strength ``s``, and noise of
standard deviation ``noise * s`` is added to u and v; the magnitude is that of the noisy u, v.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from keras_clust.errors import UsageError
from keras_clust.fields.pooling import depths

FLOW_TYPES = (
    "uniform",
    "source",
    "sink",
    "vortex_cw",
    "vortex_ccw",
    "saddle",
    "shear",
    "spiral_in",
    "spiral_out",
    "dipole",
    "vortex_pair",
)
CHANNELS = ("u", "v", "magnitude")
PARAMS = ("class", "centre_x", "centre_y", "rotation_deg", "strength", "core_radius")
CENTRE_RANGE, STRENGTH_RANGE, CORE_RANGE = (-0.5, 0.5), (0.5, 1.5), (0.2, 0.4)
_CHUNK = 256  # fields computed at once: bounds the float64 temporaries to ~13 MB each at 80x80

Pattern = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class FieldSet:
    """Vector fields, their labels and (for synthetic data) the parameters that made them.

    Attributes:
        fields: float32 array ``(N, H, W, C)``; row 0 is y = -1 (see the module docstring).
        labels: int64 class of every field, or None for unlabelled data.
        class_names: Name of every class, indexed by label (empty without labels).
        channels: Name of every channel (``u``, ``v``, ``magnitude``, or ``c0``, ``c1``... for user data).
        params: Per-field ground truth (``class``, ``centre_x``, ``centre_y``, ``rotation_deg``,
            ``strength``, ``core_radius``), each ``(N,)``; empty for user data.
        note: One sentence for reports: what data, how many, which seed or file.
        settings: The arguments that produced the data (JSON-able).
    """

    fields: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    channels: tuple[str, ...]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of fields."""
        return int(self.fields.shape[0])

    @property
    def size(self) -> int:
        """Side of the square grid in pixels."""
        return int(self.fields.shape[1])


def pixel_centres(size: int) -> np.ndarray:
    """Coordinates of the ``size`` pixel centres along one axis, ascending in (-1, 1)."""
    return -1.0 + (2.0 * np.arange(size) + 1.0) / size


def _radial(qx: np.ndarray, qy: np.ndarray, r0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f(r) e_r = 2 r0 q / (r^2 + r0^2)``: no division by ``r``, so finite at the centre."""
    k = 2.0 * r0 / (qx * qx + qy * qy + r0 * r0)
    return k * qx, k * qy


def _tangential(qx: np.ndarray, qy: np.ndarray, r0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f(r) e_t``, counter-clockwise."""
    k = 2.0 * r0 / (qx * qx + qy * qy + r0 * r0)
    return -k * qy, k * qx


def _spiral(sign: float) -> Pattern:
    def pattern(qx, qy, r0):
        (ax, ay), (bx, by) = _radial(qx, qy, r0), _tangential(qx, qy, r0)
        return (sign * ax + bx) / math.sqrt(2.0), (sign * ay + by) / math.sqrt(2.0)

    return pattern


def _dipole(qx, qy, r0):
    (ax, ay), (bx, by) = _radial(qx - r0, qy, r0), _radial(qx + r0, qy, r0)
    return ax - bx, ay - by


def _vortex_pair(qx, qy, r0):
    (ax, ay), (bx, by) = _tangential(qx, qy - r0, r0), _tangential(qx, qy + r0, r0)
    return ax - bx, ay - by


def _scaled(pattern: Pattern, sign: float) -> Pattern:
    def scaled(qx, qy, r0):
        wx, wy = pattern(qx, qy, r0)
        return sign * wx, sign * wy

    return scaled


PATTERNS: dict[str, Pattern] = {
    "uniform": lambda qx, qy, r0: (np.ones_like(qx), np.zeros_like(qx)),
    "source": _radial,
    "sink": _scaled(_radial, -1.0),
    "vortex_cw": _scaled(_tangential, -1.0),
    "vortex_ccw": _tangential,
    "saddle": lambda qx, qy, r0: (qx, -qy),
    "shear": lambda qx, qy, r0: (qy, np.zeros_like(qx)),
    "spiral_in": _spiral(-1.0),
    "spiral_out": _spiral(+1.0),
    "dipole": _dipole,
    "vortex_pair": _vortex_pair,
}


def clean_fields(
    flow_type: str,
    centre: np.ndarray,
    rotation_deg: np.ndarray,
    strength: np.ndarray,
    core_radius: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free u and v of ``m`` fields of one flow type, each ``(m, size, size)`` float64.

    Args:
        flow_type: One of :data:`FLOW_TYPES`.
        centre: ``(m, 2)`` centres ``(x, y)``.
        rotation_deg: ``(m,)`` angles in degrees, counter-clockwise.
        strength: ``(m,)`` largest speed of each field.
        core_radius: ``(m,)`` radius ``r0`` where the profile peaks.
        size: Side of the grid.
    """
    xs = pixel_centres(size)
    px, py = xs[None, None, :], xs[None, :, None]  # rows along y, columns along x

    def column(a):
        return np.asarray(a, dtype=np.float64)[:, None, None]

    theta = np.deg2rad(column(rotation_deg))
    cos, sin = np.cos(theta), np.sin(theta)
    dx, dy = px - column(centre[:, 0]), py - column(centre[:, 1])
    qx, qy = cos * dx + sin * dy, -sin * dx + cos * dy
    wx, wy = PATTERNS[flow_type](qx, qy, column(core_radius))
    wx, wy = np.broadcast_to(wx, qx.shape), np.broadcast_to(wy, qx.shape)
    u, v = cos * wx - sin * wy, sin * wx + cos * wy
    peak = np.sqrt(u * u + v * v).max(axis=(1, 2), keepdims=True)
    scale = column(strength) / np.maximum(peak, np.finfo(np.float64).tiny)
    return u * scale, v * scale


def _names(values, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    names = (values,) if isinstance(values, str) else tuple(values)
    unknown = [n for n in names if n not in allowed]
    if not names or unknown:
        bad = f"unknown {what} {', '.join(map(repr, unknown))}" if unknown else f"no {what} given"
        raise UsageError(f"{bad}; choose from {', '.join(allowed)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{what} {', '.join(repeated)} given more than once; list each once")
    return names


def check_size(size: int) -> int:
    """Return ``size`` if a pooling stack can take it to one cell, else raise :class:`UsageError`."""

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2 or not depths(int(size)):
        raise UsageError(f"size {size!r} has no pooling table; use a product of at least 2 factors >= 2, such as 80")
    return int(size)


def _check_arguments(n_per_class, size, channels, flow_types, noise, max_rotation, seed):
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise UsageError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    size = check_size(size)
    channels = _names(channels, CHANNELS, "channel")
    flow_types = _names(flow_types, FLOW_TYPES, "flow type")
    if not (isinstance(noise, (int, float, np.number)) and math.isfinite(noise) and noise >= 0):
        raise UsageError(f"noise must be a finite number >= 0, got {noise!r}")
    if not (isinstance(max_rotation, (int, float, np.number)) and 0 <= max_rotation <= 180):
        raise UsageError(f"max_rotation must be in [0, 180] degrees, got {max_rotation!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed must be an integer >= 0, got {seed!r}")
    return int(n_per_class), size, channels, flow_types, float(noise), float(max_rotation), int(seed)


def generate_fields(
    n_per_class: int,
    *,
    size: int = 80,
    channels: Sequence[str] = CHANNELS,
    flow_types: Sequence[str] = FLOW_TYPES,
    noise: float = 0.05,
    max_rotation: float = 45.0,
    seed: int = 0,
) -> FieldSet:
    """Draw ``n_per_class`` fields of every flow type, shuffled, with their parameters.

    Args:
        n_per_class: Fields per flow type (>= 1).
        size: Side of the square grid; must have a pooling table (80, 16, 20, 64...).
        channels: Which of ``u``, ``v``, ``magnitude`` to keep, in this order.
        flow_types: Which classes to draw; label ``k`` is ``flow_types[k]``.
        noise: Gaussian noise on u and v, as a fraction of each field's strength.
        max_rotation: Angles are drawn uniformly from ``[-max_rotation, +max_rotation]`` degrees.
        seed: Seed of the ``numpy`` generator; the same seed gives the same arrays.

    Returns:
        A :class:`FieldSet` with float32 fields ``(N, size, size, len(channels))``, int64 labels and
        the parameters of every field.

    Raises:
        UsageError: for an argument that cannot work (one line saying which and what to use).
    """
    n_per_class, size, channels, flow_types, noise, max_rotation, seed = _check_arguments(
        n_per_class, size, channels, flow_types, noise, max_rotation, seed
    )
    rng = np.random.default_rng(seed)
    n = n_per_class * len(flow_types)
    labels = rng.permutation(np.repeat(np.arange(len(flow_types), dtype=np.int64), n_per_class))
    centre = rng.uniform(*CENTRE_RANGE, size=(n, 2))
    rotation = rng.uniform(-max_rotation, max_rotation, size=n)
    strength = rng.uniform(*STRENGTH_RANGE, size=n)
    core = rng.uniform(*CORE_RANGE, size=n)
    fields = np.empty((n, size, size, len(channels)), dtype=np.float32)
    for k, flow_type in enumerate(flow_types):
        members = np.flatnonzero(labels == k)
        for start in range(0, len(members), _CHUNK):
            idx = members[start : start + _CHUNK]
            u, v = clean_fields(flow_type, centre[idx], rotation[idx], strength[idx], core[idx], size)
            if noise > 0:
                sigma = (noise * strength[idx])[:, None, None]
                u = u + sigma * rng.standard_normal(u.shape)
                v = v + sigma * rng.standard_normal(v.shape)
            planes = {"u": u, "v": v, "magnitude": np.sqrt(u * u + v * v)}
            fields[idx] = np.stack([planes[c] for c in channels], axis=-1)
    params = {
        "class": labels.copy(),
        "centre_x": centre[:, 0],
        "centre_y": centre[:, 1],
        "rotation_deg": rotation,
        "strength": strength,
        "core_radius": core,
    }
    settings = {
        "n_per_class": n_per_class,
        "size": size,
        "channels": list(channels),
        "flow_types": list(flow_types),
        "noise": noise,
        "max_rotation": max_rotation,
        "seed": seed,
    }
    note = (
        f"synthetic 2-D vector fields: {n} of {size}x{size} ({n_per_class} per flow type, {len(flow_types)} "
        f"types), channels {', '.join(channels)}, noise {noise:g}, rotation up to {max_rotation:g} degrees, "
        f"seed {seed}"
    )
    return FieldSet(fields, labels, flow_types, channels, params, note, settings)
