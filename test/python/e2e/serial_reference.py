"""Runs a script with plain hyperopt and prints, as one JSON line, what each fmin call did.

Objective exceptions are caught (catch_eval_exceptions=True) so a study goes on, which is what
the runner does, as SparkTrials does; everything else is hyperopt's own serial loop.
"""
import json
import runpy
import sys

import hyperopt
from hyperopt import base

# `hyperopt.fmin` is the function; its module is only reachable through sys.modules.
fmin_module = sys.modules["hyperopt.fmin"]
original = fmin_module.fmin
records = []
depth = 0


def recording_fmin(fn, space, *args, **kwargs):
    # base.Trials.fmin calls the module's fmin again: record the outermost call only.
    global depth
    if depth > 0:
        return original(fn, space, *args, **kwargs)
    trials = kwargs.get("trials")
    if trials is None:
        trials = base.Trials()
        kwargs["trials"] = trials
    kwargs["catch_eval_exceptions"] = True
    depth += 1
    try:
        result = original(fn, space, *args, **kwargs)
    finally:
        depth -= 1
    docs = trials._dynamic_trials
    ok = [d for d in docs if d["state"] == base.JOB_STATE_DONE and d["result"].get("status") == "ok"]
    records.append({
        "total": len(docs),
        "ok": len(ok),
        "failed": len(docs) - len(ok),
        "argmin_keys": sorted(trials.argmin.keys()) if ok else None,
    })
    return result


hyperopt.fmin = recording_fmin
fmin_module.fmin = recording_fmin
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(script).resolve().parent))
runpy.run_path(script, run_name="__main__")
print(json.dumps(records))
