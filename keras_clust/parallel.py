"""Independent pieces of work (the cells of a sweep) in several processes on this machine.

Each worker process is started with ``spawn`` (TensorFlow does not survive a ``fork``),
seeded with the run's seed as :func:`keras_clust.seeding.set_seed` does, and gets an equal share
of the cores as TensorFlow's intra-op threads, so ``N`` workers do not oversubscribe the
machine. A piece of work must seed its own models (``seed_model``), as every step of a run
does; then its numbers do not depend on which process ran it, or after what.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def worker_threads(workers: int) -> int:
    """TensorFlow intra-op threads per worker: the cores this process may use, shared."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def configure_worker(threads: int, label: str, level: int, loggers: tuple[str, ...] = ("keras_clust",)) -> None:
    """Set up a spawned worker process: ``threads`` TensorFlow intra-op threads (before its
    first op) and the project's log lines prefixed ``[keras-clust <label>]`` at ``level``."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"[keras-clust {label}] %(message)s"))
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = [handler], False
        logger.setLevel(level)


def _init_worker(seed: int, threads: int, level: int) -> None:
    from keras_clust.seeding import set_seed

    configure_worker(threads, f"worker {os.getpid()}", level, ("keras_clust",))
    set_seed(seed)


def map_in_processes(fn: Callable[[T], R], items: Iterable[T], workers: int, seed: int) -> list[R]:
    """``[fn(item) for item in items]``, computed by ``workers`` spawned processes.

    Args:
        fn: A module-level function (it is pickled by name) of one picklable item.
        items: The pieces of work; results come back in their order, whichever finishes first.
        workers: Processes; 1 runs everything here, in order, without starting any.
        seed: The run's seed, set in every worker before its first piece.

    Raises:
        The exception of the first piece that failed, once the pieces already handed to the
        workers (up to ``workers + 1``, the running ones included) have ended; the rest are
        cancelled.
    """
    items = list(items)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    workers = min(workers, len(items))
    threads = worker_threads(workers)
    log.info("%d pieces of work on %d processes (%d TensorFlow thread(s) each)", len(items), workers, threads)
    level = logging.getLogger("keras_clust").getEffectiveLevel()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(seed, threads, level),
    )
    try:
        futures = [pool.submit(fn, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
