"""Progress of the long steps that are not a Keras ``fit`` (which has its own bar).

On a terminal, a ``tqdm`` bar on stderr; otherwise (a log file, CI, a pipe) plain log lines
``[keras-clust] <what>: k/n (elapsed s)`` at most every ``every`` seconds and at the end,
so logs stay readable. ``stage`` does the same for one step whose progress cannot be
counted (a KMeans, a t-SNE, a UMAP): a line when it starts and one when it ends.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator

log = logging.getLogger("keras_clust.progress")


def _on_terminal() -> bool:
    return sys.stderr.isatty() and log.isEnabledFor(logging.INFO)


class Progress:
    """Count ``total`` units of work (``update(n)``), shown as a bar or as plain lines.

    Args:
        total: Units expected (trials, sweeps, ...).
        what: What is counted, e.g. ``"optuna trials"``.
        initial: Units already done (a resumed search).
        every: Seconds between plain lines when not on a terminal.
    """

    def __init__(self, total: int, what: str, initial: int = 0, every: float = 30.0):
        self.total, self.what, self.done, self.every = int(total), what, int(initial), every
        self.start = self._last = time.monotonic()
        self._bar = None
        if _on_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.done, desc=what, unit="", file=sys.stderr, leave=True)

    def update(self, n: int = 1, force: bool = False) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if force or self.done >= self.total or now - self._last >= self.every:
            self._last = now
            log.info("%s: %d/%d (%.0f s)", self.what, self.done, self.total, now - self.start)

    def set_to(self, done: int) -> None:
        """Set the count (work done elsewhere, e.g. by other workers of a study)."""
        if done != self.done:
            self.update(done - self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def stage(what: str) -> Iterator[None]:
    """One step without countable progress: announced, then timed."""
    start = time.monotonic()
    if _on_terminal():
        from tqdm import tqdm

        with tqdm(total=1, desc=what, file=sys.stderr, bar_format="{desc}: {elapsed}", leave=True) as bar:
            yield
            bar.update(1)
        return
    log.info("%s ...", what)
    yield
    log.info("%s: done in %.1f s", what, time.monotonic() - start)
