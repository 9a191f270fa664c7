"""Tracking faults at start-up: the driver and the workers only ever get an MLflow address that answers."""
import json
import socket
import stat
import subprocess
import time

import pytest

from conftest import CLI, HERE, wait_for
from test_mlflow import default_workspace, in_workspace, studies_listed  # noqa: F401 - a fixture, used by name

SCRIPTS = HERE / "scripts"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_tracking_server_is_found_in_seconds_and_the_run_goes_untracked(runner, tmp_path, kind):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if kind == "silent":
            sock.listen(64)  # connections complete in the kernel's backlog; nothing ever answers
        port = sock.getsockname()[1]
        started = time.monotonic()
        # The objective logs its own metric: with the dead address its every call would retry for
        # minutes. One worker: untracked, its calls go to MLflow's default store in the folder.
        result = runner.run(SCRIPTS / "tracked.py", executor="local:1", extra=("--tracking-uri", f"http://127.0.0.1:{port}"), cwd=tmp_path, timeout=170)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    notices = [line for line in result.stderr.splitlines() if "does not answer" in line]
    assert len(notices) == 1, result.stderr[-2000:]
    assert notices[0].startswith(f"hyperopt-runner: MLflow: http://127.0.0.1:{port} does not answer (")
    assert "the run is not tracked" in notices[0] and "hyperopt-runner sync" in notices[0]
    assert result.summary[0]["trials"]["total"] == 20
    assert result.summary[0]["state"] == "max_evals"
    # A safety limit, far above the run's own length and far below MLflow's retries (minutes).
    assert elapsed < 90, elapsed


def test_a_killed_cli_leaves_the_workspace_server_to_the_next_run_which_is_tracked_at_once(runner, default_workspace):
    workspace, env = default_workspace(6)
    state = workspace / ".hyperopt-runner"
    proc = subprocess.Popen(["node", str(CLI), "run", "study.py", "--executor", "local:2"], cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finished_trials() -> int:
        return sum(p.read_text().count('"state":"done"') for p in (state / "journal").glob("*.jsonl")) if (state / "journal").exists() else 0

    wait_for(lambda: finished_trials() >= 2, timeout=120, what="two trials done")
    proc.kill()  # the CLI alone, as `kill -9` would: its server is the workspace's, not its own
    proc.communicate(timeout=30)
    record = json.loads((state / "tracking-server.json").read_text())
    # The next run finds that server and gives its processes the address it serves on.
    second = in_workspace(workspace, env, "run", "study.py", "--executor", "local:2", timeout=120)
    assert second.returncode == 0, second.stderr
    assert "starting the workspace's tracking server" not in second.stderr, second.stderr
    assert "not available" not in second.stderr and "does not answer" not in second.stderr, second.stderr
    assert json.loads((state / "tracking-server.json").read_text())["pid"] == record["pid"]
    journals = sorted((state / "journal").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    newest = journals[-1].stem

    def second_study_written() -> bool:
        return any(s["study"]["studyId"] == newest and len(s["trials"]) == 6 for s in studies_listed(workspace, env))

    wait_for(second_study_written, timeout=120, what="the second study's 6 runs")
    # The store, its server's record and the journals are the user's alone.
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for private in (state / "mlflow.db", state / "tracking-server.json", journals[-1]):
        assert stat.S_IMODE(private.stat().st_mode) & 0o077 == 0, (private, oct(private.stat().st_mode))
