"""map_in_processes: results in the items' order from several spawned processes, and a piece's
own error raised in the caller."""

import os

import pytest
from parallel_work import fail_on_two, square_slowly

from keras_clust.errors import DataError
from keras_clust.parallel import map_in_processes, worker_threads


def test_results_come_back_in_order_from_several_processes():
    out = map_in_processes(square_slowly, [3, 0, 2, 1], workers=2, seed=0)
    assert [v for v, _ in out] == [9, 0, 4, 1]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert map_in_processes(square_slowly, [2, 1], workers=1, seed=0) == [(4, os.getpid()), (1, os.getpid())]


def test_a_pieces_error_reaches_the_caller():
    with pytest.raises(DataError, match="piece 2 is bad"):
        map_in_processes(fail_on_two, [0, 1, 2, 3, 4, 5], workers=2, seed=0)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        map_in_processes(square_slowly, [1], workers=0, seed=0)


def test_worker_threads_share_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert worker_threads(1) == cores and worker_threads(cores) == 1 and worker_threads(4 * cores) == 1
