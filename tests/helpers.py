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
