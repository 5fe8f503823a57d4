"""The BS6207 Q1 toy problem: can an optimiser leave a local minimum over a bump?

The 1-D loss has a local minimum at x = 1 and a bump of width ``k`` beyond it:

    loss(x) = |x - 1|              for x <= 1 + k
    loss(x) = k - (x - 1 - k)      for x >  1 + k   (downhill again: escaped)

so its gradient is +1 on 1 < x < 1 + k and -1 elsewhere. Keras's own optimisers
(``keras.optimizers.SGD``, ``Adam``, ...) step a ``keras.Variable`` with that gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from keras_clust.errors import UsageError

OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "momentum": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
    "adamw": keras.optimizers.AdamW,
}


def bump_gradient(x, width: float = math.inf):
    """+1 on the bump (1 < x < 1 + width), -1 elsewhere (works on numbers and arrays)."""
    on_bump = (np.asarray(x) > 1.0) & (np.asarray(x) < 1.0 + width)
    return np.where(on_bump, 1.0, -1.0)


def bump_loss(x, width: float = math.inf):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 1.0 + width, np.abs(x - 1.0), width - (x - 1.0 - width))


@dataclass(frozen=True)
class Trajectory:
    """Positions x_0..x_steps of one optimiser and what they mean."""

    optimizer: str
    x: np.ndarray
    width: float

    @property
    def furthest(self) -> float:
        return float(self.x.max())

    @property
    def escape_height(self) -> float:
        """How far past the minimum it got: the widest bump it would have crossed."""
        return self.furthest - 1.0

    @property
    def escaped(self) -> bool:
        return bool(np.any(self.x >= 1.0 + self.width))


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise UsageError(f"learning rate must be a finite number > 0, got {learning_rate}")
    return OPTIMIZERS[name](learning_rate=learning_rate)


def run_optimizer(
    name: str, learning_rate: float = 0.3, steps: int = 20, width: float = math.inf, x0: float = 0.0
) -> Trajectory:
    """Apply ``steps`` updates of a Keras optimiser to ``x`` with the bump's gradient."""
    if steps < 1:
        raise UsageError(f"steps must be >= 1, got {steps}")
    if not width > 0:
        raise UsageError(f"bump width must be > 0, got {width}")
    opt = make_optimizer(name, learning_rate)
    x = keras.Variable(np.float32(x0), dtype="float32", name="x")
    xs = [float(x.numpy())]
    for _ in range(steps):
        g = keras.ops.convert_to_tensor(np.float32(bump_gradient(xs[-1], width)))
        opt.apply_gradients([(g, x)])
        xs.append(float(x.numpy()))
    return Trajectory(name, np.array(xs), width)


def adam_reference(
    learning_rate: float = 0.3,
    steps: int = 20,
    width: float = math.inf,
    x0: float = 0.0,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> np.ndarray:
    """The textbook Adam update in NumPy (float64), to cross-check Keras."""
    x, m, v, xs = x0, 0.0, 0.0, [x0]
    for t in range(1, steps + 1):
        g = float(bump_gradient(x, width))
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        x -= learning_rate * (m / (1 - beta_1**t)) / (math.sqrt(v / (1 - beta_2**t)) + epsilon)
        xs.append(x)
    return np.array(xs)
