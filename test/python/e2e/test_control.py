"""Stop, Cancel and Ctrl+C from the terminal."""
import os
import signal
import subprocess
import time

import pytest
from conftest import HERE, PYTHON, ROOT, wait_for

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
