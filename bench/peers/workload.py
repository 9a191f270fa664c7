"""Studies of the peers benchmark: the same objective, space, max_evals and seed on any runner.

    python workload.py RUNNER WORKLOAD N PARALLELISM SEED [CAP_SECONDS|-] [MARK_DIR|-]
    python workload.py RUNNER --session CASES_JSON SEED [MARK_DIR|-]

The first form runs one study; `hyperopt-runner run` runs it that way, one command per study, as
its users do. The second runs a list of studies one after another in this one process, as a
notebook or a script that tunes several models does: one Spark session or one Ray instance,
started once (sized for the largest parallelism in the list) and shared by the studies.
CASES_JSON is a list of {"id", "workload", "n", "p", "cap"}.

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

Before each study it prints PEERS_BEGIN {"case"}; after it, one line
PEERS_RESULT {"case", "fmin_seconds", "setup_seconds", "done", "best_loss"} (or PEERS_ERROR
{"case", "error"}), where fmin_seconds is the study itself (the fmin or Tuner.fit call) and
setup_seconds what this process did before it (importing, starting Spark or Ray; 0 for a study
that reuses the session).
"""
import json
import os
import sys
import time
import traceback

SCRIPT_STARTED = time.perf_counter()

import numpy as np  # noqa: E402
from hyperopt import STATUS_OK, fmin, hp, tpe  # noqa: E402

RUNNER = sys.argv[1]


def optional(index):
    return sys.argv[index] if len(sys.argv) > index and sys.argv[index] not in ("", "-") else None


if sys.argv[2] == "--session":
    CASES = json.loads(sys.argv[3])
    SEED = int(sys.argv[4])
    MARK_DIR = optional(5)
else:
    CASES = [{"id": sys.argv[2], "workload": sys.argv[2], "n": int(sys.argv[3]), "p": int(sys.argv[4]),
              "cap": float(sys.argv[6]) if optional(6) else None}]
    SEED = int(sys.argv[5])
    MARK_DIR = optional(7)
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
algo = tpe.suggest  # its n_startup_jobs is STARTUP


def space_of(case):
    return SPACES.get(case["workload"], {"x": hp.uniform("x", 0, 1)})


def emit(kind, payload):
    print(f"PEERS_{kind} " + json.dumps(payload), flush=True)


class Clock:
    """What this process did before each study: everything up to the first, then the gaps."""

    def __init__(self):
        self.mark = SCRIPT_STARTED

    def setup(self):
        return time.perf_counter() - self.mark

    def done(self):
        self.mark = time.perf_counter()


def each_case(run_one):
    """Runs the studies in order; one that raises is reported and the next one still runs.
    KeyboardInterrupt (the cancel measure's Ctrl+C) ends the process, as it ends a script."""
    clock = Clock()
    for case in CASES:
        emit("BEGIN", {"case": case["id"]})
        try:
            fmin_seconds, setup_seconds, done, best_loss = run_one(case, clock)
            emit("RESULT", {"case": case["id"], "fmin_seconds": round(fmin_seconds, 4),
                            "setup_seconds": round(setup_seconds, 4), "done": done, "best_loss": best_loss})
        except Exception as error:
            emit("ERROR", {"case": case["id"], "error": f"{type(error).__name__}: {error}",
                           "trace": traceback.format_exc()[-2000:]})
        clock.done()


def study(case, trials, **extra):
    """Runs fmin; returns its wall time. A study that the cap stops before any trial finished is
    reported with 0 trials (fmin raises there, having no argmin to return)."""
    started = time.perf_counter()
    try:
        fmin(OBJECTIVES[case["workload"]], space_of(case), algo=algo, max_evals=case["n"], trials=trials,
             timeout=case.get("cap"), rstate=np.random.default_rng(SEED), show_progressbar=False, **extra)
    except Exception as error:
        if case.get("cap") is None or "no evaluation tasks" not in str(error):
            raise
    return time.perf_counter() - started


def best_of(trials):
    losses = [t["result"]["loss"] for t in trials.trials if t.get("result", {}).get("status") == STATUS_OK]
    return (len(losses), min(losses) if losses else None)


def run_hyperopt():
    from hyperopt import Trials

    def one(case, clock):
        trials = Trials()
        # Under `hyperopt-runner run` this call is the study and `trials` is filled as a serial
        # run fills it; under plain python it is the serial run.
        setup = clock.setup()
        return (study(case, trials), setup, *best_of(trials))

    each_case(one)


def run_spark():
    # Offline, quiet, local: loopback only, no UI, Python workers reused between tasks.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    import logging

    from pyspark.sql import SparkSession
    from hyperopt.spark import SparkTrials

    slots = max(case["p"] for case in CASES)
    spark = (
        SparkSession.builder.master(f"local[{slots}]")
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
    logging.getLogger("hyperopt-spark").setLevel(logging.ERROR)

    def one(case, clock):
        trials = SparkTrials(parallelism=case["p"], spark_session=spark)
        setup = clock.setup()
        # max_queue_len=P: fmin queues up to P trials per poll; at its default of 1 SparkTrials
        # starts at most one trial per second (fmin and the dispatcher both poll once a second).
        return (study(case, trials, max_queue_len=case["p"]), setup, *best_of(trials))

    each_case(one)
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
    ray.init(num_cpus=max(case["p"] for case in CASES), include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", _temp_dir=tempfile.mkdtemp(prefix="ray-", dir=scratch))

    def one(case, clock):
        objective = OBJECTIVES[case["workload"]]

        def trainable(config):
            return {"loss": objective(config)["loss"]}

        p = case["p"]
        search = ConcurrencyLimiter(
            HyperOptSearch(space=space_of(case), metric="loss", mode="min", n_initial_points=STARTUP, random_state_seed=SEED),
            max_concurrent=p,
        )
        storage = tempfile.mkdtemp(prefix="tune-", dir=scratch)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search, num_samples=case["n"], max_concurrent_trials=p,
                                        reuse_actors=True, time_budget_s=case.get("cap")),
            run_config=tune.RunConfig(storage_path=storage, name=f"peers-{case['id']}", verbose=0),
        )
        setup = clock.setup()
        started = time.perf_counter()
        results = tuner.fit()
        elapsed = time.perf_counter() - started
        losses = [r.metrics["loss"] for r in results if r.error is None and r.metrics and "loss" in r.metrics]
        return (elapsed, setup, len(losses), min(losses) if losses else None)

    each_case(one)
    ray.shutdown()


{"hyperopt": run_hyperopt, "spark": run_spark, "ray": run_ray}[RUNNER]()
