"""Hyperopt semantics that must hold through the runner."""
import json
import time

from conftest import HERE, serial_reference  # noqa: F401

SCRIPTS = HERE / "scripts"


def sequence(output: str) -> dict:
    line = next(l for l in output.splitlines() if l.startswith("SEQUENCE "))
    return json.loads(line[len("SEQUENCE "):])


def test_parallelism_one_with_a_fixed_seed_equals_a_serial_run(runner):
    import subprocess
    from conftest import PYTHON

    serial = subprocess.run([str(PYTHON), str(SCRIPTS / "seeded.py"), "25"], capture_output=True, text=True, check=True)
    result = runner.run(SCRIPTS / "seeded.py", "25", executor="local:1")
    assert result.returncode == 0, result.stderr
    assert sequence(result.stdout) == sequence(serial.stdout)


def test_timeout_returns_within_the_deadline_plus_a_margin(runner):
    result = runner.run(SCRIPTS / "sleepy.py", "100", "1", "4", executor="local:4")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("FMIN_RETURNED"))
    elapsed = float(line.split()[2].rstrip("s"))
    assert 3.5 < elapsed < 4 + 1.5, line
    study = result.summary[0]
    assert study["state"] == "timeout"
    assert study["trials"]["cancelled"] >= 1


def test_timeout_ends_a_study_of_instant_trials(runner):
    # Suggestions are always in flight here: points that answer a request made before the
    # timeout must be cancelled and the study must still end, not wait for them forever.
    result = runner.run(SCRIPTS / "instant.py", "3", executor="local:4", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "FMIN_RETURNED" in result.stdout
    study = result.summary[0]
    assert study["state"] == "timeout"
    assert study["trials"]["ok"] > 0


def test_cli_timeout_applies_to_every_study(runner):
    started = time.monotonic()
    result = runner.run(SCRIPTS / "sleepy.py", "100", "1", "0", executor="local:2", extra=("--timeout", "2"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    assert result.summary[0]["state"] == "timeout"


def test_trial_timeout_kills_slow_trials_and_marks_them_failed(runner):
    result = runner.run(SCRIPTS / "mixed_speed.py", executor="local:4", extra=("--trial-timeout", "2"))
    assert result.returncode == 0, result.stderr
    assert "FMIN_RETURNED" in result.stdout
    ends = [r for r in result.study_records() if r["k"] == "end"]
    slow = [r for r in ends if r["state"] == "error"]
    assert slow and {r["error"]["type"] for r in slow} == {"TrialTimeout"}
    assert len(ends) == 8 and all(r["state"] in ("done", "error") for r in ends)
