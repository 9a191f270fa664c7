"""``SparkTrials`` for scripts run by hyperopt-runner: the constructor and the object Databricks
users know, with the trials evaluated by the runner's executors instead of Spark tasks.

``install()`` puts the class in place of ``hyperopt.SparkTrials`` and ``hyperopt.spark.SparkTrials``
before the script runs, so ``from hyperopt import SparkTrials``, ``from hyperopt.spark import
SparkTrials`` and any alias of either construct this one, with or without pyspark installed.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Optional

from ._errors import UsageError
from ._trials import RunnerTrials

logger = logging.getLogger("hyperopt_runner")

#: SparkTrials' own cap on the number of trials evaluated at once.
MAX_CONCURRENT_JOBS_ALLOWED = 128


def _notice(text: str) -> None:
    """One line for the user: through the coordinator (the terminal and the editor show it)."""
    from . import _connection

    if not _connection.send_if_launched({"type": "notice", "message": text}):
        logger.warning(text)


def decide_parallelism(requested: Any) -> Optional[int]:
    """SparkTrials' rules for ``parallelism``: None or a non-positive value means the executors'
    slot count (None here), a value over 128 is capped at 128; anything but a whole number is
    refused. Returns the value the study asks for and sends a notice when it is not the one given.
    """
    if requested is None:
        return None
    if isinstance(requested, bool) or not isinstance(requested, numbers.Real) or not float(requested).is_integer():
        raise UsageError(f"SparkTrials(parallelism={requested!r}): parallelism must be a whole number or None")
    value = int(requested)
    if value <= 0:
        _notice(
            f"SparkTrials(parallelism={value}): not a positive number, so the executors' slot count "
            "is used (SparkTrials would use Spark's default parallelism)"
        )
        return None
    if value > MAX_CONCURRENT_JOBS_ALLOWED:
        _notice(f"SparkTrials(parallelism={value}): capped at {MAX_CONCURRENT_JOBS_ALLOWED}, as SparkTrials caps it")
        return MAX_CONCURRENT_JOBS_ALLOWED
    return value


class SparkTrials(RunnerTrials):
    """A ``hyperopt.SparkTrials`` whose trials run on hyperopt-runner's executors.

    :param parallelism: the most trials evaluated at once. None or a non-positive value: the
        executors' slot count; at most 128; a value above the slots the executors have is lowered
        to them (with a notice). The run's ``--parallelism`` (or the editor's) wins over it.
    :param timeout: seconds the whole ``fmin`` call may take; at the deadline the running trials
        are cancelled and ``fmin`` returns what finished.
    :param loss_threshold: stop once a trial's loss is at or below it.
    :param spark_session: accepted and ignored (there is no Spark job), with a notice.
    :param resource_profile: accepted and ignored, with a notice: a slot's resources come from the
        executor (``local:N``, the hosts file).
    """

    MAX_CONCURRENT_JOBS_ALLOWED = MAX_CONCURRENT_JOBS_ALLOWED

    def __init__(
        self,
        parallelism: Any = None,
        timeout: Optional[float] = None,
        loss_threshold: Optional[float] = None,
        spark_session: Any = None,
        resource_profile: Any = None,
    ):
        decided = decide_parallelism(parallelism)
        super().__init__(parallelism=decided, timeout=timeout, loss_threshold=loss_threshold)
        #: What the script passed, as SparkTrials keeps it.
        self.user_specified_parallelism = parallelism
        if spark_session is not None:
            _notice("SparkTrials(spark_session=...): ignored; the trials run on hyperopt-runner's executors, not as Spark tasks")
        if resource_profile is not None:
            _notice("SparkTrials(resource_profile=...): ignored; a slot's resources come from its executor (local:N, the hosts file)")

    def __str__(self) -> str:
        return f"SparkTrials(trials={self.trials})"

    def trial_attachments(self, trial: Any) -> Any:
        raise NotImplementedError("SparkTrials does not support trial attachments.")


def install() -> None:
    """Puts :class:`SparkTrials` where hyperopt keeps its own (hyperopt and hyperopt.spark)."""
    import hyperopt

    hyperopt.SparkTrials = SparkTrials  # type: ignore[attr-defined, misc]
    try:
        import hyperopt.spark as spark_module
    except Exception:  # noqa: BLE001 - an old hyperopt without the module: nothing to replace
        return
    spark_module.SparkTrials = SparkTrials  # type: ignore[attr-defined, misc]
