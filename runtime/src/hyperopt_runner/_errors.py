"""Exceptions of the runtime. Only the standard library here: the worker imports it too."""


class RunnerError(Exception):
    """Base class of hyperopt-runner's own errors."""


class CoordinatorNotFound(RunnerError):
    """The script was not started by hyperopt-runner, so there is no coordinator to talk to."""


class CoordinatorLost(RunnerError, ConnectionError):
    """The coordinator closed the driver connection (or refused it) before the study ended."""


class StudyOpenFailed(RunnerError):
    """The coordinator refused to open a study for an fmin call."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} ({code})" if message else code)
        self.code = code
        self.reason = message


class UsageError(RunnerError, ValueError):
    """An argument the script gave that cannot work; the launcher prints it as one line."""
