"""A search space declared once, translated for Optuna and for KerasTuner.

A :class:`SearchSpace` is a tuple of parameters (integers, floats, choices), each
optionally active only when another parameter takes given values (``momentum`` only
for SGD). :func:`suggest_optuna` and :func:`suggest_kerastuner` turn it into plain
keyword arguments for a model builder; neither engine's code knows the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keras_clust.errors import UsageError


@dataclass(frozen=True)
class Param:
    """One hyper-parameter.

    Attributes:
        name: Keyword argument of the model builder.
        kind: ``int``, ``float`` or ``choice``.
        low, high: Bounds (inclusive) for ``int`` and ``float``.
        log: Sample on a log scale.
        choices: Values of a ``choice``.
        when: ``(parent, values)``: active only when ``parent`` is one of ``values``.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    when: tuple[str, tuple] | None = None

    def __post_init__(self):
        if self.kind not in ("int", "float", "choice"):
            raise UsageError(f"parameter {self.name!r}: kind must be int, float or choice")
        if self.kind == "choice" and not self.choices:
            raise UsageError(f"parameter {self.name!r}: a choice needs choices")
        if self.kind != "choice" and not (self.low is not None and self.high is not None and self.low <= self.high):
            raise UsageError(f"parameter {self.name!r}: needs low <= high")
        if self.log and self.kind != "choice" and self.low <= 0:
            raise UsageError(f"parameter {self.name!r}: a log scale needs low > 0")

    def active(self, values: Mapping[str, Any]) -> bool:
        return self.when is None or values.get(self.when[0]) in self.when[1]

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return value in self.choices
        return self.low <= value <= self.high


def int_param(name: str, low: int, high: int, log: bool = False, when=None) -> Param:
    return Param(name, "int", low, high, log, when=when)


def float_param(name: str, low: float, high: float, log: bool = False, when=None) -> Param:
    return Param(name, "float", low, high, log, when=when)


def choice_param(name: str, choices: Sequence, when=None) -> Param:
    return Param(name, "choice", choices=tuple(choices), when=when)


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters; a parent comes before the parameters it gates.

    Attributes:
        params: The parameters.
        fixed: Keyword arguments passed to the builder unchanged.
    """

    params: tuple[Param, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        seen: set[str] = set()
        for p in self.params:
            if p.when is not None and p.when[0] not in seen:
                raise UsageError(f"parameter {p.name!r} depends on {p.when[0]!r}, declared after it")
            seen.add(p.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def validate(self, values: Mapping[str, Any]) -> dict:
        """Check a full configuration (e.g. read from a file); returns the active values."""
        out = {}
        for p in self.params:
            if not p.active(out):
                continue
            if p.name not in values:
                raise UsageError(f"hyper-parameters lack {p.name!r}")
            value = values[p.name]
            if not p.contains(value):
                raise UsageError(f"hyper-parameter {p.name}={value!r} is outside the search space")
            out[p.name] = value
        return out

    def builder_kwargs(self, values: Mapping[str, Any]) -> dict:
        """The builder's keyword arguments: active values plus the fixed ones."""
        return {**self.fixed, **{k: v for k, v in values.items() if k in self.names}}


def suggest_optuna(space: SearchSpace, trial) -> dict:
    """Ask an Optuna trial for each active parameter; returns ``{name: value}``."""
    values: dict[str, Any] = {}
    for p in space.params:
        if not p.active(values):
            continue
        if p.kind == "int":
            values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        elif p.kind == "float":
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        else:
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
    return values


def optuna_distributions(space: SearchSpace) -> dict:
    """Optuna distributions of every parameter (to add trials found by another engine)."""
    import optuna.distributions as d

    out = {}
    for p in space.params:
        if p.kind == "int":
            out[p.name] = d.IntDistribution(int(p.low), int(p.high), log=p.log)
        elif p.kind == "float":
            out[p.name] = d.FloatDistribution(p.low, p.high, log=p.log)
        else:
            out[p.name] = d.CategoricalDistribution(list(p.choices))
    return out


def suggest_kerastuner(space: SearchSpace, hp) -> dict:
    """Declare each parameter on KerasTuner's ``hp``; returns the active ``{name: value}``."""
    values: dict[str, Any] = {}
    for p in space.params:
        if p.when is not None:
            with hp.conditional_scope(p.when[0], list(p.when[1])):
                value = _kt_value(p, hp)
        else:
            value = _kt_value(p, hp)
        if p.active(values) and value is not None:
            values[p.name] = value
    return values


def _kt_value(p: Param, hp):
    sampling = "log" if p.log else "linear"
    if p.kind == "int":
        return hp.Int(p.name, int(p.low), int(p.high), sampling=sampling)
    if p.kind == "float":
        return hp.Float(p.name, p.low, p.high, sampling=sampling)
    return hp.Choice(p.name, list(p.choices))
