"""Databricks-style scripts (samples/databricks) through the real CLI, in a venv without pyspark,
tracked on a real `mlflow server`: the shapes and counts SparkTrials documents, and the runs."""
import json

import pytest

from conftest import SAMPLES
from test_mlflow import children, metrics, params, server, tags  # noqa: F401 - server is a fixture

DATABRICKS = SAMPLES / "databricks"


def reports(stdout: str) -> dict:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {line.get("name", "active_run"): line for line in lines}


def journal_info(result, index: int) -> dict:
    return next(r for r in result.study_records(index) if r["k"] == "study")["study"]


def test_the_forms_of_sparktrials_code_run_unmodified_and_are_tracked(runner, server):
    with pytest.raises(ImportError):
        __import__("pyspark")  # the premise: this venv has no pyspark
    result = runner.run(DATABRICKS / "sparktrials_forms.py", executor="local:2", extra=("--tracking-uri", server.uri))
    assert result.returncode == 0, result.stderr
    got = reports(result.stdout)
    expected_totals = {"no_arguments": 12, "alias_parallelism_timeout": 10, "first_model": 6, "second_model": 8}
    for name, total in expected_totals.items():
        study = got[name]
        assert study["type"] == "SparkTrials"
        assert study["total"] == study["trials"] == study["results"] == total, study
        assert study["ok"] + study["failed"] == total and study["cancelled"] == 0
        assert study["argmin"] == study["best"] == ["kind", "x"]
        assert study["cancelled_reason"] is None
    # loss_threshold ends the study at the first trial at or below it (plus the one running beside it).
    threshold = got["loss_threshold"]
    assert 1 <= threshold["total"] < 200 and threshold["best_loss"] <= 4.0

    assert len(result.summary) == 5
    infos = [journal_info(result, i) for i in range(5)]
    # SparkTrials() asked for nothing: the slots decide; the others asked for 2 on 2 slots.
    assert [(i["parallelism"], i["parallelismSource"], i["requestedParallelism"]) for i in infos] == [
        (2, "slots", None), (2, "script", 2), (2, "script", 2), (2, "script", 2), (2, "script", 2),
    ]

    # The first three studies: a parent run each, created and ended by the runner.
    for index, total in ((0, 12), (1, 10)):
        study = result.summary[index]["study"]
        [parent] = server.runs(f"tags.`hyperopt_runner.study_id` = '{study}'")
        assert parent["info"]["status"] == "FINISHED"
        assert tags(parent)["runSource"] == "hyperoptAutoTracking"
        assert params(parent)["actual_parallelism"] == "2"
        assert len(children(server, parent["info"]["run_id"])) == total
    # The two fmin calls in one active run: both studies under it, the conflicting max_evals suffixed.
    active = got["active_run"]["active_run"]
    [outer] = server.runs(f"attributes.run_id = '{active}'")
    assert outer["info"]["status"] == "FINISHED" and outer["info"]["run_name"] == "two_models"
    kids = children(server, active)
    assert len(kids) == 6 + 8
    assert {tags(k)["fmin_uuid"] for k in kids} == {result.summary[3]["study"], result.summary[4]["study"]}
    outer_params = params(outer)
    # The study whose params reach MLflow first keeps the name (they are written off the trials'
    # path, so either may); the other's differing value gets its study's suffix.
    first, second = (result.summary[i]["study"].split("-")[-1] for i in (3, 4))
    assert outer_params in (
        {**outer_params, "max_evals": "6", f"max_evals_{second}": "8"},
        {**outer_params, "max_evals": "8", f"max_evals_{first}": "6"},
    ), outer_params
    assert all("loss" in metrics(k) and tags(k)["trial_status"] == "ok" for k in kids if k["info"]["status"] == "FINISHED")


def test_the_runs_parallelism_wins_over_the_scripts_and_the_slots_bound_it(runner, tmp_path):
    script = tmp_path / "asks_for_four.py"
    script.write_text(
        "from hyperopt import SparkTrials, fmin, hp, rand\n"
        "trials = SparkTrials(parallelism=4)\n"
        "fmin(lambda x: x, hp.uniform('x', 0, 1), algo=rand.suggest, max_evals=4, trials=trials)\n"
        "print('ACTUAL', trials.actual_parallelism)\n"
    )
    overridden = runner.run(script, executor="local:2", extra=("--parallelism", "1"))
    assert overridden.returncode == 0, overridden.stderr
    assert "parallelism 1 (the run's option) is used instead of the script's 4" in overridden.stderr
    info = journal_info(overridden, 0)
    assert (info["parallelism"], info["parallelismSource"], info["requestedParallelism"]) == (1, "option", 4)
    assert "ACTUAL 1" in overridden.stdout

    lowered = runner.run(script, executor="local:2")
    assert lowered.returncode == 0, lowered.stderr
    assert lowered.stderr.count("the script asks for parallelism 4, but the executors have 2 slots: 2 trials run at once") == 1
    info = journal_info(lowered, 0)
    assert (info["parallelism"], info["parallelismSource"], info["requestedParallelism"]) == (2, "slots", 4)
    assert "ACTUAL 2" in lowered.stdout


def test_a_databricks_notebook_style_script_logs_the_objectives_metrics_in_its_trial_runs(runner, server):
    result = runner.run(DATABRICKS / "tune_gbm.py", executor="local:2", extra=("--tracking-uri", server.uri), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trials: 16 total, 16 succeeded, 0 failed, 0 cancelled" in result.stdout
    [outer] = server.runs("attributes.run_name = 'gbm_tuning'")
    kids = children(server, outer["info"]["run_id"])
    assert len(kids) == 16
    assert all(0.5 < metrics(k)["cv_accuracy"] <= 1.0 and metrics(k)["loss"] == -metrics(k)["cv_accuracy"] for k in kids), [metrics(k) for k in kids]
