"""Tracking faults at start-up: the driver and the workers only ever get an MLflow address that answers."""
import json
import os
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI, HERE, PYTHON, tagged_pids, wait_for
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


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on, from its socket descriptors and /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def status_of(request: urllib.request.Request | str):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as answer:
            return answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def test_the_workspace_server_answers_its_user_alone_and_its_mlflow_listens_on_no_port(runner, default_workspace):
    workspace, env = default_workspace()
    # The objective logs its own metric: the workers' MLflow calls carry the server's token.
    (workspace / "study.py").write_text((SCRIPTS / "tracked.py").read_text())
    result = in_workspace(workspace, env, "run", "study.py", "--executor", "local:2")
    assert result.returncode == 0, result.stderr
    state = workspace / ".hyperopt-runner"
    record = json.loads((state / "tracking-server.json").read_text())
    uri = f"http://127.0.0.1:{record['port']}"
    search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=5"

    # Without the token, or with another, MLflow's API is refused with a sentence that says what to do.
    for headers in ({}, {"Authorization": "Bearer " + "0" * 48}, {"Cookie": f"hyperopt-runner-{record['port']}=forged"}):
        code, body, answer = status_of(urllib.request.Request(search, headers=headers))
        assert code == 401, (headers, code, body)
        assert json.loads(body)["error_code"] == "UNAUTHENTICATED" and "hyperopt-runner tracking ui" in body
        assert answer.get("WWW-Authenticate", "").startswith("Bearer")
    code, body, _ = status_of(urllib.request.Request(search, headers={"Authorization": f"Bearer {record['apiToken']}"}))
    assert code == 200 and "Default" in body, body

    # What the workers logged through it: every successful trial's own metric, in its child run.
    def custom_metrics() -> int:
        request = urllib.request.Request(
            f"{uri}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": ["0"], "filter": "metrics.custom >= 0", "max_results": 100}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {record['apiToken']}"},
        )
        code, body, _ = status_of(request)
        assert code == 200, body
        return len(json.loads(body).get("runs", []))

    records = [json.loads(line) for line in next((state / "journal").glob("*.jsonl")).read_text().splitlines()]
    finished_ok = sum(1 for r in records if r["k"] == "end" and (r.get("summary") or {}).get("status") == "ok")
    assert finished_ok > 0
    wait_for(lambda: custom_metrics() == finished_ok, timeout=120, what="the objective's own metric in every successful trial's run")

    # MLflow's own clients get in with `tracking env`, and not without it.
    client_code = "import mlflow; print(len(mlflow.MlflowClient().search_experiments()))"
    exported = in_workspace(workspace, env, "tracking", "env")
    assert exported.returncode == 0, exported.stderr
    variables = dict(line.removeprefix("export ").split("=", 1) for line in exported.stdout.splitlines() if line.startswith("export "))
    assert variables == {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_TOKEN": record["apiToken"]}
    plain = {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}
    allowed = subprocess.run([str(PYTHON), "-c", client_code], env={**plain, **variables}, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    refused = subprocess.run([str(PYTHON), "-c", client_code], env={**plain, "MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]

    # A browser comes in through a one-time link, which sets a cookie and leads to MLflow's UI.
    link = in_workspace(workspace, env, "tracking", "ui")
    assert link.returncode == 0, link.stderr
    url = link.stdout.split()[0]
    assert url.startswith(f"{uri}/_hyperopt-runner/browser/")
    code, _, answer = status_of(url + "/experiments/0")
    assert code == 303 and answer["Location"].endswith("#/experiments/0"), answer
    cookie = answer["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in answer["Set-Cookie"] and "SameSite=Strict" in answer["Set-Cookie"]
    code, body, _ = status_of(urllib.request.Request(f"{uri}/ajax-api/2.0/mlflow/experiments/search?max_results=5", headers={"Cookie": cookie}))
    assert code == 200 and "Default" in body, body
    assert status_of(url)[0] == 401, "the link works once"

    # The `mlflow server` behind the front listens on a Unix socket in the private folder, on no TCP port.
    mlflow_pids = [pid for pid, cmd in tagged_pids(runner.tag) if "mlflow" in cmd and "tracking-server" not in cmd]
    assert mlflow_pids, tagged_pids(runner.tag)
    assert all(listening_tcp_ports(pid) == set() for pid in mlflow_pids), [(pid, listening_tcp_ports(pid)) for pid in mlflow_pids]
    daemon_ports = listening_tcp_ports(record["pid"])
    assert daemon_ports == {record["port"]}, daemon_ports
    # Beside the store, or (a path too long for a socket) in a private folder of the user's.
    uds = [cmd.split("--uds ", 1)[1].split()[0] for _, cmd in tagged_pids(runner.tag) if "--uds " in cmd]
    assert uds, tagged_pids(runner.tag)
    socket_path = Path(uds[0])
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700 and socket_path.parent.stat().st_uid == os.getuid()
    assert socket_path.parent == state or len(str(state / "mlflow-server.sock")) > 100
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
