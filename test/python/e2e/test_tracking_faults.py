"""Tracking faults at start-up: the driver and the workers only ever get an MLflow address that answers."""
import socket
import time

import pytest

from conftest import HERE

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
