"""Faults: a worker killed mid-trial, the driver killed mid-study."""
import json
import os
import signal
from pathlib import Path

from conftest import HERE, tagged_pids, wait_for

SCRIPTS = HERE / "scripts"


def test_a_worker_killed_mid_trial_is_replaced_and_the_study_completes(runner, tmp_path):
    result = runner.run(SCRIPTS / "suicidal_worker.py", str(tmp_path / "marker"), executor="local:3")
    assert result.returncode == 0, result.stderr
    assert "DONE" in result.stdout
    study = result.summary[0]
    assert study["trials"]["ok"] == 12
    records = result.study_records()
    assert any(r["k"] == "requeue" for r in records)


def test_resume_after_the_driver_is_killed_runs_no_finished_trial_twice(runner, tmp_path):
    log = tmp_path / "evaluations.log"
    proc = runner.start(SCRIPTS / "logged.py", str(log), executor="local:3")

    def done_count() -> int:
        journals = list(runner.journal_dir.glob("*.jsonl")) if runner.journal_dir.exists() else []
        return sum(p.read_text().count('"state":"done"') for p in journals)

    wait_for(lambda: done_count() >= 6, what="six finished trials")
    drivers = [pid for pid, cmd in tagged_pids(runner.tag) if "hyperopt_runner.launch" in cmd]
    assert len(drivers) == 1
    os.kill(drivers[0], signal.SIGKILL)
    first = runner.finish(proc, timeout=60)
    assert first.returncode == 128 + signal.SIGKILL
    journal = next(runner.journal_dir.glob("*.jsonl"))
    finished_before = [l for l in journal.read_text().splitlines() if '"state":"done"' in l]
    evaluated_before = log.read_text().splitlines()

    listing = runner.cli("studies", "--journal-dir", str(runner.journal_dir), "--json")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    assert [s["study"] for s in listed] == [journal.stem] and listed[0]["state"] == "interrupted"
    text = runner.cli("studies", "--journal-dir", str(runner.journal_dir))
    assert journal.stem in text.stdout and "interrupted" in text.stdout

    resumed = runner.cli("resume", journal.stem, "--journal-dir", str(runner.journal_dir), "--summary-json", str(tmp_path / "resumed.json"), "--no-tracking")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "resumed.json").read_text())
    assert summary[0]["study"] == journal.stem
    assert summary[0]["state"] == "max_evals"
    assert summary[0]["trials"]["ok"] == 24
    evaluations = log.read_text().splitlines()
    # Points finished before the kill were never evaluated again.
    assert len(evaluations) - len(evaluated_before) <= 24 - len(finished_before)
    assert len(set(evaluations[: len(evaluated_before)]) & set(evaluations[len(evaluated_before):])) == 0


def test_a_study_whose_runner_was_killed_is_listed_as_interrupted(runner):
    proc = runner.start(SCRIPTS / "sleepy.py", "40", "0.5", "0", executor="local:2")
    journal_dir = runner.journal_dir
    wait_for(lambda: journal_dir.exists() and any('"state":"done"' in p.read_text() for p in journal_dir.glob("*.jsonl")), what="a finished trial")
    # The coordinator itself dies: nothing is left to write the study's end.
    proc.kill()
    runner.finish(proc, timeout=30)
    wait_for(lambda: not tagged_pids(runner.tag), timeout=10, what="the study's processes to exit")
    journal = next(journal_dir.glob("*.jsonl"))
    assert '"state":"ended"' not in journal.read_text()

    listing = runner.cli("studies", "--journal-dir", str(journal_dir), "--json")
    assert listing.returncode == 0, listing.stderr
    assert [(s["study"], s["state"]) for s in json.loads(listing.stdout)] == [(journal.stem, "interrupted")]
    text = runner.cli("studies", "--journal-dir", str(journal_dir))
    assert text.returncode == 0, text.stderr
    assert text.stdout.split()[:2] == [journal.stem, "interrupted"]


def test_a_study_whose_every_slot_is_retired_ends_with_a_reason(runner, tmp_path):
    import stat

    from conftest import PYTHON

    # Spawned workers (no fork server): the wrapper sees each worker's own command line.
    runner.env["HYPEROPT_RUNNER_FORK"] = "0"
    marker = tmp_path / "poisoned"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *hyperopt_runner.worker*) [ -e "{marker}" ] && {{ echo "worker: device lost" >&2; exit 3; }};; esac\n'
        f'exec "{PYTHON}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    result = runner.run(SCRIPTS / "poisoned_workers.py", str(marker), executor="local:1", extra=("--python", str(wrapper)), timeout=120)
    assert "FMIN_RAISED" in result.stdout, result.stderr
    assert "every slot of local:1 was retired" in result.stderr
    assert result.summary[0]["state"] == "failed"
