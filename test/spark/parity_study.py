"""One script, run twice by test_parity.py: with real SparkTrials (pyspark, local[2]) and under
hyperopt-runner. Prints, per study, what a user's code can see of a SparkTrials after fmin."""
import json
import sys
import time

import numpy as np
from hyperopt import STATUS_OK, SparkTrials, fmin, hp, rand

space = {"x": hp.uniform("x", -2, 2), "kind": hp.choice("kind", ["a", "b"])}


def objective(params):
    if params["x"] > 1.2:
        raise ValueError("x too large")
    return {"loss": params["x"] ** 2, "status": STATUS_OK, "kind_seen": params["kind"]}


def slow(params):
    time.sleep(2)
    return params["x"] ** 2


def describe(trials, best):
    ok = [t for t in trials.trials if t["result"].get("status") == "ok"]
    failed = [t for t in trials._dynamic_trials if t["state"] == 3]  # trials.trials leaves errors out
    return {
        "type": type(trials).__name__,
        "parallelism": trials.parallelism,
        "counts": {
            "ok": trials.count_successful_trials(),
            "failed": trials.count_failed_trials(),
            "cancelled": trials.count_cancelled_trials(),
            "total": trials.count_total_trials(),
        },
        "trials": len(trials.trials),
        "tids": sorted(t["tid"] for t in trials.trials),
        "states": sorted({t["state"] for t in trials.trials}),
        "trial_keys": sorted(trials.trials[0]),
        "misc_keys": sorted(trials.trials[0]["misc"]),
        "ok_result_keys": sorted(ok[0]["result"]) if ok else [],
        "failed_result": failed[0]["result"] if failed else None,
        "failed_error_type": failed[0]["misc"]["error"][0] if failed else None,
        "failed_error_has_message": bool(failed and "x too large" in failed[0]["misc"]["error"][1]),
        "results": len(trials.results),
        "best_trial_keys": sorted(trials.best_trial) if ok else [],
        "argmin": sorted(trials.argmin) if ok else [],
        "best": sorted(best) if best else [],
        "cancelled_reason": trials.fmin_cancelled_reason,
    }


seed = int(sys.argv[1]) if len(sys.argv) > 1 else 3
trials = SparkTrials(parallelism=2)
best = fmin(objective, space, algo=rand.suggest, max_evals=12, trials=trials, rstate=np.random.default_rng(seed), show_progressbar=False)
first = describe(trials, best)
timed = SparkTrials(parallelism=2, timeout=9)
best = fmin(slow, space, algo=rand.suggest, max_evals=20, trials=timed, rstate=np.random.default_rng(seed), show_progressbar=False, return_argmin=False)
print("PARITY", json.dumps({"plain": first, "timeout": describe(timed, best)}), flush=True)
