"""The study engine: one fmin call run through the coordinator.

``run_study`` works on any ``hyperopt.base.Trials`` as its store and fills it as a serial
``fmin`` would (docs with state, result, misc, book and refresh times). It never sleeps or
polls: it blocks on its study's queue and reacts to the coordinator's ``suggest``,
``started``, ``finished`` and ``ended``.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import logging
import math
import os
import pickle
import sys
import threading
from typing import Any, Callable, Deque, Dict, List, Optional

from . import _protocol as P
from . import _tracking
from ._connection import Connection, Lost, get_connection
from ._errors import CoordinatorLost, StudyOpenFailed

logger = logging.getLogger("hyperopt_runner")

# What SparkTrials puts in fmin_cancelled_reason, for the ends that are not a study's own.
CANCELLED_REASONS = {
    "cancelled": "fmin run cancelled by user",
    "timeout": "fmin run timeout",
    "stopped": "fmin run stopped by user",
    "early_stop_fn": "early stopping condition",
    "no_progress": "early stopping condition",
}
USER_CANCELLED = CANCELLED_REASONS["cancelled"]

NO_EVALUATION_TASKS = "There are no evaluation tasks, cannot return argmin of task losses."

_ordinals = itertools.count()
_ordinal_lock = threading.Lock()


def next_ordinal() -> int:
    """0 for this run's first fmin call, 1 for its second, ..."""
    with _ordinal_lock:
        return next(_ordinals)


def reset_ordinals() -> None:
    global _ordinals
    with _ordinal_lock:
        _ordinals = itertools.count()


def _package_dirs() -> List[str]:
    dirs = [os.path.dirname(os.path.abspath(__file__))]
    hyperopt = sys.modules.get("hyperopt")
    if hyperopt is not None and getattr(hyperopt, "__file__", None):
        dirs.append(os.path.dirname(os.path.abspath(hyperopt.__file__)))
    return [d + os.sep for d in dirs]


def find_call_site() -> dict:
    """File and line of the user's code that called fmin (outside hyperopt and this package)."""
    skip = _package_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not any(os.path.abspath(filename).startswith(d) for d in skip):
            return {"file": os.path.abspath(filename), "line": frame.f_lineno}
        frame = frame.f_back
    return {"file": "<unknown>", "line": 0}


def _utc(ms: Optional[float]) -> datetime.datetime:
    """A naive UTC datetime with millisecond precision, like hyperopt's coarse_utcnow()."""
    if ms is None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        return now.replace(microsecond=now.microsecond - now.microsecond % 1000)
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=float(ms))
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def _error_pair(error: Optional[dict], default_type: str, default_message: str, use_traceback: bool) -> tuple:
    """``misc["error"]`` as SparkTrials writes it: (str(type(e)), traceback or message)."""
    kind = (error or {}).get("type") or default_type
    message = (error or {}).get("message") or default_message
    detail = (error or {}).get("traceback") if use_traceback else None
    if not detail:
        detail = f"{kind}: {message}" if use_traceback else message
    return (f"<class '{kind}'>", detail)


def best_loss(store: Any) -> Optional[float]:
    losses = []
    for doc in store.trials:
        result = doc.get("result") or {}
        if doc.get("state") == _base().JOB_STATE_DONE and result.get("status") == "ok":
            try:
                value = float(result.get("loss"))
            except (TypeError, ValueError):
                continue
            if not math.isnan(value):
                losses.append(value)
    return min(losses) if losses else None


def _base() -> Any:
    from hyperopt import base

    return base


def save_trials(store: Any, path: str) -> None:
    """Pickles the store to ``path`` as hyperopt does, through a temporary file."""
    import cloudpickle

    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        cloudpickle.dump(store, handle)
    os.replace(tmp, path)


def load_trials(path: str) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


class _DoneView:
    """What early_stop_fn sees: a Trials holding only DONE trials, in completion order."""

    def __init__(self, store: Any):
        base = _base()
        self.view = base.Trials(exp_key=None, refresh=False)
        self.view.attachments = getattr(store, "attachments", {})
        self.docs: List[dict] = self.view._dynamic_trials
        self.view.refresh()

    def add(self, doc: dict) -> None:
        # Refreshed only when early_stop_fn reads it: a refresh is O(trials) per call.
        self.docs.append(doc)


class StudyLoop:
    """Reacts to one study's messages until ``ended``."""

    def __init__(
        self,
        connection: Connection,
        inbox: Any,
        study: str,
        store: Any,
        domain: Any,
        algo: Callable,
        rstate: Any,
        max_evals: int,
        max_queue_len: int,
        description: Any,
        early_stop_fn: Optional[Callable],
        trials_save_file: str,
    ):
        self.base = _base()
        self.connection = connection
        self.inbox = inbox
        self.study = study
        self.store = store
        self.domain = domain
        self.algo = algo
        self.rstate = rstate
        self.max_evals = max_evals
        self.max_queue_len = max(1, int(max_queue_len))
        self.description = description
        self.early_stop_fn = early_stop_fn
        self.early_stop_args: Any = []
        self.trials_save_file = trials_save_file
        self.exhausted: Optional[str] = None
        self.end_reason: Optional[str] = None
        self.algo_stopped = False
        self.n_queued = 0
        self.n_to_queue = 0
        self.pending: Deque[dict] = collections.deque()
        self.by_tid: Dict[Any, dict] = {}
        self.sent: set = set()
        self.done_view = _DoneView(store)

    # -- preparing the store ------------------------------------------------------------------

    def prepare(self, resume: Optional[List[dict]], reserved: List[int] = ()) -> None:
        base = self.base
        store = self.store
        # hyperopt runs max_evals - len(trials) new points, len() as of the store's last
        # refresh: points from generate_trials_to_calculate (never refreshed) do not count.
        try:
            counted = {doc["tid"] for doc in store.trials}
        except AttributeError:
            store.refresh()
            counted = {doc["tid"] for doc in store.trials}
        for doc in store._dynamic_trials:
            self.by_tid[doc["tid"]] = doc
        for finished in resume or []:
            self._insert_resumed(finished)
            if finished["state"] == "done":
                counted.add(finished["tid"])
        for doc in store._dynamic_trials:
            if doc["state"] == base.JOB_STATE_RUNNING:
                # Nothing runs before the study starts: a RUNNING doc is a leftover of an
                # interrupted run (a saved Trials, a reused Trials object). Evaluate it again.
                doc["state"] = base.JOB_STATE_NEW
                doc["book_time"] = None
                doc["owner"] = None
        self._reserve_known_tids(reserved)
        store.refresh()
        self.n_to_queue = self.max_evals - len(counted)
        if self.n_to_queue > 0:
            self.pending.extend(doc for doc in store._dynamic_trials if doc["state"] == base.JOB_STATE_NEW)
        for doc in store._dynamic_trials:
            if doc["state"] == base.JOB_STATE_DONE:
                self.done_view.docs.append(doc)
        self.done_view.view.refresh()

    def _reserve_known_tids(self, reserved: List[int]) -> None:
        ids = getattr(self.store, "_ids", None)
        if not isinstance(ids, set):
            return
        # Reserved: tids the study's journal holds for trials not run again (attempts lost with
        # an earlier command), whose MLflow runs a new trial must not share.
        tids = [tid for tid in self.by_tid if isinstance(tid, int)] + list(reserved)
        ids.update(tids)
        if tids and max(tids) + 1 > len(ids):
            # new_trial_ids counts from len(_ids); fill the gaps so it never hands out a tid
            # that a finished trial already has.
            ids.update(range(max(tids) + 1))

    def _insert_resumed(self, finished: dict) -> None:
        base = self.base
        tid = finished["tid"]
        doc = self.by_tid.get(tid)
        if doc is None:
            doc = {
                "state": base.JOB_STATE_NEW,
                "tid": tid,
                "spec": None,
                "result": {"status": base.STATUS_NEW},
                "misc": {
                    "tid": tid,
                    "cmd": ("domain_attachment", "FMinIter_Domain"),
                    "workdir": None,
                    "idxs": {},
                    "vals": {},
                },
                "exp_key": getattr(self.store, "_exp_key", None),
                "owner": None,
                "version": 0,
                "book_time": None,
                "refresh_time": None,
            }
            self.store.insert_trial_docs([doc])
            # insert_trial_docs may copy the doc; find the stored one.
            doc = self.store._dynamic_trials[-1]
            self.by_tid[tid] = doc
        labels = set(self.domain.params) | set(finished["vals"])
        vals = finished["vals"]
        doc["misc"]["vals"] = {label: list(vals.get(label, [])) for label in labels}
        doc["misc"]["idxs"] = {label: [tid] if vals.get(label) else [] for label in labels}
        self._finish(doc, finished, resumed=True)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> dict:
        while True:
            message = self.inbox.get()
            if isinstance(message, Lost):
                raise CoordinatorLost(str(message.error))
            kind = message["type"]
            if kind == "suggest":
                self.on_suggest(message["count"])
            elif kind == "started":
                self.on_started(message)
            elif kind == "finished":
                self.on_finished(message)
            elif kind == "ended":
                self.on_ended(message)
                return message

    def on_suggest(self, count: int) -> None:
        if self.exhausted is not None:
            return
        base = self.base
        store = self.store
        out: List[dict] = []
        while self.pending and len(out) < count:
            doc = self.pending.popleft()
            if doc["state"] == base.JOB_STATE_NEW and doc["tid"] not in self.sent:
                out.append(doc)
        while len(out) < count and self.n_queued < self.n_to_queue and not self.algo_stopped:
            batch = min(count - len(out), self.max_queue_len, self.n_to_queue - self.n_queued)
            new_ids = store.new_trial_ids(batch)
            store.refresh()
            docs = self.algo(new_ids, self.domain, store, self.rstate.integers(2**31 - 1))
            if not docs:
                self.algo_stopped = True
                break
            store.insert_trial_docs(docs)
            store.refresh()
            self.n_queued += len(docs)
            inserted = store._dynamic_trials[-len(docs):]
            for doc in inserted:
                self.by_tid[doc["tid"]] = doc
                out.append(doc)
        if out:
            self.connection.send({
                "type": "trials",
                "study": self.study,
                "trials": [self._new_trial(doc) for doc in out],
            })
            self.sent.update(doc["tid"] for doc in out)
        reason = None
        if self.algo_stopped:
            reason = "algo_stopped"
        elif not self.pending and self.n_queued >= self.n_to_queue:
            reason = "max_evals"
        if reason is not None:
            self._exhaust(reason)

    def _new_trial(self, doc: dict) -> dict:
        from ._space import json_vals

        vals = doc["misc"]["vals"]
        return {
            "tid": doc["tid"],
            "spec": P.dumps_blob(self.base.spec_from_misc(doc["misc"])),
            "vals": json_vals(vals),
            "params": self.description.trial_params(vals),
        }

    def _exhaust(self, reason: str) -> None:
        self.exhausted = reason
        self.connection.send({"type": "exhausted", "study": self.study, "reason": reason})

    def on_started(self, message: dict) -> None:
        doc = self.by_tid.get(message["tid"])
        if doc is None or doc["state"] != self.base.JOB_STATE_NEW:
            return
        now = _utc(None)
        doc["state"] = self.base.JOB_STATE_RUNNING
        doc["book_time"] = now
        doc["refresh_time"] = now
        doc["owner"] = message["slot"]

    def on_finished(self, message: dict) -> None:
        base = self.base
        doc = self.by_tid.get(message["tid"])
        if doc is None:
            logger.warning("hyperopt-runner: finished for unknown trial %s", message["tid"])
            return
        if doc["state"] not in (base.JOB_STATE_NEW, base.JOB_STATE_RUNNING):
            return
        self._finish(doc, message, resumed=False)
        self.store.refresh()
        if self.trials_save_file:
            save_trials(self.store, self.trials_save_file)
        if doc["state"] == base.JOB_STATE_DONE:
            self.done_view.add(doc)
            self._early_stop()

    def _finish(self, doc: dict, message: dict, resumed: bool) -> None:
        base = self.base
        state = message["state"]
        if message.get("startedAt") is not None:
            doc["book_time"] = _utc(message["startedAt"])
        elif doc.get("book_time") is None and state != "cancel":
            doc["book_time"] = _utc(None)
        doc["refresh_time"] = _utc(message.get("endedAt"))
        if state == "done":
            try:
                result = self._result_of(message)
            except Exception as exc:  # the driver cannot read what the worker sent
                doc["state"] = base.JOB_STATE_ERROR
                doc["misc"]["error"] = (
                    str(type(exc)),
                    f"the trial's result could not be unpickled in the driver: {type(exc).__name__}: {exc}",
                )
                return
            doc["state"] = base.JOB_STATE_DONE
            doc["result"] = result
            self._move_attachments(doc, result)
        elif state == "error":
            doc["state"] = base.JOB_STATE_ERROR
            doc["misc"]["error"] = _error_pair(message.get("error"), "Exception", "the trial failed", True)
        else:
            doc["state"] = base.JOB_STATE_CANCEL
            doc["misc"]["error"] = _error_pair(message.get("error"), "Cancelled", "the trial was cancelled", False)

    def _move_attachments(self, doc: dict, result: Any) -> None:
        """Moves ``result["attachments"]`` into the store's attachments, as hyperopt's
        Domain.evaluate does in a serial run (the worker has no store to put them in).
        SparkTrials has no attachments and keeps them in the result, as on Databricks."""
        if not isinstance(result, dict) or not isinstance(result.get("attachments"), dict):
            return
        try:
            target = self.store.trial_attachments(doc)
        except NotImplementedError:
            return
        for name, value in result.pop("attachments").items():
            target[name] = value

    @staticmethod
    def _result_of(message: dict) -> dict:
        if "result" in message:
            return P.loads_blob(message["result"])
        summary = message.get("summary")
        if summary is None:
            return {"status": "fail"}
        result: Dict[str, Any] = {"status": summary["status"]}
        loss = P.loss_from_json(summary.get("loss"))
        if loss is not None:
            result["loss"] = loss
        return result

    def _early_stop(self) -> None:
        if self.early_stop_fn is None or self.exhausted == "early_stop_fn":
            return
        self.done_view.view.refresh()
        stop, args = self.early_stop_fn(self.done_view.view, *self.early_stop_args)
        self.early_stop_args = args
        if stop:
            logger.info("Early stop triggered. Stopping iterations as condition is reach.")
            if self.exhausted is None:
                self._exhaust("early_stop_fn")
            else:
                self.exhausted = "early_stop_fn"

    def on_ended(self, message: dict) -> None:
        self.end_reason = message["reason"]
        base = self.base
        text = message.get("message") or CANCELLED_REASONS.get(message["reason"], message["reason"])
        changed = False
        for tid in self.sent:
            doc = self.by_tid.get(tid)
            if doc is not None and doc["state"] in (base.JOB_STATE_NEW, base.JOB_STATE_RUNNING):
                doc["state"] = base.JOB_STATE_CANCEL
                doc["misc"]["error"] = ("<class 'Cancelled'>", text)
                doc["refresh_time"] = _utc(None)
                changed = True
        self.store.refresh()
        if changed and self.trials_save_file:
            save_trials(self.store, self.trials_save_file)
        if message["reason"] in CANCELLED_REASONS and hasattr(self.store, "_fmin_cancelled"):
            self.store._fmin_cancelled = True
            self.store._fmin_cancelled_reason = text


def _default_rstate() -> Any:
    import numpy as np

    seed = os.environ.get("HYPEROPT_FMIN_SEED", "")
    return np.random.default_rng(int(seed)) if seed else np.random.default_rng()


def _pickle_domain(connection: Connection, domain: Any, fn: Any, space: Any) -> str:
    try:
        return P.dumps_blob(domain)
    except Exception as exc:
        from ._pickling import explain_unpicklable

        message = explain_unpicklable(fn, space, exc)
        connection.send({"type": "fatal", "code": "objective_not_picklable", "message": message})
        raise SystemExit(2) from None


def _result_of_study(store: Any, space: Any, return_argmin: bool) -> Any:
    """What hyperopt 0.3.0's fmin returns once its loop is done."""
    base = _base()
    from hyperopt.exceptions import AllTrialsFailed

    if return_argmin:
        if len(store.trials) == 0:
            failed = store.count_by_state_unsynced(base.JOB_STATE_ERROR)
            if failed:
                # Serial hyperopt would have raised the first objective exception; with trials
                # run elsewhere every one of them failed instead.
                first = next(d for d in store._dynamic_trials if d["state"] == base.JOB_STATE_ERROR)
                kind, detail = first["misc"].get("error", ("", ""))
                raise AllTrialsFailed(
                    f"all {failed} trials raised an exception; the first ({kind}):\n{detail}"
                )
            raise Exception(NO_EVALUATION_TASKS)
        return store.argmin
    if len(store) > 0:
        from hyperopt.fmin import space_eval

        return space_eval(space, store.argmin)
    return None


def run_study(
    store: Any,
    fn: Callable,
    space: Any,
    algo: Optional[Callable] = None,
    max_evals: Optional[int] = None,
    timeout: Optional[float] = None,
    loss_threshold: Optional[float] = None,
    max_queue_len: int = 1,
    rstate: Any = None,
    pass_expr_memo_ctrl: Optional[bool] = None,
    return_argmin: bool = True,
    early_stop_fn: Optional[Callable] = None,
    trials_save_file: str = "",
    parallelism: Optional[int] = None,
    *,
    call_site: Optional[dict] = None,
    connection: Optional[Connection] = None,
) -> Any:
    """Runs one fmin call as a study of the coordinator, with ``store`` as its Trials."""
    base = _base()
    if algo is None:
        from hyperopt import tpe

        algo = tpe.suggest
        logging.getLogger("hyperopt.fmin").warning("TPE is being used as the default algorithm.")
    if max_evals is None:
        max_evals = sys.maxsize
    if rstate is None:
        rstate = _default_rstate()
    base.validate_timeout(timeout)
    base.validate_loss_threshold(loss_threshold)
    if call_site is None:
        call_site = find_call_site()
    if connection is None:
        connection = get_connection()

    domain = base.Domain(fn, space, pass_expr_memo_ctrl=pass_expr_memo_ctrl)
    domain_blob = _pickle_domain(connection, domain, fn, space)

    from ._space import algo_name, describe_space

    description = describe_space(domain.expr)
    if hasattr(store, "_fmin_cancelled"):
        store._fmin_cancelled = False
        store._fmin_cancelled_reason = None

    open_message: Dict[str, Any] = {
        "type": "open",
        "callSite": call_site,
        "ordinal": next_ordinal(),
        "maxEvals": max_evals if 0 <= max_evals <= P.MAX_SAFE_INTEGER else None,
        "parallelism": parallelism,
        "timeout": _finite_or_none(timeout),
        "lossThreshold": _finite_or_none(loss_threshold),
        "algo": algo_name(algo),
        "maxQueueLen": max(1, int(max_queue_len)),
        "domain": domain_blob,
        "space": description.params,
        "priorTrials": len(store._dynamic_trials),
    }
    if _tracking.tracking_requested():
        # The coordinator writes the study's parent run; these are its params as Python spells them.
        open_message["tracking"] = _tracking.study_tracking({
            "max_evals": max_evals,
            "parallelism": parallelism,
            "timeout": timeout,
            "algo": algo_name(algo),
            "max_queue_len": max_queue_len,
        })
    inbox, reply = connection.open_study(open_message)
    if reply["type"] == "open_failed":
        raise StudyOpenFailed(reply["code"], reply["message"])
    study = reply["study"]
    if hasattr(store, "actual_parallelism"):
        store.actual_parallelism = reply["parallelism"]

    loop = StudyLoop(
        connection, inbox, study, store, domain, algo, rstate, max_evals, max_queue_len,
        description, early_stop_fn, trials_save_file,
    )
    try:
        try:
            loop.prepare(reply.get("resume"), reply.get("reservedTids") or [])
            loop.run()
            result = _result_of_study(store, space, return_argmin)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and hasattr(store, "_fmin_cancelled"):
                store._fmin_cancelled = True
                store._fmin_cancelled_reason = USER_CANCELLED
            if not isinstance(exc, CoordinatorLost):
                _send_quietly(connection, {"type": "close", "study": study, "error": _error_text(exc), "counts": _tracking.study_counts(store)})
            raise
        close: Dict[str, Any] = {"type": "close", "study": study, "counts": _tracking.study_counts(store)}
        best = best_loss(store)
        if best is not None:
            close["bestLoss"] = P.loss_to_json(best)
        connection.send(close)
        return result
    finally:
        connection.release(study)


def _finite_or_none(value: Optional[float]) -> Optional[float]:
    """JSON has no infinity: an infinite timeout or threshold is no timeout or threshold."""
    if value is None or not math.isfinite(float(value)):
        return None
    return value


def _error_text(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{name}: {text[0]}" if text else name


def _send_quietly(connection: Connection, message: dict) -> None:
    try:
        connection.send(message)
    except Exception:
        pass
