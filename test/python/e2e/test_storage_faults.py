"""The journal's storage failing: a read-only folder refused before anything runs, a disk that fills
up mid-study. Real file systems: a tmpfs mounted (as root, as the test command runs) for each test."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import HERE, tagged_pids

SCRIPTS = HERE / "scripts"


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True)


@pytest.fixture
def journal_disk(runner):
    """The runner's journal folder on a tmpfs of its own; `remount(options)` changes it; unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the journal needs root (the test command runs as root)")
    mounted = []

    def mount(options: str) -> Path:
        mount_tmpfs(runner.journal_dir, options)
        mounted.append(runner.journal_dir)
        return runner.journal_dir

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(runner.journal_dir)], check=True, capture_output=True)

    mount.remount = remount
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def no_node_trace(stderr: str) -> bool:
    return "node:internal" not in stderr and "\n    at " not in stderr and "Error: " not in stderr.replace("hyperopt-runner: ", "")


def test_a_read_only_journal_folder_is_refused_before_the_script_starts(runner, journal_disk, tmp_path):
    folder = journal_disk("size=1m")
    journal_disk.remount("ro")
    marker = tmp_path / "started"
    result = runner.run(SCRIPTS / "printing_study.py", "8", str(marker), executor="local:2", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"hyperopt-runner: error: cannot write to the journal folder {folder} (a read-only file system), so no study could be kept or resumed; "
                     "make it writable or pass --journal-dir a writable folder (the journal directory setting in the editor)"], result.stderr
    assert not marker.exists(), "the script never ran"
    assert tagged_pids(runner.tag) == []


def test_a_journal_folder_on_a_full_disk_is_refused_before_the_script_starts(runner, journal_disk, tmp_path):
    folder = journal_disk("size=64k")
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"x" * 4096) > 0:
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    marker = tmp_path / "started"
    result = runner.run(SCRIPTS / "printing_study.py", "8", str(marker), executor="local:2", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"hyperopt-runner: error: cannot write to the journal folder {folder} (no space left)"), result.stderr
    assert not marker.exists() and not any(folder.glob("*.jsonl"))
    assert tagged_pids(runner.tag) == []


def test_a_disk_that_fills_up_mid_study_cancels_it_keeps_what_finished_and_resume_continues(runner, journal_disk, tmp_path):
    folder = journal_disk("size=160k")
    marker = tmp_path / "started"
    result = runner.run(SCRIPTS / "printing_study.py", "400", str(marker), executor="local:2", timeout=240)
    assert result.returncode == 2, result.stderr[-3000:]
    assert no_node_trace(result.stderr), result.stderr[-3000:]
    faults = [line for line in result.stderr.splitlines() if "could not write" in line]
    assert len(faults) == 1, result.stderr[-3000:]
    assert "(no space left on the device), so the study was cancelled" in faults[0]
    assert faults[0].startswith(f"hyperopt-runner: error: could not write {folder}/")
    # fmin returned what finished; the journal holds the trials finished before the fault, whole.
    returned = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("FINISHED "))[len("FINISHED "):])
    assert 0 < len(returned) < 400, len(returned)
    journal = next(folder.glob("*.jsonl"))
    records = [json.loads(line) for line in journal.read_text().splitlines()]  # every line whole
    journalled = {r["tid"] for r in records if r["k"] == "end" and r["state"] == "done"}
    assert journalled and journalled <= set(returned), (sorted(journalled), returned)
    assert tagged_pids(runner.tag) == []

    # Listed as interrupted (its coordinator is gone, its journal ends where the disk did).
    study = journal.stem
    listed = runner.cli("studies", "--journal-dir", str(folder), "--json")
    assert listed.returncode == 0, listed.stderr
    assert next(s for s in json.loads(listed.stdout) if s["study"] == study)["state"] == "interrupted", listed.stdout
    assert f"hyperopt-runner resume {study}" in faults[0]

    # Room again: resume runs the trials that are missing, the journalled ones replayed.
    journal_disk.remount("size=64m")
    resumed = runner.cli("resume", study, "--journal-dir", str(folder), "--no-tracking", "--executor", "local:2", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    finished = json.loads(next(line for line in resumed.stdout.splitlines() if line.startswith("FINISHED "))[len("FINISHED "):])
    assert len(finished) == 400 and journalled <= set(finished)
    assert tagged_pids(runner.tag) == []
