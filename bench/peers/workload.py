"""One study of the peers benchmark: the same objective, space, max_evals and seed on any runner.

    python workload.py RUNNER WORKLOAD N PARALLELISM SEED [CAP_SECONDS|-] [MARK_DIR|-]

RUNNER is how the study runs:
  hyperopt  plain fmin() with no trials argument: serial Trials() when run by python, the
            runner's executors when run by `hyperopt-runner run`
  spark     fmin(trials=SparkTrials(parallelism=P)) on a local[P] Spark session
  ray       Ray Tune with HyperOptSearch (TPE), P concurrent trials on a local Ray instance
WORKLOAD is noop (returns at once), sleep1 (sleeps 1 s), sleep30 (sleeps 30 s, for the cancel
measure) or gbm (scikit-learn gradient boosting on the breast cancer data set shipped with
scikit-learn, validation log loss). Every runner uses TPE with 20 random start-up trials.
CAP_SECONDS stops a study that runs that long (fmin timeout, Tune's time budget). In MARK_DIR
each sleep30 trial leaves a file as it starts, so the benchmark knows when trials are running.

Prints one line: PEERS_RESULT {"fmin_seconds", "setup_seconds", "done", "best_loss"}, where
fmin_seconds is the study itself (the fmin or Tuner.fit call) and setup_seconds what came before
it inside this script (starting Spark or Ray).
"""
import json
import os
import sys
import time

SCRIPT_STARTED = time.perf_counter()

import numpy as np  # noqa: E402
from hyperopt import STATUS_OK, fmin, hp, tpe  # noqa: E402

RUNNER, WORKLOAD = sys.argv[1], sys.argv[2]
N, P, SEED = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
CAP = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] not in ("", "-") else None
MARK_DIR = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] not in ("", "-") else None
STARTUP = 20  # hyperopt's tpe default n_startup_jobs; HyperOptSearch gets the same


def noop(params):
    return {"loss": params["x"], "status": STATUS_OK}


def sleep1(params):
    time.sleep(1.0)
    return {"loss": params["x"], "status": STATUS_OK}


def sleep30(params):
    if MARK_DIR:
        open(os.path.join(MARK_DIR, f"{os.getpid()}-{time.time_ns()}"), "w").close()
    time.sleep(30.0)
    return {"loss": params["x"], "status": STATUS_OK}


def gbm(params):
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    model = GradientBoostingClassifier(
        n_estimators=int(params["n_estimators"]),
        learning_rate=params["learning_rate"],
        max_depth=int(params["max_depth"]),
        subsample=params["subsample"],
        random_state=0,
    )
    model.fit(x_train, y_train)
    return {"loss": float(log_loss(y_valid, model.predict_proba(x_valid))), "status": STATUS_OK}


OBJECTIVES = {"noop": noop, "sleep1": sleep1, "sleep30": sleep30, "gbm": gbm}
SPACES = {
    "gbm": {
        "n_estimators": hp.quniform("n_estimators", 10, 60, 10),
        "learning_rate": hp.loguniform("learning_rate", np.log(0.01), np.log(1.0)),
        "max_depth": hp.quniform("max_depth", 1, 3, 1),
        "subsample": hp.uniform("subsample", 0.5, 1.0),
    },
}
objective = OBJECTIVES[WORKLOAD]
space = SPACES.get(WORKLOAD, {"x": hp.uniform("x", 0, 1)})
algo = tpe.suggest  # its n_startup_jobs is STARTUP


def report(fmin_seconds, setup_seconds, done, best_loss):
    print("PEERS_RESULT " + json.dumps({
        "fmin_seconds": round(fmin_seconds, 4),
        "setup_seconds": round(setup_seconds, 4),
        "done": done,
        "best_loss": best_loss,
    }), flush=True)


def study(trials, **extra):
    """Runs fmin; returns its wall time. A study that the cap stops before any trial finished is
    reported with 0 trials (fmin raises there, having no argmin to return)."""
    started = time.perf_counter()
    try:
        fmin(objective, space, algo=algo, max_evals=N, trials=trials, timeout=CAP,
             rstate=np.random.default_rng(SEED), show_progressbar=False, **extra)
    except Exception as error:
        if CAP is None or "no evaluation tasks" not in str(error):
            raise
    return time.perf_counter() - started


def best_of(trials):
    losses = [t["result"]["loss"] for t in trials.trials if t.get("result", {}).get("status") == STATUS_OK]
    return (len(losses), min(losses) if losses else None)


def run_hyperopt():
    from hyperopt import Trials

    trials = Trials()
    # Under `hyperopt-runner run` this call is the study and `trials` is filled as a serial run
    # fills it; under plain python it is the serial run.
    setup = time.perf_counter() - SCRIPT_STARTED
    report(study(trials), setup, *best_of(trials))


def run_spark():
    # Offline, quiet, local: loopback only, no UI, Python workers reused between tasks.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from hyperopt.spark import SparkTrials

    spark = (
        SparkSession.builder.master(f"local[{P}]")
        .appName("peers-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    import logging

    logging.getLogger("hyperopt-spark").setLevel(logging.ERROR)
    trials = SparkTrials(parallelism=P, spark_session=spark)
    setup = time.perf_counter() - SCRIPT_STARTED
    # max_queue_len=P: fmin queues up to P trials per poll; at its default of 1 SparkTrials
    # starts at most one trial per second (fmin and the dispatcher both poll once a second).
    report(study(trials, max_queue_len=P), setup, *best_of(trials))
    spark.stop()


def run_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import tempfile

    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    scratch = os.environ.get("PEERS_SCRATCH") or tempfile.gettempdir()
    ray.init(num_cpus=P, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             _temp_dir=tempfile.mkdtemp(prefix="ray-", dir=scratch))

    def trainable(config):
        return {"loss": objective(config)["loss"]}

    search = ConcurrencyLimiter(
        HyperOptSearch(space=space, metric="loss", mode="min", n_initial_points=STARTUP, random_state_seed=SEED),
        max_concurrent=P,
    )
    storage = tempfile.mkdtemp(prefix="tune-", dir=scratch)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=search, num_samples=N, max_concurrent_trials=P,
                                    reuse_actors=True, time_budget_s=CAP),
        run_config=tune.RunConfig(storage_path=storage, name="peers", verbose=0),
    )
    setup = time.perf_counter() - SCRIPT_STARTED
    started = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - started
    losses = [r.metrics["loss"] for r in results if r.error is None and r.metrics and "loss" in r.metrics]
    report(elapsed, setup, len(losses), min(losses) if losses else None)
    ray.shutdown()


{"hyperopt": run_hyperopt, "spark": run_spark, "ray": run_ray}[RUNNER]()
