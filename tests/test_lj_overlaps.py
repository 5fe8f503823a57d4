"""Separating overlapping particles (``keras_clust.lj.overlaps``)."""

import numpy as np
import pytest

from keras_clust.errors import UsageError
from keras_clust.lj.geometry import min_pair_distance
from keras_clust.lj.overlaps import MAX_ITERATIONS, separate_overlaps


def test_a_configuration_without_a_close_pair_comes_back_unchanged():
    grid = np.stack(np.meshgrid(*[np.arange(3.0)] * 3, indexing="ij"), -1).reshape(1, -1, 3) + 0.5
    out, passes = separate_overlaps(grid, box=4.0, distance=0.8)
    assert passes.tolist() == [0]
    np.testing.assert_array_equal(out, grid)


def test_one_close_pair_moves_apart_symmetrically_along_its_line():
    x = np.array([[[1.0, 2.0, 2.0], [1.5, 2.0, 2.0], [4.0, 4.0, 4.0]]])
    out, passes = separate_overlaps(x, box=5.0, distance=0.8)
    # each of the pair moves by half the shortfall (0.15) along x; the third particle stays
    np.testing.assert_allclose(out[0, 0], [0.85, 2.0, 2.0], atol=1e-5)
    np.testing.assert_allclose(out[0, 1], [1.65, 2.0, 2.0], atol=1e-5)
    np.testing.assert_array_equal(out[0, 2], x[0, 2])
    assert passes[0] >= 1
    assert min_pair_distance(out)[0] >= 0.8


@pytest.mark.parametrize("dim", [2, 3])
def test_piled_up_and_outside_particles_end_apart_inside_the_box(dim):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.zeros((2, 30, dim)),  # everything on one point (the corner)
            rng.normal(2.5, 0.3, (2, 30, dim)),  # a tight clump
            rng.uniform(-1.0, 6.0, (2, 30, dim)),  # partly outside the box
        ]
    )
    out, passes = separate_overlaps(x, box=5.0, distance=0.8)
    assert out.shape == x.shape and np.all(passes > 0) and np.all(passes <= MAX_ITERATIONS)
    assert np.all(out >= 0.0) and np.all(out <= 5.0)
    assert np.all(min_pair_distance(out) >= 0.8)
    again, _ = separate_overlaps(x, box=5.0, distance=0.8)
    np.testing.assert_array_equal(again, out)  # deterministic, also for coincident particles
    assert np.all(x[:2] == 0.0)  # the input is not touched


def test_a_box_too_small_for_the_particles_reports_that_it_gave_up():
    x = np.random.default_rng(1).uniform(0, 1, (1, 30, 2))
    out, passes = separate_overlaps(x, box=1.0, distance=0.8, max_iterations=50)
    assert passes.tolist() == [51] and min_pair_distance(out)[0] < 0.8
    # a configuration its last allowed pass finishes is separated, not given up on
    pair = np.array([[[1.0, 1.0], [1.2, 1.0]]])
    out, passes = separate_overlaps(pair, box=5.0, distance=0.8, max_iterations=1)
    assert passes.tolist() == [1] and min_pair_distance(out)[0] >= 0.8


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(UsageError, match="configurations must be"):
        separate_overlaps(np.zeros((30, 3)), box=5.0)
    with pytest.raises(UsageError, match="positive"):
        separate_overlaps(np.zeros((1, 30, 3)), box=0.0)
