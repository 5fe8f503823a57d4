"""Pooling tables: every way a stack of max-pooling layers can take a side of ``size`` cells to 1.

A field autoencoder with ``k`` pooling layers (pool size = stride = ``f_i`` on both axes)
maps ``size`` cells to one when ``f_1 * ... * f_k == size`` and every ``f_i >= 2``. The
table for ``k`` layers is the list of these *ordered* factorisations: for 80 and two
layers ``[2, 40], [4, 20], [5, 16], [8, 10], [10, 8], [16, 5], [20, 4], [40, 2]``.
A search picks one row of the table for its depth, so it never proposes a stack that
does not end at one cell.
"""

from __future__ import annotations

import functools

from keras_clust.errors import UsageError

MIN_LAYERS, MAX_LAYERS = 2, 5


@functools.cache
def ordered_factorisations(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    """Every ``k``-tuple of integers >= 2 whose product is ``n``, in lexicographic order."""
    if k < 1 or n < 2:
        return ()
    if k == 1:
        return ((n,),)
    out = []
    for first in range(2, n + 1):
        if n % first == 0:
            out.extend((first, *rest) for rest in ordered_factorisations(n // first, k - 1))
    return tuple(out)


def pooling_table(size: int, num_layers: int) -> tuple[tuple[int, ...], ...]:
    """The pool sizes a ``num_layers``-deep stack can use on a ``size`` x ``size`` input.

    Raises:
        UsageError: when ``num_layers`` is outside 2-5 or no row exists (e.g. 5 layers need
            ``size`` to have five prime factors).
    """
    if not MIN_LAYERS <= num_layers <= MAX_LAYERS:
        raise UsageError(f"num_layers must be {MIN_LAYERS}-{MAX_LAYERS}, got {num_layers}")
    rows = ordered_factorisations(int(size), int(num_layers))
    if not rows:
        raise UsageError(
            f"{num_layers} pooling layers cannot take {size} cells to 1 (at most "
            f"{max_depth(size)} layers for {size}); use fewer layers"
        )
    return rows


def max_depth(size: int) -> int:
    """The deepest stack ``size`` allows: its number of prime factors, with multiplicity."""
    count, n, p = 0, int(size), 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            n, count = n // p, count + 1
        p += 1
    return count + (n > 1)


def depths(size: int) -> tuple[int, ...]:
    """The numbers of layers (within 2-5) that have at least one pooling row for ``size``."""
    return tuple(k for k in range(MIN_LAYERS, MAX_LAYERS + 1) if ordered_factorisations(int(size), k))


def pools_key(pools) -> str:
    """A pooling row as the string a search stores (``"2x2x2x2x5"``): Optuna choices must be scalars."""
    return "x".join(str(int(p)) for p in pools)


def parse_pools(text: str) -> tuple[int, ...]:
    """The inverse of :func:`pools_key` (``"2x2x2x2x5"`` or ``"2,2,2,2,5"``)."""
    try:
        return tuple(int(p) for p in str(text).replace(",", "x").split("x") if p.strip())
    except ValueError:
        raise UsageError(f"pool sizes {text!r} are not integers joined by 'x' or ',', e.g. 2x2x2x2x5") from None
