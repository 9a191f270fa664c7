"""The driver's study engine against the in-test coordinator (see _coordinator.py)."""

import math
import os
import pickle
import threading

import numpy as np
import pytest
from hyperopt import Trials, base, fmin, hp, rand, tpe
from hyperopt.early_stop import no_progress_loss
from hyperopt.exceptions import AllTrialsFailed
from hyperopt.fmin import generate_trials_to_calculate, space_eval

from hyperopt_runner import CoordinatorLost, CoordinatorNotFound, RunnerTrials, _connection
from hyperopt_runner import _protocol as P
from hyperopt_runner._driver import run_study
from hyperopt_runner._launch import make_fmin
from hyperopt_runner._space import json_vals

SPACE = {"x": hp.uniform("x", -5, 5), "c": hp.choice("c", [0, 1, 2])}


def objective(point):
    return (point["x"] - 1) ** 2 + point["c"]


def serial(fn=objective, space=SPACE, max_evals=30, seed=42, **options):
    trials = Trials()
    best = fmin(fn, space, algo=tpe.suggest, max_evals=max_evals, trials=trials,
                rstate=np.random.default_rng(seed), show_progressbar=False, **options)
    return best, trials


def messages(fake, kind):
    return fake.wait_for(kind)


def assert_consistent(trials, fn=objective):
    """Every doc finished, unique tids, each loss the objective's value at the doc's point."""
    tids = [doc["tid"] for doc in trials._dynamic_trials]
    assert len(tids) == len(set(tids))
    for doc in trials._dynamic_trials:
        assert doc["tid"] == doc["misc"]["tid"]
        assert doc["state"] in (base.JOB_STATE_DONE, base.JOB_STATE_ERROR, base.JOB_STATE_CANCEL)
        assert doc["book_time"] is not None and doc["refresh_time"] is not None
        assert doc["refresh_time"] >= doc["book_time"]
        if doc["state"] == base.JOB_STATE_DONE:
            point = space_eval(SPACE, base.spec_from_misc(doc["misc"]))
            assert doc["result"]["loss"] == pytest.approx(fn(point))
            assert doc["misc"]["idxs"] == {k: [doc["tid"]] if v else [] for k, v in doc["misc"]["vals"].items()}


# -- parity with a serial run -----------------------------------------------------------------------


def test_parallelism_one_equals_a_serial_run(coordinator):
    fake = coordinator(parallelism=1)
    trials = Trials()
    best = run_study(trials, objective, SPACE, algo=tpe.suggest, max_evals=30, rstate=np.random.default_rng(42))
    serial_best, serial_trials = serial()
    assert best == serial_best
    assert [d["misc"]["vals"] for d in trials.trials] == [d["misc"]["vals"] for d in serial_trials.trials]
    assert trials.losses() == serial_trials.losses()
    assert trials.tids == list(range(30))
    assert_consistent(trials)
    assert fake.hellos[0]["token"] == fake.token
    # one point per suggestion, each asked for after the previous trial finished
    assert [len(m["trials"]) for m in messages(fake, "trials")] == [1] * 30
    assert messages(fake, "exhausted") == [{"type": "exhausted", "study": "study-0", "reason": "max_evals"}]
    close = messages(fake, "close")[0]
    assert close["bestLoss"] == pytest.approx(min(serial_trials.losses()))


def test_runner_trials_through_hyperopt_fmin(coordinator):
    fake = coordinator()
    trials = RunnerTrials(parallelism=1, timeout=600)
    best = fmin(objective, SPACE, algo=tpe.suggest, max_evals=25, trials=trials, rstate=np.random.default_rng(7))
    serial_best, serial_trials = serial(max_evals=25, seed=7)
    assert best == serial_best
    assert trials.losses() == serial_trials.losses()
    assert trials.count_successful_trials() == 25 and trials.count_total_trials() == 25
    assert trials.count_failed_trials() == 0 and trials.count_cancelled_trials() == 0
    assert trials.fmin_cancelled_reason is None and trials._fmin_cancelled is False
    opened = fake.only_study().open
    assert opened["parallelism"] == 1 and opened["timeout"] == 600 and opened["maxEvals"] == 25
    assert opened["algo"] == "tpe.suggest" and opened["maxQueueLen"] == 1 and opened["priorTrials"] == 0
    assert opened["callSite"]["file"] == os.path.abspath(__file__)
    assert trials.actual_parallelism == 1


def test_open_describes_the_space_and_each_trial(coordinator):
    fake = coordinator(parallelism=2)
    space = {
        "lr": hp.loguniform("lr", -9, 0),
        "model": hp.choice("model", ["svm", {"type": "forest", "depth": hp.randint("depth", 2, 9)}]),
    }
    run_study(Trials(), lambda p: p["lr"], space, algo=rand.suggest, max_evals=12, rstate=np.random.default_rng(3))
    described = {d["label"]: d for d in fake.only_study().open["space"]}
    assert described["lr"] == {"label": "lr", "dist": "loguniform", "args": {"low": -9, "high": 0}}
    assert described["model"]["dist"] == "choice"
    assert described["model"]["options"][0] == "svm" and "forest" in described["model"]["options"][1]
    assert described["depth"] == {"label": "depth", "dist": "randint", "args": {"low": 2, "high": 9}}
    seen_forest = seen_svm = False
    for trial in fake.only_study().suggested:
        params, vals = trial["params"], trial["vals"]
        assert params["lr"] == vals["lr"][0]
        if vals["model"] == [0]:
            seen_svm = True
            assert params["model"] == "svm" and "depth" not in params and vals["depth"] == []
        else:
            seen_forest = True
            assert params["model"] == 1 and params["depth"] == vals["depth"][0]
            assert isinstance(params["depth"], int)
    assert seen_svm and seen_forest


# -- order, points, early stopping ------------------------------------------------------------------


def test_out_of_order_completion_keeps_the_store_consistent(coordinator):
    fake = coordinator(parallelism=4, order="reverse")
    trials = Trials()
    best = run_study(trials, objective, SPACE, algo=tpe.suggest, max_evals=30, rstate=np.random.default_rng(5))
    evaluated = [e["tid"] for e in fake.only_study().evaluated]
    assert evaluated != sorted(evaluated)  # completions really came back out of order
    assert sorted(evaluated) == list(range(30))
    assert len(trials) == 30 and trials.tids == list(range(30))
    assert_consistent(trials)
    best_doc = min(trials.trials, key=lambda d: d["result"]["loss"])
    assert best == {k: v[0] for k, v in best_doc["misc"]["vals"].items() if v}


def test_points_to_evaluate_come_first(coordinator):
    fake = coordinator(parallelism=1)
    points = [{"x": 1.0, "c": 0}, {"x": -2.0, "c": 2}]
    wrapped = make_fmin(fmin)
    best = wrapped(objective, SPACE, algo=tpe.suggest, max_evals=10, points_to_evaluate=points,
                   rstate=np.random.default_rng(1))
    evaluated = fake.only_study().evaluated
    assert [e["vals"] for e in evaluated[:2]] == [{"x": [1.0], "c": [0]}, {"x": [-2.0], "c": [2]}]
    assert fake.only_study().open["priorTrials"] == 2
    # what serial hyperopt does with the same call: the points, then max_evals TPE points
    assert len(evaluated) == 12
    serial_trials = generate_trials_to_calculate(points)
    fmin(objective, SPACE, algo=tpe.suggest, max_evals=10, trials=serial_trials,
         rstate=np.random.default_rng(1), show_progressbar=False)
    assert [e["vals"] for e in evaluated] == [json_vals(d["misc"]["vals"]) for d in serial_trials.trials]
    assert best == {"x": 1.0, "c": 0} == serial_trials.argmin


def test_early_stop_fn_sees_only_finished_trials(coordinator):
    fake = coordinator(parallelism=4, order="reverse")
    stopper = no_progress_loss(5)
    calls = []

    def checked_stop(trials, *args):
        for doc in trials.trials:
            assert doc["state"] == base.JOB_STATE_DONE and "loss" in doc["result"]
        calls.append(len(trials.trials))
        return stopper(trials, *args)

    trials = RunnerTrials()
    fmin(lambda p: 1.0, SPACE, algo=tpe.suggest, max_evals=100, trials=trials,
         rstate=np.random.default_rng(0), early_stop_fn=checked_stop)
    assert calls == list(range(1, len(calls) + 1))  # once per finished trial, in completion order
    assert 6 <= trials.count_successful_trials() < 20
    assert messages(fake, "exhausted")[-1]["reason"] == "early_stop_fn"
    assert trials.fmin_cancelled_reason == "early stopping condition"


def test_early_stop_view_is_in_completion_order(coordinator):
    coordinator(parallelism=3, order="reverse")
    orders = []

    def record(trials, *args):
        orders.append([doc["tid"] for doc in trials.trials])
        return False, args

    run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=6, rstate=np.random.default_rng(0),
              early_stop_fn=record)
    assert orders[-1] == [2, 1, 0, 5, 4, 3]


# -- failures ------------------------------------------------------------------------------------------


def test_all_trials_fail_status(coordinator):
    coordinator(parallelism=2)
    with pytest.raises(AllTrialsFailed):
        run_study(Trials(), lambda p: {"status": "fail"}, SPACE, algo=rand.suggest, max_evals=4)
    with pytest.raises(AllTrialsFailed):  # the same objective, serially
        serial(lambda p: {"status": "fail"}, max_evals=4)


def broken(point):
    raise ValueError("bad x %.3f" % point["x"])


def test_all_trials_raise(coordinator):
    fake = coordinator(parallelism=2)
    trials = Trials()
    with pytest.raises(AllTrialsFailed, match="ValueError"):
        run_study(trials, broken, SPACE, algo=rand.suggest, max_evals=4)
    errors = [d for d in trials._dynamic_trials if d["state"] == base.JOB_STATE_ERROR]
    assert len(errors) == 4 and len(trials) == 0
    kind, detail = errors[0]["misc"]["error"]
    assert kind == "<class 'ValueError'>" and "Traceback" in detail and "bad x" in detail
    assert messages(fake, "close")[0]["error"].startswith("AllTrialsFailed")


def test_some_trials_raise_and_the_study_goes_on(coordinator):
    coordinator(parallelism=3)

    def sometimes(point):
        if point["c"] == 1:
            raise RuntimeError("c=1 is broken")
        return objective(point)

    trials = RunnerTrials()
    best = fmin(sometimes, SPACE, algo=rand.suggest, max_evals=20, trials=trials, rstate=np.random.default_rng(2))
    assert trials.count_failed_trials() > 0
    assert trials.count_successful_trials() + trials.count_failed_trials() == 20
    assert best["c"] != 1


def test_no_evaluation_tasks_like_hyperopt(coordinator):
    coordinator()
    with pytest.raises(Exception, match="There are no evaluation tasks"):
        run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=0)
    coordinator()
    assert run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=0, return_argmin=False) is None


def test_return_argmin_false_with_nested_choice(coordinator):
    coordinator(parallelism=1)
    space = {
        "model": hp.choice("model", [
            {"kind": "linear", "alpha": hp.loguniform("alpha", -5, 0)},
            {"kind": "tree", "depth": hp.choice("depth", [2, 4, 8]), "split": hp.uniform("split", 0, 1)},
        ]),
    }

    def score(point):
        model = point["model"]
        return model["alpha"] if model["kind"] == "linear" else model["split"] / model["depth"]

    got = run_study(Trials(), score, space, algo=tpe.suggest, max_evals=25, rstate=np.random.default_rng(11),
                    return_argmin=False)
    expected = fmin(score, space, algo=tpe.suggest, max_evals=25, trials=Trials(), rstate=np.random.default_rng(11),
                    return_argmin=False, show_progressbar=False)
    assert got == expected
    assert got["model"]["kind"] in ("linear", "tree")


# -- trials_save_file and resume ---------------------------------------------------------------------


def test_trials_save_file_is_written_and_loaded(coordinator, tmp_path):
    fake = coordinator(parallelism=2)
    path = str(tmp_path / "trials.pkl")
    wrapped = make_fmin(fmin)
    wrapped(objective, SPACE, algo=tpe.suggest, max_evals=6, trials_save_file=path, rstate=np.random.default_rng(0))
    with open(path, "rb") as handle:
        saved = pickle.load(handle)
    assert len(saved) == 6 and all(d["state"] == base.JOB_STATE_DONE for d in saved.trials)
    # a second call without trials continues from the file, as hyperopt does
    wrapped(objective, SPACE, algo=tpe.suggest, max_evals=9, trials_save_file=path, rstate=np.random.default_rng(1))
    second = fake.by_ordinal[1]
    assert second.open["priorTrials"] == 6
    assert [e["tid"] for e in second.evaluated] == [6, 7, 8]
    with open(path, "rb") as handle:
        assert len(pickle.load(handle)) == 9


def test_resume_inserts_finished_trials_and_never_sends_them(coordinator):
    resumed = [
        {"tid": 0, "state": "done", "vals": {"x": [0.5], "c": [0]}, "summary": {"status": "ok", "loss": 0.25},
         "result": P.dumps_blob({"loss": 0.25, "status": "ok"}), "startedAt": 1795843512000.0, "endedAt": 1795843513000.0},
        {"tid": 1, "state": "error", "vals": {"x": [4.0], "c": [1]},
         "error": {"type": "ValueError", "message": "bad x", "traceback": "Traceback ...\n"}},
        {"tid": 3, "state": "done", "vals": {"x": [1.0], "c": [2]}, "summary": {"status": "ok", "loss": 2.0}},
    ]
    fake = coordinator(parallelism=2, resume={0: resumed})
    trials = Trials()
    best = run_study(trials, objective, SPACE, algo=tpe.suggest, max_evals=8, rstate=np.random.default_rng(0))
    study = fake.only_study()
    sent = [t["tid"] for t in study.suggested]
    assert not {0, 1, 3} & set(sent)
    assert len(sent) == 6 and min(sent) == 4  # tids go on after the resumed ones
    by_tid = {d["tid"]: d for d in trials._dynamic_trials}
    assert by_tid[0]["state"] == base.JOB_STATE_DONE and by_tid[0]["result"] == {"loss": 0.25, "status": "ok"}
    assert by_tid[0]["misc"]["vals"] == {"x": [0.5], "c": [0]}
    assert by_tid[1]["state"] == base.JOB_STATE_ERROR
    assert by_tid[1]["misc"]["error"] == ("<class 'ValueError'>", "Traceback ...\n")
    assert by_tid[3]["result"] == {"status": "ok", "loss": 2.0}
    assert len(trials) == 8  # max_evals counts the resumed successes
    assert best == trials.argmin


def test_resumed_study_that_had_ended(coordinator):
    done = [{"tid": i, "state": "done", "vals": {"x": [float(i)], "c": [0]}, "summary": {"status": "ok", "loss": float(i)}}
            for i in range(3)]
    fake = coordinator(resume={0: done})
    best = run_study(Trials(), objective, SPACE, algo=tpe.suggest, max_evals=3)
    assert best == {"x": 0.0, "c": 0}
    assert fake.only_study().suggested == []


# -- the connection --------------------------------------------------------------------------------


def test_wrong_token_is_refused(coordinator):
    fake = coordinator(token_sent="00" * 32)
    with pytest.raises(CoordinatorLost, match="token"):
        run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=2)
    assert fake.refused and fake.refused[0]["token"] == "00" * 32
    assert fake.hellos == []


def test_without_a_coordinator_runner_trials_says_how_to_run(monkeypatch):
    for name in (_connection.ENV_ENDPOINT, _connection.ENV_TOKEN):
        monkeypatch.delenv(name, raising=False)
    _connection.reset()
    with pytest.raises(CoordinatorNotFound, match="hyperopt-runner run"):
        fmin(objective, SPACE, algo=rand.suggest, max_evals=2, trials=RunnerTrials())


def test_coordinator_lost_mid_study(coordinator):
    coordinator(parallelism=2, drop_after=3)
    with pytest.raises(CoordinatorLost):
        run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=20)


def test_timeout_cancels_like_spark_trials(coordinator):
    fake = coordinator(parallelism=2, end_after=(3, "timeout", "fmin run timeout"))
    trials = RunnerTrials(timeout=5)
    best = fmin(objective, SPACE, algo=rand.suggest, max_evals=50, trials=trials, rstate=np.random.default_rng(0))
    assert trials._fmin_cancelled and trials.fmin_cancelled_reason == "fmin run timeout"
    assert trials.count_successful_trials() == 3
    assert trials.count_cancelled_trials() >= 1
    cancelled = [d for d in trials._dynamic_trials if d["state"] == base.JOB_STATE_CANCEL]
    assert cancelled[0]["misc"]["error"] == ("<class 'Cancelled'>", "fmin run timeout")
    assert best in [{k: v[0] for k, v in d["misc"]["vals"].items()} for d in trials.trials]
    assert messages(fake, "close")[0]["bestLoss"] == pytest.approx(min(trials.losses()))


def test_fmin_calls_from_several_threads_share_the_connection(coordinator):
    fake = coordinator(parallelism=2)
    results = {}

    def run(name, seed):
        results[name] = run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=8,
                                  rstate=np.random.default_rng(seed))

    threads = [threading.Thread(target=run, args=(f"t{i}", i)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == ["t0", "t1", "t2"]
    assert len(fake.hellos) == 1
    assert sorted(st.ordinal for st in fake.studies.values()) == [0, 1, 2]
    assert len(fake.wait_for("close", 3)) == 3
    assert all(len(st.evaluated) == 8 and st.close is not None for st in fake.studies.values())


def test_algo_that_stops(coordinator):
    fake = coordinator(parallelism=2)
    budget = [3]

    def limited(new_ids, domain, trials, seed):
        if budget[0] <= 0:
            return []
        budget[0] -= 1
        return rand.suggest(new_ids[:1], domain, trials, seed)

    trials = Trials()
    run_study(trials, objective, SPACE, algo=limited, max_evals=50)
    assert len(trials) == 3
    assert messages(fake, "exhausted")[0]["reason"] == "algo_stopped"
    assert fake.only_study().open["algo"].endswith("limited")


# -- unpicklable objectives ---------------------------------------------------------------------------

USER_SCRIPT = """
import threading
LOCK = threading.Lock()

def locked_objective(point):
    with LOCK:
        return point["x"] ** 2
"""


def script_function(source, name, filename="train.py"):
    """A function defined the way a script's are: in a module cloudpickle cannot import, so it
    pickles the function by value, with the globals it uses."""
    namespace = {"__name__": "not_importable_script"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def test_unpicklable_objective_is_fatal_and_names_the_object(coordinator):
    fake = coordinator()
    with pytest.raises(SystemExit) as exit_info:
        run_study(Trials(), script_function(USER_SCRIPT, "locked_objective"), SPACE, algo=rand.suggest, max_evals=3)
    assert exit_info.value.code == 2
    assert fake.studies == {}
    fatal = messages(fake, "fatal")[0]
    assert fatal["code"] == "objective_not_picklable"
    message = fatal["message"]
    assert message == (
        "the objective cannot be pickled: it refers to <_thread.lock object> (global 'LOCK' in train.py); "
        "create it inside the objective instead"
    )


def test_unpicklable_closure_variable_is_named(coordinator):
    fake = coordinator()
    guard = threading.RLock()

    def guarded(point):
        with guard:
            return point["x"]

    with pytest.raises(SystemExit):
        run_study(Trials(), guarded, SPACE, algo=rand.suggest, max_evals=3)
    message = messages(fake, "fatal")[0]["message"]
    assert "<_thread.RLock object>" in message
    assert "closure variable 'guard' of test_unpicklable_closure_variable_is_named.<locals>.guarded() in test_driver.py" in message


def test_nan_losses_are_carried(coordinator):
    fake = coordinator()

    def sometimes_nan(point):
        return math.nan if point["c"] == 0 else point["x"] ** 2

    trials = Trials()
    run_study(trials, sometimes_nan, SPACE, algo=rand.suggest, max_evals=10, rstate=np.random.default_rng(4))
    assert any(math.isnan(loss) for loss in trials.losses())
    best = messages(fake, "close")[0]["bestLoss"]
    assert best == pytest.approx(min(loss for loss in trials.losses() if not math.isnan(loss)))


def test_max_queue_len_asks_the_algorithm_for_a_batch(coordinator):
    fake = coordinator(parallelism=1)
    trials = Trials()
    run_study(trials, objective, SPACE, algo=rand.suggest, max_evals=7, max_queue_len=3,
              rstate=np.random.default_rng(8))
    assert fake.only_study().open["maxQueueLen"] == 3
    sizes = [len(m["trials"]) for m in messages(fake, "trials")]
    assert sizes[0] == 3 and sum(sizes) == 7
    assert trials.tids == list(range(7))
    # a serial run with the same max_queue_len draws the same first batch
    serial_trials = Trials()
    fmin(objective, SPACE, algo=rand.suggest, max_evals=7, max_queue_len=3, trials=serial_trials,
         rstate=np.random.default_rng(8), show_progressbar=False)
    assert [d["misc"]["vals"] for d in trials.trials[:3]] == [d["misc"]["vals"] for d in serial_trials.trials[:3]]


def test_infinite_timeout_is_no_timeout(coordinator):
    fake = coordinator()
    run_study(Trials(), objective, SPACE, algo=rand.suggest, max_evals=1, timeout=math.inf)
    assert fake.only_study().open["timeout"] is None
