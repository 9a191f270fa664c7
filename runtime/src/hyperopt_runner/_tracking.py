"""MLflow runs for studies and trials, laid out as Databricks' SparkTrials lays them out.

The driver owns the study's parent run (the script's active run when it opened one); each
worker opens its trial's child run and makes it the active run while the objective runs, so
the objective's own ``mlflow.log_*`` calls land in it. Once the objective returned, the rest of
the run (loss, status tags, termination) is written by the worker's background logger, so the
trial's result reaches the coordinator at once. Logging never fails a study or a trial:
a failure becomes one warning, and the coordinator writes what is missing later from the
journal.
"""
from __future__ import annotations

import importlib.util
import math
import os
import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

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


def _activate(mlflow: Any, run: Any) -> bool:
    """Makes ``run`` the active run, as ``mlflow.start_run(run_id=...)`` would, without its three
    requests (read the run, mark it RUNNING, read it again): the run was just created RUNNING
    and ``run`` holds what those reads return. Falls back to ``start_run`` when mlflow's fluent
    state is not laid out as in mlflow 2.x/3.x, when a run is already active (``start_run``
    then says why that is an error) and when system metrics are on (``start_run`` starts them).
    True when the run was activated directly, False when ``start_run`` did it."""
    try:
        from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        if isinstance(stack, list) and not stack and not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get():
            stack.append(fluent.ActiveRun(run))
            return True
    except Exception:  # noqa: BLE001 - private layout changed; the public call does the same
        pass
    mlflow.start_run(run_id=run.info.run_id)
    return False


class TrialRun:
    """One trial's child run. ``begin`` creates it (one request) and makes it the active run
    before the objective runs; ``finish`` puts it back to inactive at once and hands the outcome
    to the worker's :class:`TrialLogger`, so the trial's result does not wait for MLflow."""

    def __init__(self, tracking: Dict[str, Any], study: str, tid: int):
        self.tracking = tracking
        self.study = study
        self.tid = tid
        self.run_id: Optional[str] = None
        self.error: Optional[str] = None
        #: Set by the logger's thread when a write for this run failed.
        self.write_error: Optional[str] = None
        self._saved_env: Dict[str, Optional[str]] = {}
        self._client: Any = None
        self._started_with_start_run = False
        self._outcome: Optional[_Outcome] = None

    def begin(self, logger: "TrialLogger") -> None:
        with _FailFast():
            self._begin()
        if self.run_id is not None and self.tracking["params"]:
            logger.submit(self._log_params)

    def _begin(self) -> None:
        t = self.tracking
        try:
            import mlflow
            from mlflow.entities import Run, RunData, RunTag

            self._client = _client_for(mlflow, t["uri"])
            tags = {"mlflow.parentRunId": t["parentRunId"], "runSource": RUN_SOURCE, **t["tags"]}
            run = self._client.create_run(t["experimentId"], run_name=t["runName"], tags=tags)
            self.run_id = run.info.run_id
            for name, value in (("MLFLOW_TRACKING_URI", t["uri"]), ("MLFLOW_RUN_ID", self.run_id)):
                self._saved_env[name] = os.environ.get(name)
                os.environ[name] = value
            # The objective's own mlflow.log_* calls land in this run.
            run_tags = [RunTag(k, v) for k, v in run.data.tags.items()]
            self._started_with_start_run = not _activate(mlflow, Run(run.info, RunData(tags=run_tags)))
        except Exception as exc:  # noqa: BLE001 - tracking never fails a trial
            self.error = _short(exc)

    def finish(self, reply: Dict[str, Any], ended_at: float) -> Dict[str, Any]:
        """Ends the run's time as the active run; returns the ``tracking`` part of the result
        message. ``submit_outcome`` then hands the rest to the logger."""
        try:
            if self.run_id is None:
                return {"runId": None, "error": self.error or "the trial's run was not created"}
            self._outcome = _Outcome(reply, ended_at)
            self._deactivate(self._outcome.status)
            return {"runId": self.run_id}
        finally:
            self._restore_env()

    def submit_outcome(self, logger: "TrialLogger") -> None:
        """Queues the outcome's writes (waiting while the queue is full); the ``tracked`` message
        follows once they are done."""
        outcome = self._outcome
        if outcome is not None:
            logger.submit(lambda: self._write_outcome(outcome, logger))

    def _deactivate(self, status: str) -> None:
        """The run stops being the active run without a request (the logger terminates it),
        unless ``start_run`` opened it: then ``end_run`` undoes what it set up."""
        try:
            import mlflow
            from mlflow.tracking import fluent

            if self._started_with_start_run:
                with _FailFast():
                    mlflow.end_run(status=status)
                return
            stack = fluent._active_run_stack.get()
            if stack and stack[-1].info.run_id == self.run_id:
                stack.pop()
                fluent._last_active_run_id.set(self.run_id)
            elif stack and any(r.info.run_id == self.run_id for r in stack):
                # The objective started nested runs and left them open: end them as end_run would.
                while stack and stack[-1].info.run_id != self.run_id:
                    with _FailFast():
                        mlflow.end_run()
                stack.pop()
        except Exception as exc:  # noqa: BLE001 - the logger still terminates the run
            self.write_error = _short(exc)

    def _log_params(self) -> None:
        params = [{"key": k, "value": v[:6000]} for k, v in self.tracking["params"].items()]
        try:
            _rest(self._client, "runs/log-batch", {"run_id": self.run_id, "params": params})
        except Exception as exc:  # noqa: BLE001
            self.write_error = self.write_error or _short(exc)

    def _write_outcome(self, outcome: "_Outcome", logger: "TrialLogger") -> None:
        message: Dict[str, Any] = {"type": "tracked", "study": self.study, "tid": self.tid, "runId": self.run_id}
        try:
            body: Dict[str, Any] = {"run_id": self.run_id, "tags": [{"key": k, "value": v} for k, v in outcome.tags.items()]}
            if outcome.loss is not None:
                body["metrics"] = [{"key": "loss", "value": outcome.loss, "timestamp": int(round(outcome.ended_at)), "step": 0}]
            _rest(self._client, "runs/log-batch", body)
            if outcome.traceback:
                self._client.log_text(self.run_id, outcome.traceback, "traceback.txt")
            _rest(self._client, "runs/update", {"run_id": self.run_id, "status": outcome.status, "end_time": int(round(outcome.ended_at))})
            if self.write_error:
                message.update(complete=False, error=self.write_error)
            else:
                message["complete"] = True
        except Exception as exc:  # noqa: BLE001
            # The run exists but is incomplete: the coordinator completes it from the journal.
            message.update(complete=False, error=_short(exc))
        logger.send(message)

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


class _Outcome:
    """What the logger writes once the objective returned: loss, status tags, run status."""

    def __init__(self, reply: Dict[str, Any], ended_at: float):
        failed = reply.get("outcome") != "ok"
        summary = reply.get("summary") or {}
        status_text = "error" if failed else str(summary.get("status"))
        self.ended_at = ended_at
        self.tags = {"trial_status": status_text}
        self.loss: Any = None
        loss = summary.get("loss")
        if not failed and loss is not None:
            # The REST API's JSON spells non-finite values as these strings.
            self.loss = loss if isinstance(loss, str) else float(loss)
        self.traceback: Optional[str] = None
        if failed and reply.get("error"):
            error = reply["error"]
            text = error.get("traceback") or f"{error.get('type')}: {error.get('message')}"
            self.tags[TRACEBACK_TAG] = text[-TAG_LIMIT:]
            self.traceback = error.get("traceback")
        self.status = "FAILED" if failed or status_text != "ok" else "FINISHED"


def _rest(client: Any, path: str, body: Dict[str, Any]) -> None:
    """One tracking REST call from the logger's thread, failing fast by its own arguments: the
    environment switch of :class:`_FailFast` would reach the objective's calls, which run
    meanwhile in the main thread."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    creds = client._tracking_client.store.get_host_creds()
    endpoint = f"/api/2.0/mlflow/{path}"
    response = http_request(creds, endpoint, "POST", max_retries=0, timeout=int(_FailFast.SETTINGS["MLFLOW_HTTP_REQUEST_TIMEOUT"]), json=body)
    verify_rest_response(response, endpoint)


#: How many writes a worker holds before a trial waits for the logger (back-pressure, never a drop).
LOGGER_CAPACITY = 64
#: How long a worker that was told to exit waits for its logger to write what it holds.
DRAIN_SECONDS = 30.0


class TrialLogger:
    """The worker's background writer: one thread, a bounded queue of writes, in order.

    ``send`` delivers the ``tracked`` message of each finished run to the coordinator. A worker
    that dies before its queue is written leaves those runs without ``tracked``; the coordinator
    completes them from the journal."""

    def __init__(self, send: Callable[[Dict[str, Any]], None], capacity: int = LOGGER_CAPACITY):
        self.send = send
        self._jobs: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue(maxsize=capacity)
        self._thread: Optional[threading.Thread] = None

    def submit(self, job: Callable[[], None]) -> None:
        """Queues a write; blocks while the queue is full."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hyperopt-runner-mlflow", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # noqa: BLE001 - a write that fails is reported by its tracked message
                pass

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Writes what is queued, waiting at most ``timeout`` seconds; True when all was written."""
        thread = self._thread
        if thread is None:
            return True
        deadline = time.monotonic() + timeout
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            return False
        thread.join(max(0.0, deadline - time.monotonic()))
        return not thread.is_alive()
