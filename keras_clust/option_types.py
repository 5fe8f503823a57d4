"""Parsers of option values: each takes the option's text and returns the value or raises
``argparse.ArgumentTypeError`` with what is wrong (argparse turns it into a one-line error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def k_or_auto(text: str) -> int | None:
    """argparse type: a number of clusters >= 2, or ``auto`` (None: chosen from the data)."""
    if str(text).strip().lower() == "auto":
        return None
    value = _number(int, text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be auto or a number of clusters >= 2, got {value}")
    return value


def k_bounds(text: str) -> tuple[int, int]:
    """argparse type: ``LOW-HIGH``, the numbers of clusters ``--k auto`` tries (2 <= LOW <= HIGH)."""
    parts = str(text).split("-")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be LOW-HIGH, e.g. 2-20; got {text!r}")
    low, high = (_number(int, part) for part in parts)
    if not 2 <= low <= high:
        raise argparse.ArgumentTypeError(f"needs 2 <= LOW <= HIGH, got {text!r}")
    return low, high


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(float, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def names_list(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """argparse type factory: comma-separated distinct names from ``allowed``, e.g. ``u,v``."""

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(p.strip() for p in text.split(",") if p.strip())
        bad = [v for v in values if v not in allowed]
        if not values or bad or len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"needs distinct names from {','.join(allowed)}; got {text!r}")
        return values

    return parse


def share_up_to_one(text: str) -> float:
    """argparse type: a share in (0, 1]."""
    value = _number(float, text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = _number(float, text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def positive_int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated positive integers, e.g. ``2,16,256``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("needs at least one positive integer, e.g. 2,16,256")
    values = []
    for part in parts:
        try:
            values.append(positive_int(part))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r}: {exc}") from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a value")
    return tuple(values)


def share(text: str) -> float:
    """argparse type: a share in [0, 1)."""
    value = _number(float, text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated distinct seeds >= 0, e.g. ``0,1,2,3,4``."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"needs distinct integers >= 0, e.g. 0,1,2,3,4; got {text!r}")
    return values
