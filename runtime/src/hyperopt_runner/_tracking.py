"""MLflow runs for studies and trials, laid out as Databricks' SparkTrials lays them out.

The driver owns the study's parent run (the script's active run when it opened one); each
worker opens its trial's child run and makes it the active run while the objective runs, so
the objective's own ``mlflow.log_*`` calls land in it. Logging never fails a study or a trial:
a failure becomes one warning, and the coordinator writes what is missing later from the
journal.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
from typing import Any, Dict, Optional

#: Set by the coordinator when the run is tracked; MLFLOW_TRACKING_URI names the server.
TRACKING_ENV = "HYPEROPT_RUNNER_TRACKING"

RUN_SOURCE = "hyperoptAutoTracking"
STUDY_ID_TAG = "hyperopt_runner.study_id"
CALL_SITE_TAG = "hyperopt_runner.call_site"
TID_TAG = "hyperopt_runner.tid"
SLOT_TAG = "hyperopt_runner.slot"
TRACEBACK_TAG = "hyperopt_runner.traceback"
#: MLflow refuses longer tag values.
TAG_LIMIT = 5000


def tracking_requested() -> bool:
    return os.environ.get(TRACKING_ENV) == "1" and bool(os.environ.get("MLFLOW_TRACKING_URI"))


def mlflow_missing_message() -> Optional[str]:
    if importlib.util.find_spec("mlflow") is None:
        return (
            f"mlflow is not installed in {sys.executable}, so this study is not tracked; "
            f"install it with: {sys.executable} -m pip install mlflow"
        )
    return None


class _FailFast:
    """The runner's own calls give up at once when the server is down: the trial must go on,
    and the journal keeps what was not logged. The objective's own calls keep MLflow's retries."""

    SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}

    def __enter__(self) -> None:
        self.saved = {k: os.environ.get(k) for k in self.SETTINGS}
        os.environ.update(self.SETTINGS)

    def __exit__(self, *exc: Any) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------------------------------------
# Driver: the parent run.


class ParentRun:
    """The study's parent run; ``owned`` when the runner created it (and so ends it)."""

    def __init__(self, client: Any, run_id: str, experiment_id: str, owned: bool):
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.owned = owned


def open_parent(study: str, call_site: Dict[str, Any], params: Dict[str, Any]) -> tuple[Optional[ParentRun], Dict[str, Any]]:
    """Creates (or adopts) the parent run; returns it and the ``tracking`` message to send."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    message: Dict[str, Any] = {"type": "tracking", "study": study, "uri": uri}
    missing = mlflow_missing_message()
    if missing:
        message["error"] = missing
        return None, message
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        active = mlflow.active_run()
        if active is not None:
            parent = ParentRun(client, active.info.run_id, active.info.experiment_id, owned=False)
        else:
            experiment_id = _current_experiment_id(mlflow)
            script = os.path.basename(str(call_site.get("file", "script")))
            run = client.create_run(
                experiment_id,
                run_name=f"{os.path.splitext(script)[0]}:{call_site.get('line')}",
                tags={"mlflow.source.name": str(call_site.get("file", ""))},
            )
            parent = ParentRun(client, run.info.run_id, experiment_id, owned=True)
        _log_parent_start(parent, study, call_site, params)
        message["experimentId"] = parent.experiment_id
        message["parentRunId"] = parent.run_id
        return parent, message
    except Exception as exc:  # noqa: BLE001 - tracking never fails a study
        message["error"] = f"could not create the study's MLflow run at {uri}: {_short(exc)}"
        return None, message


def _current_experiment_id(mlflow: Any) -> str:
    """The experiment the script chose (mlflow.set_experiment, MLFLOW_EXPERIMENT_*), else the default."""
    try:
        from mlflow.tracking.fluent import _get_experiment_id

        found = _get_experiment_id()
        if found:
            return str(found)
    except Exception:  # noqa: BLE001 - private helper; fall back to the documented default
        pass
    return "0"


def _log_parent_start(parent: ParentRun, study: str, call_site: Dict[str, Any], params: Dict[str, Any]) -> None:
    from mlflow.entities import Param, RunTag

    existing = parent.client.get_run(parent.run_id).data.params
    suffix = study.rsplit("-", 1)[-1]
    param_list = []
    for key, value in params.items():
        text = str(value)
        # Several fmin calls in one active run: as MLflow does, a conflicting name gets a suffix.
        if key in existing and existing[key] != text:
            key = f"{key}_{suffix}"
        param_list.append(Param(key, text))
    tags = [
        RunTag("runSource", RUN_SOURCE),
        RunTag("fmin_uuid", study),
        RunTag(STUDY_ID_TAG, study),
        RunTag(CALL_SITE_TAG, f"{call_site.get('file')}:{call_site.get('line')}"),
    ]
    parent.client.log_batch(parent.run_id, params=param_list, tags=tags)


def close_parent(parent: Optional[ParentRun], store: Any, reason: Optional[str], failed: bool) -> Optional[str]:
    """Final counts and best loss on the parent; ends it when the runner created it."""
    if parent is None:
        return None
    try:
        from mlflow.entities import Metric

        base = sys.modules["hyperopt.base"]
        docs = store._dynamic_trials
        ok = [d for d in docs if d["state"] == base.JOB_STATE_DONE and d["result"].get("status") == "ok"]
        errored = [d for d in docs if d["state"] == base.JOB_STATE_ERROR or (d["state"] == base.JOB_STATE_DONE and d["result"].get("status") != "ok")]
        cancelled = [d for d in docs if d["state"] == base.JOB_STATE_CANCEL]
        now = _now_ms()
        metrics = [
            Metric("successful_trials_count", len(ok), now, 0),
            Metric("failed_trials_count", len(errored), now, 0),
            Metric("cancelled_trials_count", len(cancelled), now, 0),
            Metric("total_trials_count", len(docs), now, 0),
        ]
        losses = [float(d["result"]["loss"]) for d in ok if d["result"].get("loss") is not None]
        finite = [loss for loss in losses if not math.isnan(loss)]
        if finite:
            metrics.append(Metric("best_trial_loss", min(finite), now, 0))
        parent.client.log_batch(parent.run_id, metrics=metrics)
        if parent.owned:
            status = "FAILED" if failed else "KILLED" if reason == "cancelled" else "FINISHED"
            parent.client.set_terminated(parent.run_id, status=status)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"could not finish the study's MLflow run: {_short(exc)}"


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------
# Worker: the trial's child run.

#: One client per tracking URI for the worker's life: its HTTP session (and connection) is reused.
_clients: Dict[str, Any] = {}


def _client_for(mlflow: Any, uri: str) -> Any:
    client = _clients.get(uri)
    if client is None:
        from mlflow.tracking import MlflowClient

        client = _clients[uri] = MlflowClient(tracking_uri=uri)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    return client


def _activate(mlflow: Any, run: Any) -> None:
    """Makes ``run`` the active run, as ``mlflow.start_run(run_id=...)`` would, without its three
    requests (read the run, mark it RUNNING, read it again): the run was just created RUNNING
    and ``run`` holds what those reads return. Falls back to ``start_run`` when mlflow's fluent
    state is not laid out as in mlflow 2.x/3.x, when a run is already active (``start_run``
    then says why that is an error) and when system metrics are on (``start_run`` starts them)."""
    try:
        from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        if isinstance(stack, list) and not stack and not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get():
            stack.append(fluent.ActiveRun(run))
            return
    except Exception:  # noqa: BLE001 - private layout changed; the public call does the same
        pass
    mlflow.start_run(run_id=run.info.run_id)


class TrialRun:
    """One trial's child run: opened before the objective runs, closed with its outcome."""

    def __init__(self, tracking: Dict[str, Any], tid: int):
        self.tracking = tracking
        self.tid = tid
        self.run_id: Optional[str] = None
        self.error: Optional[str] = None
        self._saved_env: Dict[str, Optional[str]] = {}
        self._client: Any = None

    def begin(self) -> None:
        with _FailFast():
            self._begin()

    def _begin(self) -> None:
        t = self.tracking
        try:
            import mlflow
            from mlflow.entities import Param, Run, RunData, RunTag

            self._client = _client_for(mlflow, t["uri"])
            tags = {"mlflow.parentRunId": t["parentRunId"], "runSource": RUN_SOURCE, **t["tags"]}
            run = self._client.create_run(t["experimentId"], run_name=t["runName"], tags=tags)
            self.run_id = run.info.run_id
            params = [Param(k, v[:6000]) for k, v in t["params"].items()]
            if params:
                self._client.log_batch(self.run_id, params=params)
            for name, value in (("MLFLOW_TRACKING_URI", t["uri"]), ("MLFLOW_RUN_ID", self.run_id)):
                self._saved_env[name] = os.environ.get(name)
                os.environ[name] = value
            # The objective's own mlflow.log_* calls land in this run.
            run_tags = [RunTag(k, v) for k, v in run.data.tags.items()]
            _activate(mlflow, Run(run.info, RunData(params=params, tags=run_tags)))
        except Exception as exc:  # noqa: BLE001 - tracking never fails a trial
            self.error = _short(exc)

    def end(self, reply: Dict[str, Any]) -> Dict[str, Any]:
        """Logs the outcome; returns the ``tracking`` part of the result message."""
        with _FailFast():
            return self._end(reply)

    def _end(self, reply: Dict[str, Any]) -> Dict[str, Any]:
        if self.run_id is None:
            self._restore_env()
            return {"runId": None, "error": self.error or "the trial's run was not created"}
        try:
            import mlflow
            from mlflow.entities import Metric, RunTag

            failed = reply.get("outcome") != "ok"
            summary = reply.get("summary") or {}
            status_text = "error" if failed else str(summary.get("status"))
            tags = [RunTag("trial_status", status_text)]
            metrics = []
            loss = summary.get("loss")
            if not failed and loss is not None:
                value = float(loss) if not isinstance(loss, str) else float(loss.replace("Infinity", "inf"))
                metrics.append(Metric("loss", value, _now_ms(), 0))
            if failed and reply.get("error"):
                error = reply["error"]
                text = error.get("traceback") or f"{error.get('type')}: {error.get('message')}"
                tags.append(RunTag(TRACEBACK_TAG, text[-TAG_LIMIT:]))
            self._client.log_batch(self.run_id, metrics=metrics, tags=tags)
            if failed and reply.get("error", {}).get("traceback"):
                self._client.log_text(self.run_id, reply["error"]["traceback"], "traceback.txt")
            status = "FAILED" if failed or status_text != "ok" else "FINISHED"
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                mlflow.end_run(status=status)
            else:
                self._client.set_terminated(self.run_id, status=status)
            return {"runId": self.run_id}
        except Exception as exc:  # noqa: BLE001
            try:
                mlflow.end_run()
            except Exception:  # noqa: BLE001
                pass
            # The run exists but may be incomplete: the coordinator completes it from the journal.
            return {"runId": self.run_id, "error": _short(exc)}
        finally:
            self._restore_env()

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
