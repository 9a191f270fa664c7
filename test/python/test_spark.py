"""SparkTrials under the launcher: the class in hyperopt's place, its arguments with SparkTrials'
meaning, and the object afterwards as SparkTrials leaves it. The in-test coordinator stands in
for the real one here; test/python/e2e/test_sparktrials.py runs the same scripts through the CLI."""

import json

import pytest
from test_launch import HEADER, fake, launch, line_of  # noqa: F401 - the fixture

RESULT = """
print("RESULT", json.dumps({
    "type": type(trials).__name__,
    "counts": [trials.count_successful_trials(), trials.count_failed_trials(), trials.count_cancelled_trials(), trials.count_total_trials()],
    "trials": len(trials.trials),
    "results": len(trials.results),
    "best_loss": trials.best_trial["result"]["loss"],
    "argmin": sorted(trials.argmin),
    "parallelism": trials.parallelism,
    "user_specified_parallelism": trials.user_specified_parallelism,
    "actual_parallelism": trials.actual_parallelism,
    "str": str(trials)[:12],
}))
"""


def result_of(done):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.split("RESULT", 1)[1])


@pytest.mark.parametrize("imports", [
    "from hyperopt import SparkTrials",
    "from hyperopt.spark import SparkTrials",
    "import hyperopt\nSparkTrials = hyperopt.SparkTrials",
    "from hyperopt import SparkTrials as DatabricksTrials\nSparkTrials = DatabricksTrials",
])
def test_every_import_form_gets_the_runner_class_without_pyspark(tmp_path, fake, imports):
    _, done = launch(tmp_path, HEADER + imports + """
from hyperopt import fmin
trials = SparkTrials(parallelism=2, timeout=600)
best = fmin(objective, SPACE, algo=rand.suggest, max_evals=6, trials=trials, rstate=np.random.default_rng(0))
""" + RESULT, fake)
    got = result_of(done)
    assert got["type"] == "SparkTrials" and got["str"] == "SparkTrials("
    assert got["counts"] == [6, 0, 0, 6] and got["trials"] == got["results"] == 6
    assert got["argmin"] == ["k", "x"]
    assert got["parallelism"] == 2 and got["actual_parallelism"] == 2
    opened = fake.only_study().open
    assert opened["parallelism"] == 2 and opened["timeout"] == 600
    assert "pyspark" not in done.stderr


def test_no_arguments_leaves_parallelism_to_the_executors(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import fmin, SparkTrials
trials = SparkTrials()
fmin(objective, SPACE, algo=rand.suggest, max_evals=4, trials=trials)
""" + RESULT, fake)
    got = result_of(done)
    assert got["parallelism"] is None and got["user_specified_parallelism"] is None
    assert got["actual_parallelism"] == 2  # the fake coordinator's slots
    assert fake.only_study().open["parallelism"] is None
    assert fake.wait_for("notice", 0) == []


@pytest.mark.parametrize("given,sent,notice", [
    ("0", None, "SparkTrials(parallelism=0): not a positive number, so the executors' slot count is used"),
    ("-3", None, "SparkTrials(parallelism=-3): not a positive number"),
    ("500", 128, "SparkTrials(parallelism=500): capped at 128, as SparkTrials caps it"),
    ("4.0", 4, None),
])
def test_parallelism_follows_sparktrials_rules_with_one_notice(tmp_path, fake, given, sent, notice):
    _, done = launch(tmp_path, HEADER + f"""
from hyperopt import fmin, SparkTrials
trials = SparkTrials(parallelism={given})
fmin(objective, SPACE, algo=rand.suggest, max_evals=3, trials=trials)
fmin(objective, SPACE, algo=rand.suggest, max_evals=6, trials=trials)
""" + RESULT, fake)
    got = result_of(done)
    assert got["counts"][3] == 6
    assert all(st.open["parallelism"] == sent for st in fake.studies.values())
    notices = [m["message"] for m in fake.received if m["type"] == "notice"]
    if notice is None:
        assert notices == []
    else:
        assert len(notices) == 1 and notices[0].startswith(notice), notices


@pytest.mark.parametrize("given", ["2.5", "'4'", "True", "[2]"])
def test_a_parallelism_that_is_not_a_whole_number_is_one_line(tmp_path, fake, given):
    script, done = launch(tmp_path, HEADER + f"""
from hyperopt import fmin, SparkTrials
trials = SparkTrials(parallelism={given})
""", fake)
    assert done.returncode == 1
    line = line_of(script, "trials = SparkTrials(")
    assert done.stderr.strip().splitlines() == [
        f"{script}:{line}: SparkTrials(parallelism={eval(given)!r}): parallelism must be a whole number or None"
    ]
    assert fake.studies == {}


def test_spark_session_and_resource_profile_are_ignored_with_a_notice_each(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import fmin, SparkTrials
class Session:
    pass
trials = SparkTrials(parallelism=2, spark_session=Session(), resource_profile=object())
fmin(objective, SPACE, algo=rand.suggest, max_evals=3, trials=trials)
""" + RESULT, fake)
    assert result_of(done)["counts"] == [3, 0, 0, 3]
    notices = [m["message"] for m in fake.received if m["type"] == "notice"]
    assert len(notices) == 2
    assert notices[0].startswith("SparkTrials(spark_session=...): ignored")
    assert notices[1].startswith("SparkTrials(resource_profile=...): ignored")


def test_timeout_and_loss_threshold_keep_their_meaning(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import fmin, SparkTrials
trials = SparkTrials(parallelism=2, timeout=30, loss_threshold=0.5)
fmin(objective, SPACE, algo=rand.suggest, max_evals=5, trials=trials, timeout=99)
""" + RESULT, fake)
    assert result_of(done)["counts"][3] == 5
    opened = fake.only_study().open
    # The Trials' timeout wins over fmin's, as SparkTrials has it; the threshold reaches the study.
    assert opened["timeout"] == 30 and opened["lossThreshold"] == 0.5
    assert "Timeout param was defined in Trials object, ignoring fmin definition" in done.stderr


def test_a_bad_timeout_is_refused_as_sparktrials_refuses_it(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import SparkTrials
SparkTrials(timeout=-5)
""", fake)
    assert done.returncode == 1
    assert "timeout" in done.stderr and fake.studies == {}


@pytest.mark.parametrize("kind, keys, stored", [
    # A serial run moves them into trials.attachments; SparkTrials has none and keeps them.
    ("Trials", ["loss", "status"], 3),
    ("SparkTrials", ["attachments", "loss", "status"], 0),
])
def test_result_attachments_go_where_each_trials_class_keeps_them(tmp_path, fake, kind, keys, stored):
    _, done = launch(tmp_path, HEADER + f"""
from hyperopt import fmin, SparkTrials
def attaching(p):
    return {{"loss": p["x"], "status": "ok", "attachments": {{"note": "x=%s" % p["x"]}}}}
trials = {kind}()
fmin(attaching, SPACE, algo=rand.suggest, max_evals=3, trials=trials)
notes = [trials.attachments["ATTACH::%s::note" % t["tid"]] for t in trials.trials] if {stored} else []
print("RESULT", json.dumps({{"keys": [sorted(r) for r in trials.results], "stored": len(trials.attachments), "notes": notes}}))
""", fake)
    got = result_of(done)
    assert got["keys"] == [keys] * 3 and got["stored"] == stored
    assert all(note.startswith("x=") for note in got["notes"]) and len(got["notes"]) == stored
