"""MLflow in the runtime: only what the user's own code needs.

The coordinator writes the runner's runs itself (the study's parent run and one child run per
trial, laid out as Databricks' SparkTrials lays them out: core/src/mlflow/runLayout.ts). So this
module never imports mlflow: a script or an objective that does not use mlflow pays nothing for
tracking. What is left here:

- Driver: what the coordinator needs for the parent run: fmin's arguments as Python spells them
  and, when the script imported mlflow itself, its active run (which becomes the parent) or the
  experiment it chose.
- Worker: a trial of a tracked study runs with ``MLFLOW_TRACKING_URI`` set, and an objective that
  uses mlflow finds its trial's child run as the active run, so its own ``mlflow.log_*`` calls
  land there. The coordinator creates that run as it dispatches the trial and sends it in a
  ``run`` message; the trial waits for it only when mlflow is in use (imported before the trial,
  or imported by the objective while it runs).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

#: Set by the coordinator when the run is tracked; MLFLOW_TRACKING_URI names the server.
TRACKING_ENV = "HYPEROPT_RUNNER_TRACKING"

#: The longest a trial whose objective uses mlflow waits for its child run. The coordinator always
#: answers (with the run, or with none when it could not be created); this bounds a lost answer.
RUN_WAIT_SECONDS = 120.0


def tracking_requested() -> bool:
    return os.environ.get(TRACKING_ENV) == "1" and bool(os.environ.get("MLFLOW_TRACKING_URI"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------------------------------------
# Driver: what the parent run needs.


def study_tracking(params: Dict[str, Any]) -> Dict[str, Any]:
    """The ``tracking`` part of a study's ``open`` message."""
    out: Dict[str, Any] = {"params": {key: str(value) for key, value in params.items()}}
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        # The script never imported mlflow: no active run, and the experiment comes from the
        # environment, which the coordinator reads as mlflow would.
        return out
    try:
        active = mlflow.active_run()
        if active is not None:
            out["activeRunId"] = active.info.run_id
        else:
            experiment = _current_experiment_id()
            if experiment is not None:
                out["experimentId"] = experiment
    except Exception:  # noqa: BLE001 - the coordinator falls back to the environment's experiment
        pass
    return out


def _current_experiment_id() -> Optional[str]:
    """The experiment the script chose (mlflow.set_experiment, MLFLOW_EXPERIMENT_*), else mlflow's default."""
    try:
        from mlflow.tracking.fluent import _get_experiment_id

        found = _get_experiment_id()
        return str(found) if found else None
    except Exception:  # noqa: BLE001 - private helper; the coordinator has a fallback
        return None


def study_counts(store: Any) -> Dict[str, int]:
    """The trial counts of a Trials object as SparkTrials reports them on the parent run."""
    base = sys.modules["hyperopt.base"]
    ok = failed = cancelled = 0
    docs = store._dynamic_trials
    for doc in docs:
        state = doc["state"]
        if state == base.JOB_STATE_CANCEL:
            cancelled += 1
        elif state == base.JOB_STATE_DONE and doc["result"].get("status") == "ok":
            ok += 1
        elif state in (base.JOB_STATE_DONE, base.JOB_STATE_ERROR):
            failed += 1
    return {"ok": ok, "failed": failed, "cancelled": cancelled, "total": len(docs)}


# ---------------------------------------------------------------------------------------------
# Worker: the trial's child run as the active run.


class RunMailbox:
    """Child runs the coordinator sends while trials run: the worker's reader thread posts them,
    the trial that needs its run waits for it. A run may come before its trial starts here (the
    coordinator sends it right after the trial's ``evaluate``), so nothing is dropped on arrival;
    a new trial forgets the runs of the others."""

    #: Runs kept at most (a worker runs one trial at a time; this bounds runs of trials it never ran).
    LIMIT = 16

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._runs: Dict[Tuple[str, int], Dict[str, Any]] = {}

    def begin(self, study: str, tid: int) -> None:
        """A new trial starts: runs sent for other trials are of no use any more."""
        with self._cond:
            for key in [k for k in self._runs if k != (study, tid)]:
                del self._runs[key]

    def post(self, message: Dict[str, Any]) -> None:
        with self._cond:
            self._runs[(message["study"], message["tid"])] = message
            while len(self._runs) > self.LIMIT:
                del self._runs[next(iter(self._runs))]
            self._cond.notify_all()

    def wait(self, study: str, tid: int, timeout: float) -> Optional[Dict[str, Any]]:
        """The ``run`` message of this trial, or None when none came within ``timeout``."""
        key = (study, tid)
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self._runs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._runs[key]


class _MlflowImportGate:
    """A ``sys.meta_path`` entry that runs a callback once, just before mlflow is first imported,
    so an objective that imports mlflow itself finds its run already named in the environment."""

    def __init__(self) -> None:
        self.callback: Optional[Callable[[], None]] = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "mlflow" and self.callback is not None:
            callback, self.callback = self.callback, None
            callback()
        # Never a finder itself: the normal import goes on.
        return None


_gate: Optional[_MlflowImportGate] = None


def _import_gate() -> _MlflowImportGate:
    global _gate
    if _gate is None:
        _gate = _MlflowImportGate()
        sys.meta_path.insert(0, _gate)
    return _gate


class TrialRun:
    """One tracked trial in its worker. ``begin`` points mlflow at the trial's child run (waiting
    for it only when mlflow is in use); ``finish`` puts everything back without a request: the
    coordinator writes the rest of the run."""

    def __init__(self, tracking: Dict[str, Any], study: str, tid: int, mailbox: RunMailbox):
        self.uri: str = tracking["uri"]
        self.token: Optional[str] = tracking.get("token")
        self.study = study
        self.tid = tid
        self.mailbox = mailbox
        self.run_id: Optional[str] = None
        self.error: Optional[str] = None
        self._used = False
        self._saved_env: Dict[str, Optional[str]] = {}
        self._started_with_start_run = False

    def begin(self) -> None:
        self._set_env("MLFLOW_TRACKING_URI", self.uri)
        if self.token:
            # Read by mlflow at each request: the objective's own calls authenticate as the runner's do.
            self._set_env("MLFLOW_TRACKING_TOKEN", self.token)
        if "mlflow" in sys.modules:
            self._attach(activate=True)
        else:
            _import_gate().callback = lambda: self._attach(activate=False)

    def finish(self, status: str) -> Optional[Dict[str, Any]]:
        """Ends the run's time as the active run; returns the ``tracking`` part of the result
        message, or None when the objective never touched mlflow."""
        if _gate is not None:
            _gate.callback = None
        try:
            if "mlflow" in sys.modules and self.run_id is not None:
                self._deactivate(status)
        finally:
            self._restore_env()
        if not self._used:
            return None
        if self.run_id is None:
            return {"runId": None, "error": self.error or "the trial's run was not created"}
        return {"runId": self.run_id}

    def _attach(self, activate: bool) -> None:
        """Waits for the trial's run and names it in the environment; with mlflow loaded, also
        makes it the active run (as ``mlflow.start_run(run_id=...)`` would, without its requests)."""
        self._used = True
        message = self.mailbox.wait(self.study, self.tid, RUN_WAIT_SECONDS)
        run = message.get("run") if message else None
        if not run:
            self.error = (message or {}).get("error") or "the coordinator sent no run for this trial"
            return
        self.run_id = run["runId"]
        self._set_env("MLFLOW_RUN_ID", self.run_id)
        if not activate:
            # mlflow is being imported right now: its fluent API resumes MLFLOW_RUN_ID on first use.
            return
        try:
            import mlflow

            if mlflow.get_tracking_uri() != self.uri:
                mlflow.set_tracking_uri(self.uri)
            self._started_with_start_run = not _activate(mlflow, run)
        except Exception as exc:  # noqa: BLE001 - tracking never fails a trial
            self.error = _short(exc)

    def _deactivate(self, status: str) -> None:
        """The run stops being the active run without a request (the coordinator ends it), unless
        ``start_run`` opened it: then ``end_run`` undoes what it set up."""
        try:
            import mlflow
            from mlflow.tracking import fluent

            if self._started_with_start_run:
                mlflow.end_run(status=status)
                return
            stack = fluent._active_run_stack.get()
            if not stack or not any(r.info.run_id == self.run_id for r in stack):
                return
            # The objective started nested runs and left them open: end them as end_run would.
            while stack and stack[-1].info.run_id != self.run_id:
                mlflow.end_run()
            stack.pop()
            fluent._last_active_run_id.set(self.run_id)
        except Exception as exc:  # noqa: BLE001 - the coordinator still ends the run
            self.error = self.error or _short(exc)

    def _set_env(self, name: str, value: str) -> None:
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


def _activate(mlflow: Any, run: Dict[str, Any]) -> bool:
    """Makes the run the active run, as ``mlflow.start_run(run_id=...)`` would, without its three
    requests (read the run, mark it RUNNING, read it again): the run was just created RUNNING and
    the coordinator sent what those reads return. Falls back to ``start_run`` when mlflow's fluent
    state is not laid out as in mlflow 2.x/3.x, when a run is already active (``start_run`` then
    says why that is an error) and when system metrics are on (``start_run`` starts them). True
    when the run was activated directly, False when ``start_run`` did it."""
    try:
        from mlflow.entities import Run, RunData, RunInfo, RunTag
        from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        if isinstance(stack, list) and not stack and not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get():
            info = RunInfo(
                run_id=run["runId"],
                experiment_id=run["experimentId"],
                user_id=run["userId"],
                status=run["status"],
                start_time=int(run["startTime"]),
                end_time=None,
                lifecycle_stage=run["lifecycleStage"],
                artifact_uri=run["artifactUri"] or None,
                run_name=run["runName"] or None,
            )
            tags = [RunTag(key, value) for key, value in run["tags"].items()]
            stack.append(fluent.ActiveRun(Run(info, RunData(tags=tags))))
            return True
    except Exception:  # noqa: BLE001 - private layout changed; the public call does the same
        pass
    mlflow.start_run(run_id=run["runId"])
    return False
