"""Pieces of work for tests/test_parallel.py (module level, so spawned workers can import them)."""

import os
import time

from keras_clust.errors import DataError


def square_slowly(item: int) -> tuple[int, int]:
    time.sleep(0.3 * item)  # later items finish first when they run side by side
    return item * item, os.getpid()


def fail_on_two(item: int) -> int:
    if item == 2:
        raise DataError("piece 2 is bad")
    time.sleep(0.2)
    return item
