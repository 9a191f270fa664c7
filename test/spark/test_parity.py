"""Real SparkTrials (pyspark in local[2], in .tools/spark-venv) against the same script under
hyperopt-runner in the same venv: the records a user's code reads after fmin, field by field.
The differences kept on purpose are listed in docs/migrating-from-sparktrials.md and named here."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPARK_PYTHON = ROOT / ".tools" / "spark-venv" / "bin" / "python"
SCRIPT = Path(__file__).resolve().parent / "parity_study.py"
CLI = ROOT / "bin" / "hyperopt-runner.js"

if not SPARK_PYTHON.exists():
    pytest.fail("the Spark venv is missing: run scripts/setup-spark.sh (scripts/test.sh does)", pytrace=False)


def tagged(tag: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"HR_PARITY_TAG={tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def run(command: list[str], env: dict) -> dict:
    tag = uuid.uuid4().hex
    done = subprocess.run(command, cwd=ROOT, env={**env, "HR_PARITY_TAG": tag}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    deadline = time.monotonic() + 10
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tagged(tag), f"left running: {tagged(tag)}"
    line = next(l for l in done.stdout.splitlines() if l.startswith("PARITY "))
    return json.loads(line[len("PARITY "):])


@pytest.fixture(scope="module")
def both():
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HYPEROPT_RUNNER", "MLFLOW_", "PYSPARK"))}
    spark_env = {
        **base,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": str(SPARK_PYTHON),
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false "
        "--conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 pyspark-shell",
    }
    spark = run([str(SPARK_PYTHON), str(SCRIPT)], spark_env)
    journal = tempfile.mkdtemp(prefix="hr-parity-")
    try:
        ours = run(["node", str(CLI), "run", str(SCRIPT), "--executor", "local:2", "--python", str(SPARK_PYTHON),
                    "--no-tracking", "--quiet", "--journal-dir", journal], base)
    finally:
        shutil.rmtree(journal, ignore_errors=True)
    return spark, ours


SAME = ["type", "parallelism", "counts", "trials", "tids", "states", "trial_keys", "misc_keys", "ok_result_keys",
        "failed_result", "failed_error_type", "failed_error_has_message", "results", "best_trial_keys", "argmin", "best", "cancelled_reason"]


def test_a_study_gives_the_same_records_as_real_sparktrials(both):
    spark, ours = both
    for field in SAME:
        assert ours["plain"][field] == spark["plain"][field], (field, spark["plain"][field], ours["plain"][field])
    assert ours["plain"]["failed_error_type"] == "<class 'ValueError'>"


def test_a_timeout_cancels_the_running_trials_as_real_sparktrials_does(both):
    spark, ours = both
    for result in (spark["timeout"], ours["timeout"]):
        assert result["cancelled_reason"] == "fmin run timeout"
        assert result["counts"]["cancelled"] >= 1 and result["counts"]["failed"] == 0
        assert result["counts"]["total"] == result["counts"]["ok"] + result["counts"]["cancelled"]
        assert result["trials"] == result["counts"]["ok"]
    for field in ("type", "parallelism", "states", "trial_keys", "misc_keys", "ok_result_keys"):
        assert ours["timeout"][field] == spark["timeout"][field], field
    # How many trials finish by the deadline is each engine's speed: Spark starts its tasks later.
    assert ours["timeout"]["counts"]["ok"] >= spark["timeout"]["counts"]["ok"]
