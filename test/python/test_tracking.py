"""Tracked trials in a real worker: the coordinator sends a trial's child run in a `run` message;
an objective that uses mlflow runs in it, one that does not never waits for it."""

import pickle
import sys
import threading
import time

import pytest

from hyperopt_runner import _protocol as P
from test_worker import Worker

# Nothing listens here: making a run the active run must not need the server.
URI = "http://127.0.0.1:9"


def trial_run(run_id, tid):
    return {
        "runId": run_id,
        "experimentId": "0",
        "runName": f"trial {tid}",
        "userId": "unknown",
        "startTime": 1795843512000,
        "artifactUri": f"mlflow-artifacts:/0/{run_id}/artifacts",
        "lifecycleStage": "active",
        "status": "RUNNING",
        "tags": {"mlflow.parentRunId": "p", "hyperopt_runner.tid": str(tid)},
    }


@pytest.fixture
def worker(tmp_path):
    w = Worker(tmp_path)
    yield w
    w.close()


def load(worker, module, name):
    __import__(module)
    fn = getattr(sys.modules[module], name)
    assert worker.load("s", fn)["type"] == "loaded"


def evaluate(worker, tid, x, run_after=None, run=None, error=None):
    """Sends a tracked evaluate and, `run_after` seconds later, its run; returns (result, seconds)."""
    started = time.monotonic()
    worker.send({"type": "evaluate", "study": "s", "tid": tid, "spec": P.dumps_blob({"x": x}), "tracking": {"uri": URI}})
    if run_after is not None:
        def send_run():
            time.sleep(run_after)
            message = {"type": "run", "study": "s", "tid": tid, "run": run}
            if error:
                message["error"] = error
            worker.send(message)

        sender = threading.Thread(target=send_run)
        sender.start()
    reply = worker.recv()
    if run_after is not None:
        sender.join()
    assert reply["type"] == "result" and reply["tid"] == tid, reply
    return reply, time.monotonic() - started


def result_of(reply):
    return pickle.loads(__import__("base64").b64decode(reply["result"]))


def test_an_objective_that_uses_mlflow_waits_for_its_run_and_runs_in_it(worker):
    load(worker, "_tracked_objectives", "eager")
    reply, seconds = evaluate(worker, 1, 0.5, run_after=0.6, run=trial_run("a" * 32, 1))
    assert seconds >= 0.5, "the objective waited for its run"
    result = result_of(reply)
    assert result["active"] == "a" * 32 and result["env_run"] == "a" * 32 and result["uri"] == URI
    assert result["tags"]["hyperopt_runner.tid"] == "1"
    assert reply["tracking"] == {"runId": "a" * 32}
    # The next trial starts clean: the previous run is no longer active, the environment restored.
    worker.send({"type": "evaluate", "study": "s", "tid": 2, "spec": P.dumps_blob({"x": 0.1})})
    untracked = worker.recv()
    assert result_of(untracked)["active"] is None and result_of(untracked)["env_run"] is None
    assert "tracking" not in untracked


def test_a_run_the_coordinator_could_not_create_lets_the_objective_run_without_it(worker):
    load(worker, "_tracked_objectives", "eager")
    reply, _ = evaluate(worker, 3, 0.5, run_after=0.1, run=None, error="cannot reach MLflow")
    assert reply["outcome"] == "ok" and result_of(reply)["active"] is None
    assert reply["tracking"] == {"runId": None, "error": "cannot reach MLflow"}


def test_an_objective_that_imports_mlflow_while_it_runs_finds_its_run_named(worker):
    load(worker, "_lazy_objectives", "lazy")
    reply, seconds = evaluate(worker, 4, 0.5, run_after=0.6, run=trial_run("b" * 32, 4))
    assert seconds >= 0.5
    assert result_of(reply)["env_run"] == "b" * 32
    assert reply["tracking"] == {"runId": "b" * 32}


def test_an_objective_without_mlflow_neither_waits_nor_imports_it(worker):
    load(worker, "_lazy_objectives", "plain")
    # No run is ever sent: the trial must not wait for one.
    reply, seconds = evaluate(worker, 5, 0.5)
    result = result_of(reply)
    assert result["mlflow_loaded"] is False and result["uri"] == URI
    assert "tracking" not in reply
    assert seconds < 5
    # A run that arrives for a trial already over is dropped quietly.
    worker.send({"type": "run", "study": "s", "tid": 5, "run": trial_run("c" * 32, 5)})
    reply, _ = evaluate(worker, 6, 0.2)
    assert reply["outcome"] == "ok" and "tracking" not in reply


def test_a_run_that_comes_before_its_trial_starts_is_kept_and_other_trials_runs_are_forgotten():
    from hyperopt_runner._tracking import RunMailbox

    mailbox = RunMailbox()
    mailbox.begin("s", 1)
    # The next trial's run arrives while trial 1 is still the current one.
    mailbox.post({"type": "run", "study": "s", "tid": 2, "run": None})
    mailbox.begin("s", 2)
    assert mailbox.wait("s", 2, 0.1) == {"type": "run", "study": "s", "tid": 2, "run": None}
    mailbox.post({"type": "run", "study": "s", "tid": 1, "run": None})
    mailbox.begin("s", 3)
    assert mailbox.wait("s", 1, 0.05) is None and mailbox.wait("s", 2, 0.05) is None
    for tid in range(100):
        mailbox.post({"type": "run", "study": "s", "tid": tid, "run": None})
    assert mailbox.wait("s", 0, 0) is None and mailbox.wait("s", 99, 0) is not None
