"""The forms SparkTrials code takes on Databricks, each a study of its own:

1. SparkTrials() with no arguments (parallelism: the executors' slots);
2. `from hyperopt.spark import SparkTrials` under an alias, with parallelism and timeout;
3. loss_threshold, which ends the study at the first trial at or below it;
4. two fmin calls in one active MLflow run (params that differ get the study's suffix).

Prints one JSON line per study with what SparkTrials documents about it.
"""
import json
import sys
import time

import mlflow
import numpy as np
from hyperopt import STATUS_OK, SparkTrials, fmin, hp, rand
from hyperopt.spark import SparkTrials as ST

space = {"x": hp.uniform("x", -5, 5), "kind": hp.choice("kind", ["a", "b"])}


def objective(params):
    time.sleep(0.02)
    if params["x"] > 4.5:
        raise ValueError("x too large")
    return {"loss": (params["x"] - 1) ** 2, "status": STATUS_OK}


def report(name, trials, best):
    print(json.dumps({
        "name": name,
        "type": type(trials).__name__,
        "total": trials.count_total_trials(),
        "ok": trials.count_successful_trials(),
        "failed": trials.count_failed_trials(),
        "cancelled": trials.count_cancelled_trials(),
        "trials": len(trials.trials),
        "results": len(trials.results),
        "best_loss": trials.best_trial["result"]["loss"],
        "argmin": sorted(trials.argmin),
        "best": sorted(best),
        "states": sorted({t["state"] for t in trials.trials}),
        "cancelled_reason": trials.fmin_cancelled_reason,
    }), flush=True)


seed = int(sys.argv[1]) if len(sys.argv) > 1 else 7

trials = SparkTrials()
best = fmin(objective, space, algo=rand.suggest, max_evals=12, trials=trials, rstate=np.random.default_rng(seed))
report("no_arguments", trials, best)

trials = ST(parallelism=2, timeout=600)
best = fmin(objective, space, algo=rand.suggest, max_evals=10, trials=trials, rstate=np.random.default_rng(seed))
report("alias_parallelism_timeout", trials, best)

trials = SparkTrials(parallelism=2, loss_threshold=4.0)
best = fmin(objective, space, algo=rand.suggest, max_evals=200, trials=trials, rstate=np.random.default_rng(seed))
report("loss_threshold", trials, best)

with mlflow.start_run(run_name="two_models") as run:
    for name, max_evals in (("first_model", 6), ("second_model", 8)):
        trials = SparkTrials(parallelism=2)
        best = fmin(objective, space, algo=rand.suggest, max_evals=max_evals, trials=trials, rstate=np.random.default_rng(seed))
        report(name, trials, best)
    print(json.dumps({"active_run": run.info.run_id}), flush=True)
