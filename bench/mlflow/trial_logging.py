"""Times the worker's logging around one trial, for N no-op trials in a row against a tracking
server, with the runtime package found in RUNTIME_DIR (so two versions of the runtime can be
compared on one server): what the trial waits for before its objective (``begin``: the child
run, the active run) and after it (``end``), and what the background logger writes after the
result (``background``: params, loss, status tag, the run's end; 0 for a runtime without one).

Usage: trial_logging.py RUNTIME_DIR URI EXPERIMENT_ID PARENT_RUN_ID N
Prints: {"begin": [ms...], "end": [ms...], "background": [ms...], "errors": n}
"""
import contextlib
import io
import json
import os
import sys
import threading
import time

runtime_dir, uri, experiment_id, parent_run_id, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, runtime_dir)
os.environ["MLFLOW_TRACKING_URI"] = uri
os.environ["HYPEROPT_RUNNER_TRACKING"] = "1"

import mlflow  # noqa: E402,F401 - imported before timing, as the worker's preload does
from hyperopt_runner import _tracking  # noqa: E402

TrialRun = _tracking.TrialRun
TrialLogger = getattr(_tracking, "TrialLogger", None)

begin, end, background, errors = [], [], [], 0
for tid in range(n + 1):
    tracking = {
        "uri": uri,
        "experimentId": experiment_id,
        "parentRunId": parent_run_id,
        "runName": f"trial {tid}",
        "tags": {"fmin_uuid": "bench", "hyperopt_runner.tid": str(tid), "hyperopt_runner.slot": "local/0", "hyperopt_runner.host": "localhost"},
        "params": {"x": str(tid / (n + 1)), "kind": "small"},
    }
    reply = {"outcome": "ok", "summary": {"status": "ok", "loss": tid / (n + 1)}}
    # mlflow prints a link to every run it ends; the worker sends that to the trial's log.
    with contextlib.redirect_stdout(io.StringIO()):
        if TrialLogger is None:
            # A runtime that writes the whole run in the trial (the previous one).
            run = TrialRun(tracking, tid)
            t0 = time.perf_counter()
            run.begin()
            t1 = time.perf_counter()
            tracked = run.end(reply)
            t2 = t3 = time.perf_counter()
            failed = bool(run.error or tracked.get("error"))
        else:
            # The trial waits for begin and finish; the logger's thread writes the rest. Each
            # trial's writes are awaited before the next trial, so none queue behind another's.
            done = threading.Event()
            messages = []
            logger = TrialLogger(lambda m: (messages.append(m), done.set()))
            run = TrialRun(tracking, "bench", tid)
            t0 = time.perf_counter()
            run.begin(logger)
            t1 = time.perf_counter()
            result_tracking = run.finish(reply, time.time() * 1000)
            run.submit_outcome(logger)
            t2 = time.perf_counter()
            done.wait(60)
            t3 = time.perf_counter()
            logger.drain(5)
            failed = bool(run.error or result_tracking.get("error") or not messages or not messages[0]["complete"])
    errors += 1 if failed else 0
    if tid > 0:  # the first trial pays for the client's first connection
        begin.append((t1 - t0) * 1000)
        end.append((t2 - t1) * 1000)
        background.append((t3 - t2) * 1000)
print(json.dumps({"begin": begin, "end": end, "background": background, "errors": errors}))
