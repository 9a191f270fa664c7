"""The worker as the coordinator runs it: a real subprocess in its own session."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hyperopt import base, hp
from hyperopt.fmin import fmin_pass_expr_memo_ctrl

from hyperopt_runner import _protocol as P

HERE = os.path.dirname(os.path.abspath(__file__))
SPACE = {"x": hp.uniform("x", -2, 2)}


class Worker:
    def __init__(self, tmp_path):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, env.get("PYTHONPATH")]))
        self.stderr_path = tmp_path / "worker.stderr"
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyperopt_runner.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
            start_new_session=True, env=env, cwd=str(tmp_path),
        )
        self.hello = self.recv()

    def send(self, message):
        self.proc.stdin.write(P.encode(message, P.COORDINATOR_TO_WORKER))
        self.proc.stdin.flush()

    def recv(self):
        line = self.proc.stdout.readline()
        assert line, f"worker closed its protocol stream; stderr: {self.stderr()!r}"
        return P.decode(line, P.WORKER_TO_COORDINATOR)

    def load(self, study, fn, space=SPACE, **domain_options):
        self.send({"type": "load", "study": study, "domain": P.dumps_blob(base.Domain(fn, space, **domain_options))})
        return self.recv()

    def evaluate(self, study, tid, point, env=None):
        message = {"type": "evaluate", "study": study, "tid": tid, "spec": P.dumps_blob(point)}
        if env is not None:
            message["env"] = env
        self.send(message)
        reply = self.recv()
        assert reply["type"] == "result" and reply["tid"] == tid and reply["study"] == study
        return reply

    def shutdown(self):
        self.send({"type": "shutdown"})
        code = self.proc.wait(timeout=30)
        rest = self.proc.stdout.read()
        return code, rest

    def stderr(self):
        self.stderr_file.flush()
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.stderr_file.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


@pytest.fixture
def worker(tmp_path):
    started = []

    def start():
        w = Worker(tmp_path)
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


# -- objectives (pickled by value or by reference into the worker) ----------------------------------


def noisy(point):
    print("python says", point["x"])
    sys.stdout.flush()
    os.write(1, b"fd 1 says hi\n")
    subprocess.run(["sh", "-c", "echo child says hi"], check=True)
    print("to stderr", file=sys.stderr)
    return {"loss": point["x"] ** 2, "status": "ok", "note": "fine"}


def raises(point):
    raise ValueError(f"x out of range: {point['x']}")


def nan_loss(point):
    return float("nan")


def no_status(point):
    return {"loss": 1.0}


def fail_status(point):
    return {"status": "fail", "why": "diverged"}


class Model:
    def __init__(self, weights):
        self.weights = weights


def rich_result(point):
    return {"loss": 0.5, "status": "ok", "weights": np.arange(4.0) * point["x"], "model": Model([1, 2])}


def with_lock(point):
    import threading

    return {"loss": 1.0, "status": "ok", "lock": threading.Lock()}


def env_reader(point):
    return {"loss": 0.0, "status": "ok", "value": os.environ.get("HR_TEST_VALUE"), "stdin": sys.stdin.read()}


def exits(point):
    sys.exit(3)


@fmin_pass_expr_memo_ctrl
def low_level(expr, memo, ctrl):
    from hyperopt import pyll

    point = pyll.rec_eval(expr, memo=memo)
    return {"loss": point["x"] ** 2, "status": "ok", "tid": ctrl.current_trial["tid"]}


# -- tests -----------------------------------------------------------------------------------------


def test_hello(worker):
    w = worker()
    hello = w.hello
    assert hello["type"] == "hello" and hello["protocol"] == P.PROTOCOL_VERSION
    assert hello["pid"] == w.proc.pid
    assert hello["executable"] == sys.executable
    assert hello["python"] == "%d.%d.%d" % sys.version_info[:3]
    import cloudpickle
    import hyperopt

    versions = hello["versions"]
    assert set(versions) == {"hyperopt", "cloudpickle", "numpy", "mlflow"}
    assert versions["hyperopt"] == hyperopt.__version__
    assert versions["cloudpickle"] == cloudpickle.__version__
    assert versions["numpy"] == np.__version__
    code, rest = w.shutdown()
    assert code == 0 and rest == b""


def test_worker_starts_without_hyperopt_or_mlflow(tmp_path):
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['worker']\n"
        "import hyperopt_runner.worker, hyperopt_runner._worker as w\n"
        "w.Worker.run = lambda self: 0\n"
        "w.main()\n"
        "heavy = [m for m in ('hyperopt', 'numpy', 'mlflow', 'cloudpickle') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().endswith("[]")


def test_output_goes_to_stderr_between_markers(worker):
    w = worker()
    assert w.load("s1", noisy) == {"type": "loaded", "study": "s1"}
    reply = w.evaluate("s1", 7, {"x": 0.5})
    assert reply["outcome"] == "ok"
    assert reply["summary"] == {"status": "ok", "loss": 0.25}
    assert P.loads_blob(reply["result"]) == {"loss": 0.25, "status": "ok", "note": "fine"}
    assert reply["endedAt"] >= reply["startedAt"] > 0
    code, rest = w.shutdown()
    assert code == 0 and rest == b""  # nothing but protocol ever reached stdout
    err = w.stderr()
    begin, end = err.index("\x1ehr:begin:7\x1e"), err.index("\x1ehr:end:7\x1e")
    inside = err[begin:end]
    for text in ("python says 0.5", "fd 1 says hi", "child says hi", "to stderr"):
        assert text in inside


def test_exception_becomes_error_with_traceback(worker):
    w = worker()
    w.load("s", raises)
    reply = w.evaluate("s", 1, {"x": 3.0})
    assert reply["outcome"] == "error"
    assert "result" not in reply and "summary" not in reply
    assert reply["error"]["type"] == "ValueError"
    assert reply["error"]["message"] == "x out of range: 3.0"
    assert "Traceback (most recent call last)" in reply["error"]["traceback"]
    assert "in raises" in reply["error"]["traceback"]
    # the worker goes on
    w.load("t", noisy)
    assert w.evaluate("t", 2, {"x": 1.0})["outcome"] == "ok"


def test_sys_exit_in_objective_fails_the_trial_only(worker):
    w = worker()
    w.load("s", exits)
    reply = w.evaluate("s", 1, {"x": 0.0})
    assert reply["outcome"] == "error" and reply["error"]["type"] == "SystemExit"
    assert w.shutdown()[0] == 0


def test_nan_loss_and_fail_status(worker):
    w = worker()
    w.load("nan", nan_loss)
    reply = w.evaluate("nan", 1, {"x": 0.0})
    assert reply["outcome"] == "ok" and reply["summary"] == {"status": "ok", "loss": "NaN"}
    w.load("fail", fail_status)
    reply = w.evaluate("fail", 2, {"x": 0.0})
    assert reply["summary"] == {"status": "fail", "loss": None}
    assert P.loads_blob(reply["result"]) == {"status": "fail", "why": "diverged"}


def test_result_without_status_is_an_error_like_hyperopt(worker):
    w = worker()
    w.load("s", no_status)
    reply = w.evaluate("s", 1, {"x": 0.0})
    assert reply["outcome"] == "error"
    assert reply["error"]["type"] == "KeyError" and "status" in reply["error"]["message"]
    with pytest.raises(KeyError):  # what serial hyperopt does with the same objective
        base.Domain(no_status, SPACE).evaluate({"x": 0.0}, ctrl=None)


def returns_none(point):
    return None


def returns_text(point):
    return "0.5"


def returns_no_loss(point):
    return {"status": "ok", "acc": 0.9}


def test_results_hyperopt_cannot_read_fail_with_what_came_back_and_what_to_return(worker):
    w = worker()
    cases = [
        (returns_none, "TypeError", "the objective returned None;"),
        (returns_text, "ValueError", "the objective returned str '0.5';"),
        (returns_no_loss, "InvalidLoss", 'the objective returned a dict with status "ok" and loss \'missing\';'),
        (no_status, "KeyError", 'the objective returned a dict without "status";'),
    ]
    for index, (objective, kind, start) in enumerate(cases):
        w.load(f"s{index}", objective)
        reply = w.evaluate(f"s{index}", index, {"x": 0.0})
        assert reply["outcome"] == "error", reply
        assert reply["error"]["type"].rsplit(".", 1)[-1] == kind, reply["error"]
        message = reply["error"]["message"]
        assert message.startswith(start) and 'a numeric "loss"' in message, message
        # The sentence reads the same in the traceback, unquoted (a plain KeyError would quote it).
        assert reply["error"]["traceback"].rstrip().splitlines()[-1] == f"{reply['error']['type']}: {message}"
        # The type is the one serial hyperopt raises for the same objective.
        with pytest.raises(Exception) as serial:
            base.Domain(objective, SPACE).evaluate({"x": 0.0}, ctrl=None)
        assert type(serial.value).__name__ == kind
    # An objective's own exception is left as it is.
    w.load("own", raises)
    assert w.evaluate("own", 9, {"x": 3.0})["error"]["message"] == "x out of range: 3.0"


def test_result_with_numpy_and_objects_round_trips(worker):
    class LocalThing:  # pickled by value: the worker has no module to import it from
        def __init__(self, value):
            self.value = value

    def objective(point):
        result = rich_result(point)
        result["local"] = LocalThing(point["x"])
        return result

    w = worker()
    w.load("s", objective)
    reply = w.evaluate("s", 3, {"x": 2.0})
    assert reply["outcome"] == "ok", reply.get("error")
    result = P.loads_blob(reply["result"])
    np.testing.assert_array_equal(result["weights"], np.arange(4.0) * 2.0)
    assert isinstance(result["model"], Model) and result["model"].weights == [1, 2]
    assert isinstance(result["local"], LocalThing) and result["local"].value == 2.0


def test_unpicklable_result_is_an_error_naming_the_type(worker):
    w = worker()
    w.load("s", with_lock)
    reply = w.evaluate("s", 1, {"x": 0.0})
    assert reply["outcome"] == "error"
    assert "result['lock']" in reply["error"]["message"]
    assert "_thread.lock" in reply["error"]["message"]


def test_env_is_set_for_one_trial_and_stdin_is_not_the_protocol(worker):
    w = worker()
    w.load("s", env_reader)
    first = P.loads_blob(w.evaluate("s", 1, {"x": 0.0}, env={"HR_TEST_VALUE": "one"})["result"])
    second = P.loads_blob(w.evaluate("s", 2, {"x": 0.0})["result"])
    assert first["value"] == "one" and second["value"] is None
    assert first["stdin"] == ""


def test_pass_expr_memo_ctrl_objective(worker):
    w = worker()
    w.load("s", low_level)
    reply = w.evaluate("s", 9, {"x": 3.0})
    assert reply["outcome"] == "ok", reply.get("error")
    assert P.loads_blob(reply["result"]) == {"loss": 9.0, "status": "ok", "tid": 9}


def test_load_failure_and_unknown_study(worker):
    w = worker()
    w.send({"type": "load", "study": "bad", "domain": P.dumps_blob(1)[:-4] + "AAAA"})
    reply = w.recv()
    assert reply["type"] == "load_failed" and reply["study"] == "bad"
    assert reply["error"]["type"] and "Traceback" in reply["error"]["traceback"]
    result = w.evaluate("missing", 1, {"x": 0.0})
    assert result["outcome"] == "error" and "not loaded" in result["error"]["message"]


def test_domains_of_several_studies_stay_loaded(worker):
    w = worker()
    w.load("a", noisy)
    w.load("b", nan_loss)
    assert w.evaluate("a", 1, {"x": 1.0})["summary"]["loss"] == 1.0
    assert w.evaluate("b", 2, {"x": 1.0})["summary"]["loss"] == "NaN"
    assert w.load("a", noisy) == {"type": "loaded", "study": "a"}


def test_eof_without_a_trial_exits(worker):
    w = worker()
    w.proc.stdin.close()
    assert w.proc.wait(timeout=30) == 0


def test_shutdown_during_the_preload_does_not_wait_for_the_imports(worker, monkeypatch):
    # A replacement worker told to go while it still imports hyperopt (a study ended right after
    # a cancel) exits at once: nothing ran in it. Python's import-time log shows whether the
    # import of hyperopt completed (its line is written when it does).
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    w = worker()
    w.send({"type": "shutdown"})
    w.proc.stdin.close()
    assert w.proc.wait(timeout=30) == 0
    finished = [line for line in w.stderr().splitlines() if line.rstrip().endswith("| hyperopt")]
    assert finished == [], "the worker finished importing hyperopt before it exited"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def _wait_until(condition, what, limit=30.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_eof_during_a_trial_kills_the_trial_and_its_children(worker, tmp_path):
    pid_file = tmp_path / "grandchild.pid"

    def long_trial(point, pid_file=str(pid_file)):
        child = subprocess.Popen(["sleep", "600"])
        with open(pid_file + ".tmp", "w") as handle:
            handle.write(str(child.pid))
        os.replace(pid_file + ".tmp", pid_file)
        time.sleep(600)
        return 0.0

    w = worker()
    w.load("s", long_trial)
    w.send({"type": "evaluate", "study": "s", "tid": 1, "spec": P.dumps_blob({"x": 0.0})})
    _wait_until(pid_file.exists, "the trial to start its child")
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    w.proc.stdin.close()  # the coordinator is gone
    assert w.proc.wait(timeout=30) != 0
    _wait_until(lambda: not _alive(grandchild), "the trial's child to be killed")
