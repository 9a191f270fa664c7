"""End-to-end fixtures: the real CLI (dist/cli.js), real hyperopt in .venv, real worker processes.

Every process a test starts carries HR_E2E_TAG=<unique id> in its environment, so the
process-table check after each test finds the study's processes wherever they ended up
(re-parented, in their own process groups), not only the PIDs the test knows.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / "bin" / "hyperopt-runner.js"
PYTHON = ROOT / ".venv" / "bin" / "python"
SAMPLES = ROOT / "samples"
HERE = Path(__file__).resolve().parent


def tagged_pids(tag: str) -> list[tuple[int, str]]:
    """Processes whose environment carries the tag, with their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if f"HR_E2E_TAG={tag}".encode() not in environ.split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(entry.name), cmdline))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    summary: list[dict]
    journal_dir: Path

    def study_records(self, index: int = 0) -> list[dict]:
        return [json.loads(line) for line in Path(self.summary[index]["journal"]).read_text().splitlines() if line]


class Runner:
    def __init__(self, tmp_path: Path, tag: str):
        self.tmp_path = tmp_path
        self.tag = tag
        self.journal_dir = tmp_path / "journal"
        self.env = {**os.environ, "HR_E2E_TAG": tag, "HYPEROPT_RUNNER_PYTHON": str(PYTHON)}
        self.env.pop("MLFLOW_TRACKING_URI", None)

    def command(self, script: Path | str, *args: str, executor: str = "local:4", extra: tuple[str, ...] = ()) -> list[str]:
        # Tracking has its own tests (test_mlflow.py); elsewhere it would only add a server start.
        tracking = () if any(e.startswith("--tracking-uri") or e == "--track" for e in extra) else ("--no-tracking",)
        extra = tuple(e for e in extra if e != "--track")
        return [
            "node", str(CLI), "run", str(script), "--executor", executor,
            "--journal-dir", str(self.journal_dir), "--summary-json", str(self.tmp_path / "summary.json"),
            *tracking, *extra, *(("--", *args) if args else ()),
        ]

    def run(self, script: Path | str, *args: str, executor: str = "local:4", extra: tuple[str, ...] = (), timeout: float = 180, cwd: Path | None = None) -> Result:
        summary = self.tmp_path / "summary.json"
        summary.unlink(missing_ok=True)
        proc = subprocess.run(
            self.command(script, *args, executor=executor, extra=extra),
            cwd=cwd or ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        return self._result(proc.returncode, proc.stdout, proc.stderr)

    def start(self, script: Path | str, *args: str, executor: str = "local:4", extra: tuple[str, ...] = ()) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(script, *args, executor=executor, extra=extra),
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(["node", str(CLI), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)

    def finish(self, proc: subprocess.Popen, timeout: float = 120) -> Result:
        stdout, stderr = proc.communicate(timeout=timeout)
        return self._result(proc.returncode, stdout, stderr)

    def _result(self, code: int, stdout: str, stderr: str) -> Result:
        summary_path = self.tmp_path / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else []
        return Result(code, stdout, stderr, summary, self.journal_dir)


def serial_reference(script: Path, *args: str, cwd: Path = ROOT) -> list[dict]:
    """Runs a script with plain hyperopt (no runner) and records each fmin call's outcome."""
    out = subprocess.run(
        [str(PYTHON), str(HERE / "serial_reference.py"), str(script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("HYPEROPT_RUNNER")},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def runner(tmp_path: Path):
    tag = uuid.uuid4().hex
    r = Runner(tmp_path, tag)
    yield r
    # Nothing of the study may outlive the test: allow a moment for exits already under way.
    deadline = time.monotonic() + 5
    left = tagged_pids(tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = tagged_pids(tag)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left running after the test: {left}"
