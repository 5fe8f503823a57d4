"""Run the installed ``keras-clust`` console script the way a user does."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("keras-clust")


def cli(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    # the console script's own TF log level applies, as for a user (conftest lowers it for in-process tests)
    base = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env = {**base, "KERAS_CLUST_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(res, code, *fragments):
    """Exit ``code``, one ``error`` line on stderr naming every fragment, no traceback."""
    assert res.returncode == code, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, res.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def cli_in_process(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run ``keras-clust`` in this process: the same ``main(argv)`` the console script calls, without
    a new interpreter's start-up (TensorFlow's 5-6 s, UMAP's import and first compiled fit, 20 s in
    a fresh clone). Used for the bad-input checks and the apps' quick runs; :func:`cli` stays for
    what needs a process of its own (the console script itself, kills, distribution, workers).
    Same result shape as :func:`cli`; an exception that escapes ``main`` (a traceback for a user)
    fails the test."""
    import contextlib
    import io
    import logging

    from tensorflow.python.framework import config as tf_config  # no public "disable" in TF 2.21

    from keras_clust.cli import main
    from keras_clust.seeding import op_determinism

    deterministic = op_determinism()  # a run turns it on; the tests after this one in the process expect it as it was
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    logger = logging.getLogger("keras_clust")
    saved = (logger.handlers[:], logger.level, logger.propagate)  # main() points them at this call's stderr
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
        logger.handlers[:], logger.level, logger.propagate = saved
        if not deterministic and op_determinism():
            tf_config.disable_op_determinism()
    return subprocess.CompletedProcess(["keras-clust", *map(str, args)], code, out.getvalue(), err.getvalue())
