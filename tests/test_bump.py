"""The bump experiment: Keras's optimisers against the report's hand-computed numbers."""

import json
import math

import numpy as np
import pytest

from helpers import assert_one_line_error, cli_in_process
from keras_clust.apps.bump.loss import adam_reference, bump_gradient, bump_loss, run_optimizer
from keras_clust.errors import UsageError


def test_gradient_and_loss_shape():
    x = np.array([0.0, 0.5, 1.0, 1.2, 1.5, 2.0])
    np.testing.assert_array_equal(bump_gradient(x, width=0.5), [-1, -1, -1, 1, -1, -1])
    np.testing.assert_array_equal(bump_gradient(x), [-1, -1, -1, 1, 1, 1])
    np.testing.assert_allclose(bump_loss(x, width=0.5), [1.0, 0.5, 0.0, 0.2, 0.5, 0.0])
    # the gradient is the slope of the loss away from the kinks
    h = 1e-6
    for xi in (0.3, 1.2, 1.7):
        slope = (bump_loss(xi + h, 0.5) - bump_loss(xi - h, 0.5)) / (2 * h)
        assert slope == pytest.approx(bump_gradient(xi, 0.5), abs=1e-6)


def test_gradient_descent_gets_stuck_oscillating():
    t = run_optimizer("sgd", 0.3, 20)
    np.testing.assert_allclose(t.x[:7], [0.0, 0.3, 0.6, 0.9, 1.2, 0.9, 1.2], atol=1e-6)
    np.testing.assert_allclose(t.x[3::2], 0.9, atol=1e-5)
    np.testing.assert_allclose(t.x[4::2], 1.2, atol=1e-5)
    assert round(t.escape_height, 2) == 0.2


def test_keras_adam_reaches_1_41_like_the_report():
    t = run_optimizer("adam", 0.3, 20)
    assert round(t.furthest, 2) == 1.41
    assert round(t.escape_height, 2) == 0.41
    ref = adam_reference(0.3, 20)
    np.testing.assert_allclose(t.x, ref, atol=5e-5)  # Keras's Adam is the textbook update (float32)
    assert ref.max() == pytest.approx(1.4101842951299737, abs=1e-6)  # the report's printout


def test_adam_crosses_a_narrower_bump_only():
    assert run_optimizer("adam", width=0.4).escaped
    assert not run_optimizer("adam", width=0.45).escaped
    assert not run_optimizer("sgd", width=0.25).escaped  # lands on it at 1.2 and is pushed back
    assert run_optimizer("sgd", width=0.1).escaped  # a step of 0.3 jumps a bump narrower than 0.2


def test_bad_settings():
    with pytest.raises(UsageError, match="unknown optimizer"):
        run_optimizer("lbfgs")
    with pytest.raises(UsageError, match="width"):
        run_optimizer("sgd", width=0)


def test_cli_run(tmp_path):
    res = cli_in_process("bump", "run", "--optimizer", "sgd,adam,rmsprop", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| adam | 1.4102 | 0.4102 |" in res.stdout
    (run,) = (tmp_path / "runs" / "bump").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["optimizers"]) == {"sgd", "adam", "rmsprop"}
    assert len(m["optimizers"]["adam"]["trajectory"]) == 21 and math.isclose(
        m["optimizers"]["sgd"]["furthest"], 1.2, abs_tol=1e-5
    )
    assert (run / "figures" / "trajectories.png").stat().st_size > 5000
    assert (run / "history.csv").read_text().splitlines()[0] == "step,sgd,adam,rmsprop"
    config = json.loads((run / "config.json").read_text())
    assert config["optimizers"] == ["sgd", "adam", "rmsprop"] and config["bump_width"] == "inf"
    report = (run / "report.md").read_text()
    assert "| adam | 1.4102 | 0.4102 |" in report and "**Data:** no dataset" in report
    assert res.stdout.splitlines()[-1] == f"run folder: {run.relative_to(tmp_path)}"


@pytest.mark.parametrize(
    "args, fragment",
    [(["--optimizer", "sgd,lbfgs"], "--optimizer"), (["--bump-width", "-1"], "--bump-width"), (["--x0", "2"], "--x0")],
)
def test_cli_bad_input(tmp_path, args, fragment):
    res = cli_in_process("bump", "run", *args, cwd=tmp_path)
    assert_one_line_error(res, 2, fragment)
