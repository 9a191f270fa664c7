"""``RunnerTrials``: a Trials whose fmin runs its trials through hyperopt-runner's coordinator."""

from __future__ import annotations

import logging
import numbers
from typing import Any, Callable, Optional

from hyperopt import base

from . import _driver

logger = logging.getLogger("hyperopt_runner")


class RunnerTrials(base.Trials):
    """Evaluates an ``fmin`` call's trials in parallel on hyperopt-runner's executors.

    Use it like ``SparkTrials``::

        trials = RunnerTrials(parallelism=8, timeout=3600)
        best = fmin(objective, space, algo=tpe.suggest, max_evals=200, trials=trials)

    Scripts started with ``hyperopt-runner run`` need not name it: every ``fmin`` call runs
    through the coordinator, and a ``Trials()`` passed to it is filled as a serial run would
    fill it.

    :param parallelism: how many trials may run at once; ``None`` lets the executor decide
        (its number of slots). Non-positive values mean ``None``.
    :param timeout: seconds the whole ``fmin`` call may take; at the deadline running trials
        are cancelled and ``fmin`` returns the best result so far. Takes precedence over
        ``fmin``'s own ``timeout``.
    :param loss_threshold: stop once a trial reaches a loss at or below this value;
        ``fmin``'s ``loss_threshold`` overrides it.
    """

    asynchronous = False

    def __init__(self, parallelism: Optional[int] = None, timeout: Optional[float] = None, loss_threshold: Optional[float] = None):
        super().__init__(exp_key=None, refresh=False)
        base.validate_timeout(timeout)
        base.validate_loss_threshold(loss_threshold)
        if parallelism is not None:
            if isinstance(parallelism, bool) or not isinstance(parallelism, numbers.Integral):
                raise TypeError(f"parallelism should be None or an int; got {parallelism!r}")
            parallelism = int(parallelism) if parallelism > 0 else None
        self.parallelism = parallelism
        self.timeout = timeout
        self.loss_threshold = loss_threshold
        self.actual_parallelism: Optional[int] = None
        self._fmin_cancelled = False
        self._fmin_cancelled_reason: Optional[str] = None
        self.refresh()

    def __str__(self) -> str:
        return f"RunnerTrials(parallelism={self.parallelism}, trials={len(self._dynamic_trials)})"

    @property
    def fmin_cancelled_reason(self) -> Optional[str]:
        """Why the last fmin call ended early: "fmin run timeout", "fmin run cancelled by user",
        "early stopping condition", ... or None when it ran its course."""
        return self._fmin_cancelled_reason

    def count_successful_trials(self) -> int:
        return self.count_by_state_unsynced(base.JOB_STATE_DONE)

    def count_failed_trials(self) -> int:
        return self.count_by_state_unsynced(base.JOB_STATE_ERROR)

    def count_cancelled_trials(self) -> int:
        return self.count_by_state_unsynced(base.JOB_STATE_CANCEL)

    def count_total_trials(self) -> int:
        return self.count_by_state_unsynced([base.JOB_STATE_DONE, base.JOB_STATE_ERROR, base.JOB_STATE_CANCEL])

    def delete_all(self) -> None:
        super().delete_all()
        self._fmin_cancelled = False
        self._fmin_cancelled_reason = None

    def fmin(
        self,
        fn: Callable,
        space: Any,
        algo: Optional[Callable] = None,
        max_evals: Optional[int] = None,
        timeout: Optional[float] = None,
        loss_threshold: Optional[float] = None,
        max_queue_len: int = 1,
        rstate: Any = None,
        verbose: bool = False,
        pass_expr_memo_ctrl: Optional[bool] = None,
        catch_eval_exceptions: bool = False,
        return_argmin: bool = True,
        show_progressbar: Any = True,
        early_stop_fn: Optional[Callable] = None,
        trials_save_file: str = "",
    ) -> Any:
        """Called by ``hyperopt.fmin``; see it for the arguments.

        ``verbose``, ``show_progressbar`` and ``catch_eval_exceptions`` have no effect: the
        coordinator shows progress, and an objective that raises always marks its trial
        failed while the study goes on.
        """
        return self.run_fmin(
            fn, space, algo=algo, max_evals=max_evals, timeout=timeout, loss_threshold=loss_threshold,
            max_queue_len=max_queue_len, rstate=rstate, pass_expr_memo_ctrl=pass_expr_memo_ctrl,
            return_argmin=return_argmin, early_stop_fn=early_stop_fn, trials_save_file=trials_save_file,
        )

    def run_fmin(self, fn: Callable, space: Any, *, timeout: Optional[float] = None, loss_threshold: Optional[float] = None, call_site: Optional[dict] = None, **kwargs: Any) -> Any:
        if timeout is not None:
            if self.timeout is not None:
                logger.warning("Timeout param was defined in Trials object, ignoring fmin definition")
            else:
                base.validate_timeout(timeout)
        effective_timeout = self.timeout if self.timeout is not None else timeout
        effective_threshold = loss_threshold if loss_threshold is not None else self.loss_threshold
        return _driver.run_study(
            self, fn, space, timeout=effective_timeout, loss_threshold=effective_threshold,
            parallelism=self.parallelism, call_site=call_site, **kwargs,
        )
