"""Hyperopt Runner's Python runtime: run unmodified hyperopt scripts with their trials evaluated
in parallel by hyperopt-runner's coordinator (local worker pool, SSH hosts).

Public API:

- :class:`RunnerTrials`, a ``hyperopt.Trials`` to pass to ``fmin`` like ``SparkTrials``;
- the exceptions below.

``python -m hyperopt_runner.launch SCRIPT`` and ``python -m hyperopt_runner.worker`` are the
entry points the coordinator starts; users run ``hyperopt-runner run SCRIPT``.
"""

from typing import TYPE_CHECKING, Any

from ._errors import CoordinatorLost, CoordinatorNotFound, RunnerError, StudyOpenFailed
from ._protocol import ProtocolError

if TYPE_CHECKING:
    from ._trials import RunnerTrials

__version__ = "0.1.0"

__all__ = [
    "CoordinatorLost",
    "CoordinatorNotFound",
    "ProtocolError",
    "RunnerError",
    "RunnerTrials",
    "StudyOpenFailed",
]


def __getattr__(name: str) -> Any:
    # RunnerTrials imports hyperopt (and numpy); the worker imports this package and must not.
    if name == "RunnerTrials":
        from ._trials import RunnerTrials

        return RunnerTrials
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | {"RunnerTrials"})
