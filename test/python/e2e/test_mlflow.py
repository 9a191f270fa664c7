"""MLflow tracking through the real CLI against a real `mlflow server`."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import HERE, PYTHON, ROOT, tagged_pids, wait_for

SCRIPTS = HERE / "scripts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, store: Path, port: int):
        self.store, self.port = store, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc = None
        self.answered = False

    def start(self) -> None:
        """Starts the server and waits until it answers. Before it has ever answered, a server that
        exits (its port taken meanwhile by another process) is started again on another port; a
        restart keeps the port, which the study under test already uses."""
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        log = ""
        for attempt in range(3):
            log_path = self.store.parent / f"mlflow-server-{self.port}.log"
            with open(log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [str(PYTHON), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.store}",
                     "--artifacts-destination", str(self.store.parent / "artifacts"),
                     "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                    env=env, stdout=out, stderr=out, start_new_session=True,
                )
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.healthy():
                    self.answered = True
                    return
                time.sleep(0.05)
            self.stop()
            log = log_path.read_text(errors="replace")[-2000:]
            if self.answered:
                break
            self.port = free_port()
            self.uri = f"http://127.0.0.1:{self.port}"
        raise AssertionError(f"the mlflow server did not answer; the end of its log:\n{log}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                return r.read().strip() == b"OK"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        elif self.proc:
            # Its own children (the uvicorn worker) may outlive a server that exited.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def api(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.uri}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def runs(self, filter_string: str = "") -> list[dict]:
        runs, token = [], None
        while True:
            body = {"experiment_ids": ["0"], "filter": filter_string, "max_results": 1000}
            if token:
                body["page_token"] = token
            page = self.api("runs/search", body)
            runs += page.get("runs", [])
            token = page.get("next_page_token")
            if not token:
                return runs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    s = Server(store, free_port())
    s.start()
    yield s
    s.stop()


def tags(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def params(run: dict) -> dict:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def metrics(run: dict) -> dict:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def children(server: Server, parent_id: str) -> list[dict]:
    return server.runs(f"tags.mlflow.parentRunId = '{parent_id}'")


def test_a_study_is_a_parent_run_with_a_child_per_trial(runner, server):
    result = runner.run(SCRIPTS / "tracked.py", executor="local:2", extra=("--tracking-uri", server.uri))
    assert result.returncode == 0, result.stderr
    study = result.summary[0]["study"]
    parents = server.runs(f"tags.`hyperopt_runner.study_id` = '{study}'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent["info"]["status"] == "FINISHED"
    assert tags(parent)["runSource"] == "hyperoptAutoTracking" and tags(parent)["fmin_uuid"] == study
    assert {"max_evals", "parallelism", "actual_parallelism", "timeout", "algo", "max_queue_len"} <= set(params(parent))
    assert params(parent)["max_evals"] == "20" and params(parent)["actual_parallelism"] == "2"
    m = metrics(parent)
    assert m["total_trials_count"] == 20 and m["successful_trials_count"] + m["failed_trials_count"] == 20
    kids = children(server, parent["info"]["run_id"])
    assert len(kids) == 20
    failed = [k for k in kids if k["info"]["status"] == "FAILED"]
    finished = [k for k in kids if k["info"]["status"] == "FINISHED"]
    assert len(failed) == m["failed_trials_count"] > 0 and len(finished) == m["successful_trials_count"]
    for kid in finished:
        assert "loss" in metrics(kid) and "custom" in metrics(kid)
        assert params(kid)["kind"] in ("small", "large")  # choices as values, not indices
        assert tags(kid)["trial_status"] == "ok" and tags(kid)["hyperopt_runner.slot"].startswith("local/")
    for kid in failed:
        assert "ValueError" in tags(kid)["hyperopt_runner.traceback"]
    assert sorted(int(tags(k)["hyperopt_runner.tid"]) for k in kids) == list(range(20))
    # Each worker reported its run complete after the result: one tracked record per trial,
    # nothing left for the sync.
    records = result.study_records()
    ends = {r["tid"]: r for r in records if r["k"] == "end"}
    tracked = {r["tid"]: r for r in records if r["k"] == "tracked"}
    assert sorted(tracked) == list(range(20)) and all(r["complete"] for r in tracked.values()), tracked
    # An end record names the run when it existed by then; the tracked record always does.
    assert all(tracked[tid]["mlflowRunId"] == ends[tid]["mlflowRunId"] for tid in ends if "mlflowRunId" in ends[tid])
    assert sorted(r["mlflowRunId"] for r in tracked.values()) == sorted(k["info"]["run_id"] for k in kids)
    assert not [r for r in records if r["k"] == "synced"]


def test_the_scripts_active_run_is_the_parent(runner, server):
    result = runner.run(SCRIPTS / "tracked.py", "--outer", executor="local:2", extra=("--tracking-uri", server.uri))
    assert result.returncode == 0, result.stderr
    outer = next(l.split()[1] for l in result.stdout.splitlines() if l.startswith("OUTER"))
    kids = children(server, outer)
    assert len(kids) == 20
    assert all("custom" in metrics(k) for k in kids if k["info"]["status"] == "FINISHED")
    assert params(server.runs(f"attributes.run_id = '{outer}'")[0])["max_evals"] == "20"


def experiment_runs(server: Server, name: str) -> list[dict]:
    req = urllib.request.Request(f"{server.uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}")
    with urllib.request.urlopen(req, timeout=30) as r:
        experiment = json.loads(r.read())["experiment"]
    return server.api("runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 100}).get("runs", [])


def test_the_runs_go_to_the_experiment_the_script_or_its_environment_chose(runner, server):
    chosen = runner.run(SCRIPTS / "experiment.py", "--set", executor="local:2", extra=("--tracking-uri", server.uri))
    assert chosen.returncode == 0, chosen.stderr
    runs = experiment_runs(server, "chosen-by-the-script")
    assert len(runs) == 4 and sum("mlflow.parentRunId" in tags(r) for r in runs) == 3, "the parent and its 3 trials"
    # No mlflow in the script: the coordinator reads MLFLOW_EXPERIMENT_NAME as mlflow would (creating it).
    runner.env["MLFLOW_EXPERIMENT_NAME"] = "named-by-the-environment"
    named = runner.run(SCRIPTS / "experiment.py", executor="local:2", extra=("--tracking-uri", server.uri))
    assert named.returncode == 0, named.stderr
    assert len(experiment_runs(server, "named-by-the-environment")) == 4


def test_server_killed_mid_study_then_back_every_trial_gets_its_run(runner, tmp_path):
    s = Server(tmp_path / "mlflow.db", free_port())
    s.start()
    try:
        # Long enough to outlast the server's restart: the trials after it are logged as they end.
        proc = runner.start(SCRIPTS / "slow_tracked.py", "80", executor="local:2", extra=("--tracking-uri", s.uri))

        def done() -> int:
            journals = list(runner.journal_dir.glob("*.jsonl")) if runner.journal_dir.exists() else []
            return sum(p.read_text().count('"state":"done"') for p in journals)

        wait_for(lambda: done() >= 4, timeout=120, what="four finished trials")
        s.stop()
        wait_for(lambda: done() >= 10, timeout=120, what="trials finishing while the server is down")
        s.start()
        result = runner.finish(proc, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "FMIN_RETURNED" in result.stdout
        study = result.summary[0]["study"]
        parent = s.runs(f"tags.`hyperopt_runner.study_id` = '{study}'")[0]
        kids = children(s, parent["info"]["run_id"])
        assert sorted(int(tags(k)["hyperopt_runner.tid"]) for k in kids) == list(range(80)), result.stderr[-3000:]
        assert all("loss" in metrics(k) for k in kids)
        assert result.stderr.count("MLflow:") <= 3, result.stderr  # one warning, not one per trial
    finally:
        s.stop()


def test_results_do_not_wait_for_a_frozen_server_and_workers_killed_after_them_lose_no_run(runner, tmp_path):
    s = Server(tmp_path / "mlflow.db", free_port())
    s.start()
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        proc = runner.start(SCRIPTS / "held_tracked.py", str(marks), executor="local:4", extra=("--tracking-uri", s.uri))
        wait_for(lambda: len(list(marks.iterdir())) >= 4, timeout=180, what="four objectives running")
        time.sleep(0.5)

        def ends() -> list[dict]:
            journals = list(runner.journal_dir.glob("*.jsonl"))
            records = [json.loads(line) for p in journals for line in p.read_text().splitlines() if line]
            return [r for r in records if r["k"] == "end"]

        # Freeze the server: every MLflow request now hangs.
        os.killpg(s.proc.pid, signal.SIGSTOP)
        try:
            # The results do not wait for the runs to be written: all four arrive while it is frozen.
            wait_for(lambda: len(ends()) >= 4, timeout=9, what="four results while the server is frozen")
            workers = [pid for pid, cmd in tagged_pids(runner.tag) if "hyperopt_runner.worker" in cmd]
            assert len(workers) == 4, workers
            # The runs are the coordinator's to write: the workers that ran the trials may go.
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.killpg(s.proc.pid, signal.SIGCONT)
        result = runner.finish(proc, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "FMIN_RETURNED" in result.stdout
        records = result.study_records()
        tracked = {r["tid"]: r for r in records if r["k"] == "tracked"}
        assert sorted(tracked) == [0, 1, 2, 3] and all(r["complete"] for r in tracked.values()), tracked
        assert not [r for r in records if r["k"] == "synced"], "nothing was left for the sync"
        study = result.summary[0]["study"]
        parent = s.runs(f"tags.`hyperopt_runner.study_id` = '{study}'")[0]
        assert parent["info"]["status"] == "FINISHED"
        kids = children(s, parent["info"]["run_id"])
        assert sorted(k["info"]["run_id"] for k in kids) == sorted(r["mlflowRunId"] for r in tracked.values()), "one run per trial, no extra"
        for kid in kids:
            assert kid["info"]["status"] == "FINISHED" and "loss" in metrics(kid) and tags(kid)["trial_status"] == "ok"
            assert "x" in params(kid)
    finally:
        s.stop()


def in_workspace(workspace: Path, env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(ROOT / "bin" / "hyperopt-runner.js"), *args], cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def default_workspace(runner, tmp_path):
    """Makes a workspace with a tracked study of N trials and the default tracking (no URI
    anywhere); its tracking server, which outlives commands by design, ends with the test."""
    made = []

    def make(trials: int = 6) -> tuple[Path, dict]:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "study.py").write_text((SCRIPTS / "slow_tracked.py").read_text().replace("24", str(trials)))
        env = dict(runner.env)
        env.pop("MLFLOW_TRACKING_URI", None)
        made.append((workspace, env))
        return workspace, env

    yield make
    for workspace, env in made:
        stop_tracking(runner, workspace, env)


def tracking_processes(runner) -> list[str]:
    return [cmd for _, cmd in tagged_pids(runner.tag) if "mlflow" in cmd or "tracking-server" in cmd]


def studies_listed(workspace: Path, env: dict) -> list[dict]:
    listing = in_workspace(workspace, env, "runs", "--json")
    assert listing.returncode == 0, listing.stderr
    return [s for e in json.loads(listing.stdout) for s in e["studies"]]


def wait_for_studies(workspace: Path, env: dict, count: int, trials: int) -> list[dict]:
    """The workspace's studies once `count` of them hold `trials` runs each: what a command leaves
    unwritten at its end, the workspace's server writes in the background."""
    found: list[dict] = []

    def complete() -> bool:
        found[:] = studies_listed(workspace, env)
        return len(found) == count and all(len(s["trials"]) == trials for s in found)

    wait_for(complete, timeout=120, what=f"{count} studies of {trials} runs")
    return found


def stop_tracking(runner, workspace: Path, env: dict) -> None:
    stopped = in_workspace(workspace, env, "tracking", "stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not tracking_processes(runner), timeout=60, what="the tracking server to end")
    assert not (workspace / ".hyperopt-runner" / "tracking-server.json").exists()


def test_embedded_server_outlives_the_cli_serves_the_next_run_and_stops_when_told(runner, default_workspace):
    workspace, env = default_workspace()
    first = in_workspace(workspace, env, "run", "study.py", "--executor", "local:2")
    assert first.returncode == 0, first.stderr
    assert "starting the workspace's tracking server" in first.stderr
    assert (workspace / ".hyperopt-runner" / "mlflow.db").exists()
    record = json.loads((workspace / ".hyperopt-runner" / "tracking-server.json").read_text())
    assert tracking_processes(runner), "the server outlives the command"
    # The next command finds it: nothing to start, and it reads every run back.
    second = in_workspace(workspace, env, "run", "study.py", "--executor", "local:2")
    assert second.returncode == 0, second.stderr
    assert "starting the workspace's tracking server" not in second.stderr, second.stderr
    assert json.loads((workspace / ".hyperopt-runner" / "tracking-server.json").read_text())["pid"] == record["pid"]
    wait_for_studies(workspace, env, 2, 6)
    # `tracking stop` ends it (the fixture checks that nothing of it is left).


def test_two_runs_started_together_in_a_new_workspace_share_one_server(runner, default_workspace):
    workspace, env = default_workspace()
    command = ["node", str(ROOT / "bin" / "hyperopt-runner.js"), "run", "study.py", "--executor", "local:2"]
    procs = [subprocess.Popen(command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("starting the workspace's tracking server" in err for _, err in outputs) == 1, outputs
    servers = [cmd for cmd in tracking_processes(runner) if " -m mlflow server " in f" {cmd} "]
    daemons = [cmd for cmd in tracking_processes(runner) if "tracking-server" in cmd]
    assert len(servers) == 1 and len(daemons) == 1, tracking_processes(runner)
    wait_for_studies(workspace, env, 2, 6)


def test_tracking_server_killed_mid_study_the_study_goes_on_and_a_new_server_takes_its_runs(runner, default_workspace, tmp_path):
    workspace, env = default_workspace(24)
    # A first run leaves the workspace's server up, as for any later run.
    warm = in_workspace(workspace, env, "run", "study.py", "--executor", "local:2", "--", "2")
    assert warm.returncode == 0, warm.stderr
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        ["node", str(ROOT / "bin" / "hyperopt-runner.js"), "run", "study.py", "--executor", "local:2", "--summary-json", str(summary)],
        cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    journals = workspace / ".hyperopt-runner" / "journal"
    before = set(journals.glob("*.jsonl"))

    def journal_text() -> str:
        return "".join(p.read_text() for p in set(journals.glob("*.jsonl")) - before)

    # The study's parent run exists (so MLflow answered) and trials are finishing.
    wait_for(lambda: '"k":"tracking"' in journal_text() and journal_text().count('"state":"done"') >= 4, timeout=180, what="a tracked study under way")
    for pid, cmd in tagged_pids(runner.tag):
        if "tracking-server" in cmd or " -m mlflow server " in f" {cmd} ":
            os.killpg(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "FMIN_RETURNED" in stdout
    assert "a new one at http://127.0.0.1:" in stderr, stderr
    study = json.loads(summary.read_text())[0]["study"]

    def listed() -> dict | None:
        found = [s for s in studies_listed(workspace, env) if s["study"]["studyId"] == study]
        return found[0] if found and len(found[0]["trials"]) == 24 and found[0]["study"]["status"] == "FINISHED" else None

    # The new server was handed the runs that were missing and writes them in the background.
    wait_for(listed, timeout=120, what="every trial's run, and the study finished")


def journal_records(runner) -> list[dict]:
    paths = list(runner.journal_dir.glob("*.jsonl")) if runner.journal_dir.exists() else []
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.endswith("}")]


def stall_with_two_trials_in_flight(runner, server, marks: Path):
    """A tracked study on 2 slots whose first 3 trials finished and whose next 2 hang, each with
    its child run."""
    marks.mkdir()
    proc = runner.start(SCRIPTS / "stalled_tracked.py", str(marks), executor="local:2", extra=("--tracking-uri", server.uri))

    def stalled() -> bool:
        records = journal_records(runner)
        return sum(r["k"] == "end" for r in records) >= 3 and sum(r["k"] == "run" for r in records) >= 5 and len(list(marks.iterdir())) >= 5

    wait_for(stalled, timeout=180, what="three finished trials and two in flight")
    study = next(r["study"]["id"] for r in journal_records(runner) if r["k"] == "study")
    return proc, study


def study_runs(server, study: str) -> tuple[dict, list[dict]]:
    parents = server.runs(f"tags.`hyperopt_runner.study_id` = '{study}'")
    assert len(parents) == 1, [p["info"] for p in parents]
    return parents[0], children(server, parents[0]["info"]["run_id"])


def assert_closed_as_interrupted(server, runner, study: str, finished: int, lost: int, reason: str | tuple[str, ...] = "attempt lost: the command that ran the study") -> None:
    """The study's parent KILLED with the journal's counts; one run per tid, the finished trials'
    FINISHED, the lost attempts' KILLED and saying so; nothing RUNNING."""
    reasons = (reason,) if isinstance(reason, str) else reason
    parent, kids = study_runs(server, study)
    assert parent["info"]["status"] == "KILLED"
    m = metrics(parent)
    assert (m["successful_trials_count"], m["cancelled_trials_count"], m["failed_trials_count"]) == (finished, lost, 0), m
    tids = [tags(k)["hyperopt_runner.tid"] for k in kids]
    assert len(tids) == len(set(tids)) == finished + lost, tids
    done = [k for k in kids if k["info"]["status"] == "FINISHED"]
    killed = [k for k in kids if k["info"]["status"] == "KILLED"]
    assert len(done) == finished and all(tags(k)["trial_status"] == "ok" and "loss" in metrics(k) for k in done)
    assert len(killed) == lost, [k["info"]["status"] for k in kids]
    for kid in killed:
        assert tags(kid)["trial_status"] == "cancelled"
        assert tags(kid)["hyperopt_runner.cancel_reason"].startswith(reasons), tags(kid)
    journal = runner.journal_dir / f"{study}.jsonl"
    states = [r for r in map(json.loads, journal.read_text().splitlines()) if r["k"] == "state"]
    assert states[-1]["state"] == "ended" and states[-1]["reason"] == "interrupted", states


@pytest.mark.parametrize("closer", ["sync", "run"])
def test_cli_killed_mid_study_the_next_command_closes_its_runs(runner, server, tmp_path, closer):
    proc, study = stall_with_two_trials_in_flight(runner, server, tmp_path / "marks")
    proc.kill()
    proc.communicate(timeout=60)
    # The driver and the workers go with their coordinator.
    wait_for(lambda: not tagged_pids(runner.tag), timeout=30, what="the study's processes to end")
    parent, kids = study_runs(server, study)
    assert parent["info"]["status"] == "RUNNING"
    assert sorted(k["info"]["status"] for k in kids).count("RUNNING") >= 2
    if closer == "sync":
        synced = runner.cli("sync", "--journal-dir", str(runner.journal_dir), "--tracking-uri", server.uri)
        assert synced.returncode == 0, synced.stderr
    else:
        # Any later command in the same journal folder ends it at its own end.
        runner.env["STALL"] = "0"
        later = runner.run(SCRIPTS / "stalled_tracked.py", str(tmp_path / "marks"), "2", executor="local:2", extra=("--tracking-uri", server.uri))
        assert later.returncode == 0, later.stderr
        assert later.summary[0]["study"] != study
    assert_closed_as_interrupted(server, runner, study, finished=3, lost=2)
    again = runner.cli("sync", "--journal-dir", str(runner.journal_dir), "--tracking-uri", server.uri)
    assert again.returncode == 0 and again.stdout.strip() == "wrote 0 trial run(s) to MLflow", again.stdout + again.stderr


def test_a_worker_killed_mid_trial_leaves_one_finished_run_per_trial(runner, server, tmp_path):
    result = runner.run(SCRIPTS / "suicidal_worker.py", str(tmp_path / "marker"), executor="local:3", extra=("--tracking-uri", server.uri))
    assert result.returncode == 0, result.stderr
    records = result.study_records()
    requeued = [r["tid"] for r in records if r["k"] == "requeue"]
    assert len(requeued) == 1, records
    parent, kids = study_runs(server, result.summary[0]["study"])
    assert parent["info"]["status"] == "FINISHED"
    # The retry reused the trial's run: one run per tid, each finished with its status.
    assert sorted(int(tags(k)["hyperopt_runner.tid"]) for k in kids) == list(range(12))
    assert all(k["info"]["status"] == "FINISHED" and tags(k)["trial_status"] == "ok" for k in kids)
    retried = next(k for k in kids if int(tags(k)["hyperopt_runner.tid"]) == requeued[0])
    assert [r["mlflowRunId"] for r in records if r["k"] == "run" and r["tid"] == requeued[0]] == [retried["info"]["run_id"]]


def resume(runner, server, study: str, summary: Path) -> dict:
    runner.env["STALL"] = "0"
    resumed = runner.cli("resume", study, "--journal-dir", str(runner.journal_dir), "--tracking-uri", server.uri, "--summary-json", str(summary))
    assert resumed.returncode == 0, resumed.stderr
    return json.loads(summary.read_text())[0]


def assert_resumed_under_one_parent(server, study: str, finished: int, lost: int) -> None:
    """One parent across the resume, FINISHED with the counts of the resumed fmin's trials (the lost
    attempts are none of them); the lost attempts' runs KILLED, the resumed trials' under the same
    parent with tids of their own."""
    parent, kids = study_runs(server, study)
    assert parent["info"]["status"] == "FINISHED"
    m = metrics(parent)
    assert (m["successful_trials_count"], m["cancelled_trials_count"], m["total_trials_count"]) == (finished, 0, finished), m
    tids = [int(tags(k)["hyperopt_runner.tid"]) for k in kids]
    assert len(tids) == len(set(tids)) == finished + lost, sorted(tids)
    statuses = sorted(k["info"]["status"] for k in kids)
    assert statuses == ["FINISHED"] * finished + ["KILLED"] * lost, statuses
    assert all(tags(k)["trial_status"] == ("ok" if k["info"]["status"] == "FINISHED" else "cancelled") for k in kids)


def test_driver_killed_mid_study_its_runs_are_closed_and_resume_continues_its_parent(runner, server, tmp_path):
    proc, study = stall_with_two_trials_in_flight(runner, server, tmp_path / "marks")
    drivers = [pid for pid, cmd in tagged_pids(runner.tag) if "hyperopt_runner.launch" in cmd]
    assert len(drivers) == 1
    os.kill(drivers[0], signal.SIGKILL)
    runner.finish(proc, timeout=120)
    # The CLI saw its driver go: it closed the runs itself.
    assert_closed_as_interrupted(server, runner, study, finished=3, lost=2,
        # The driver's end and the coordinator's close race to name it: either is the same event.
        reason=("the script exited before fmin returned", "the coordinator shut down"))
    summary = resume(runner, server, study, tmp_path / "resumed.json")
    assert summary["study"] == study and summary["trials"]["ok"] == 8
    assert_resumed_under_one_parent(server, study, finished=8, lost=2)


def test_cli_killed_mid_study_resume_closes_the_lost_attempts_and_continues_its_parent(runner, server, tmp_path):
    proc, study = stall_with_two_trials_in_flight(runner, server, tmp_path / "marks")
    proc.kill()
    proc.communicate(timeout=60)
    wait_for(lambda: not tagged_pids(runner.tag), timeout=30, what="the study's processes to end")
    summary = resume(runner, server, study, tmp_path / "resumed.json")
    assert summary["study"] == study and summary["trials"]["ok"] == 8
    assert_resumed_under_one_parent(server, study, finished=8, lost=2)
    again = runner.cli("sync", "--journal-dir", str(runner.journal_dir), "--tracking-uri", server.uri)
    assert again.returncode == 0 and again.stdout.strip() == "wrote 0 trial run(s) to MLflow", again.stdout + again.stderr
