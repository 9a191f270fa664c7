"""Times the worker's logging around one trial: ``TrialRun.begin`` (the child run, its params,
the active run) and ``TrialRun.end`` (loss, status tag, the run's end), for N no-op trials in a
row against a tracking server, with the runtime package found in RUNTIME_DIR (so two versions
of the runtime can be compared on one server).

Usage: trial_logging.py RUNTIME_DIR URI EXPERIMENT_ID PARENT_RUN_ID N
Prints: {"begin": [ms...], "end": [ms...], "errors": n}
"""
import contextlib
import io
import json
import os
import sys
import time

runtime_dir, uri, experiment_id, parent_run_id, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, runtime_dir)
os.environ["MLFLOW_TRACKING_URI"] = uri
os.environ["HYPEROPT_RUNNER_TRACKING"] = "1"

import mlflow  # noqa: E402,F401 - imported before timing, as the worker's preload does
from hyperopt_runner._tracking import TrialRun  # noqa: E402

begin, end, errors = [], [], 0
for tid in range(n + 1):
    tracking = {
        "uri": uri,
        "experimentId": experiment_id,
        "parentRunId": parent_run_id,
        "runName": f"trial {tid}",
        "tags": {"fmin_uuid": "bench", "hyperopt_runner.tid": str(tid), "hyperopt_runner.slot": "local/0", "hyperopt_runner.host": "localhost"},
        "params": {"x": str(tid / (n + 1)), "kind": "small"},
    }
    run = TrialRun(tracking, tid)
    # mlflow prints a link to every run it ends; the worker sends that to the trial's log.
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        run.begin()
        t1 = time.perf_counter()
        reply = run.end({"outcome": "ok", "summary": {"status": "ok", "loss": tid / (n + 1)}})
        t2 = time.perf_counter()
    errors += 1 if run.error or reply.get("error") else 0
    if tid > 0:  # the first trial pays for the client's first connection
        begin.append((t1 - t0) * 1000)
        end.append((t2 - t1) * 1000)
print(json.dumps({"begin": begin, "end": end, "errors": errors}))
