"""Errors that the command line turns into a one-line message and an exit code."""


class KerasClustError(Exception):
    """Base class of the errors a user can fix; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class DataError(KerasClustError, ValueError):
    """The data is missing, corrupt or not what the operation needs (exit code 1)."""

    exit_code = 1


class UsageError(KerasClustError, ValueError):
    """An option or argument has a value that cannot work (exit code 2)."""

    exit_code = 2
