"""Stop, Cancel and Ctrl+C from the terminal."""
import os
import signal
import subprocess
import time

import pytest
from conftest import HERE, PYTHON, ROOT, tagged_pids, wait_for

SCRIPTS = HERE / "scripts"


def started_trials(runner) -> int:
    return sum(p.read_text().count('"k":"start"') for p in runner.journal_dir.glob("*.jsonl")) if runner.journal_dir.exists() else 0


def test_one_ctrl_c_stops_running_trials_finish(runner):
    proc = runner.start(SCRIPTS / "sleepy.py", "40", "1.5", "0", executor="local:2")
    wait_for(lambda: started_trials(runner) >= 2, what="two trials running")
    proc.send_signal(signal.SIGINT)
    result = runner.finish(proc)
    assert result.returncode == 0, result.stderr
    assert "FMIN_RETURNED" in result.stdout
    study = result.summary[0]
    assert study["state"] == "stopped"
    ends = [r for r in result.study_records() if r["k"] == "end"]
    # The trials that were running when Stop came finished normally.
    assert sum(1 for r in ends if r["state"] == "done") >= 2
    assert all(r["state"] != "cancel" or "startedAt" not in r for r in ends)


def finished_trials(runner) -> int:
    return sum(p.read_text().count('"state":"done"') for p in runner.journal_dir.glob("*.jsonl")) if runner.journal_dir.exists() else 0


def test_two_ctrl_c_cancel_running_trials(runner):
    # Two trials finish first, so fmin has an argmin to return after the cancel.
    proc = runner.start(SCRIPTS / "sleepy.py", "40", "2", "0", executor="local:2")
    wait_for(lambda: finished_trials(runner) >= 2 and started_trials(runner) >= 4, what="two trials done, two running")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    result = runner.finish(proc, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "FMIN_RETURNED" in result.stdout
    assert result.summary[0]["state"] == "cancelled"
    assert result.summary[0]["trials"]["cancelled"] >= 2
    ends = [r for r in result.study_records() if r["k"] == "end" and r["state"] == "cancel"]
    # The running trials were killed, not left to finish.
    assert sum(1 for r in ends if "startedAt" in r) >= 2


# The script forked from the fork server, and spawned on its own (HYPEROPT_RUNNER_FORK=0).
@pytest.mark.parametrize("fork", ["1", "0"])
def test_three_ctrl_c_end_the_script(runner, fork):
    # Trials that never finish and a script that would go on: the third Ctrl+C ends it.
    runner.env["HYPEROPT_RUNNER_FORK"] = fork
    proc = runner.start(SCRIPTS / "sleepy.py", "40", "30", "0", executor="local:2")
    wait_for(lambda: started_trials(runner) >= 2, what="two trials running")
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    result = runner.finish(proc, timeout=30)
    assert result.returncode != 0 or "FMIN_RETURNED" in result.stdout


def opened_studies(runner) -> int:
    return len(list(runner.journal_dir.glob("*.jsonl"))) if runner.journal_dir.exists() else 0


def test_ctrl_c_after_the_script_started_but_before_fmin_stops_the_study_as_it_opens(runner):
    # The script takes 3 s before fmin: the Ctrl+C comes once it runs, before its study exists.
    proc = runner.start(SCRIPTS / "sleepy.py", "20", "0.2", "0", "3", executor="local:2")
    assert proc.stdout.readline().strip() == "SCRIPT_STARTED"
    assert opened_studies(runner) == 0, "the study opened before the Ctrl+C"
    proc.send_signal(signal.SIGINT)
    result = runner.finish(proc, timeout=60)
    assert "no study is open yet: it ends as soon as it opens" in result.stderr
    assert result.summary[0]["state"] == "stopped", result.stderr
    assert started_trials(runner) == 0
    # hyperopt's own answer for an fmin that evaluated nothing: the script saw the stop.
    assert "There are no evaluation tasks" in result.stderr
    assert "FMIN_RETURNED" not in result.stdout


def python_started(runner) -> bool:
    # The interpreter itself (the runner's own command line names the script's folder, test/python).
    return any(cmd.split(" ", 1)[0].rsplit("/", 1)[-1].startswith("python") for _, cmd in tagged_pids(runner.tag))


@pytest.mark.parametrize("when", ["before the script", "before fmin"])
def test_sigterm_during_start_up_ends_the_command_with_nothing_left(runner, when):
    proc = runner.start(SCRIPTS / "sleepy.py", "20", "0.2", "0", "3", executor="local:2")
    if when == "before the script":
        # The runner's interpreter is starting (hyperopt importing): the script has not.
        wait_for(lambda: python_started(runner), what="the interpreter started")
    else:
        assert proc.stdout.readline().strip() == "SCRIPT_STARTED"
    proc.send_signal(signal.SIGTERM)
    result = runner.finish(proc, timeout=30)
    assert result.returncode == 143, (result.returncode, result.stderr)
    assert started_trials(runner) == 0
    assert "FMIN_RETURNED" not in result.stdout
    if when == "before the script":
        assert "nothing ran" in result.stderr, result.stderr


@pytest.mark.parametrize("fork", ["1", "0"])
@pytest.mark.parametrize("to", ["group", "runner"])
def test_ctrl_c_while_the_interpreter_is_checked_ends_the_run(runner, tmp_path, fork, to):
    # An interpreter slow to start (a cold network file system, say): Ctrl+C comes while it is checked.
    runner.env["HYPEROPT_RUNNER_FORK"] = fork
    started = tmp_path / "started"
    slow = tmp_path / "python"
    slow.write_text(
        f"#!{PYTHON}\nimport os, sys, time\nopen({str(started)!r}, 'a').close()\ntime.sleep(20)\n"
        f"os.execv({str(PYTHON)!r}, [{str(PYTHON)!r}, *sys.argv[1:]])\n"
    )
    slow.chmod(0o755)
    # A session of its own: signalling its group is what a terminal's Ctrl+C does (the interpreter gets it too).
    proc = subprocess.Popen(
        runner.command(SCRIPTS / "chatty.py", extra=("--python", str(slow))),
        cwd=ROOT, env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    wait_for(started.exists, what="the interpreter started")
    if to == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    result = runner.finish(proc, timeout=10)
    assert time.monotonic() - interrupted < 5
    assert result.returncode == 130
    assert result.stderr.splitlines() == ["hyperopt-runner: error: interrupted before the script started, so nothing ran; run the command again to start it"]
    assert result.stdout == ""
