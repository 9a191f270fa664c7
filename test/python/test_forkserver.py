"""The fork server driven as the coordinator drives it: fd 3 a socketpair, fds 4 and 5 the
driver's output pipes, workers connecting back over real loopback sockets."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from hyperopt import base, hp

from hyperopt_runner import _protocol as P

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(os.path.dirname(HERE)), "runtime", "src")
SPACE = {"x": hp.uniform("x", -2, 2)}

# Puts the three ends at fds 3, 4 and 5 (via fds >= 10, so no end is overwritten before it is
# moved), then becomes the fork server, as Node's stdio array does for the coordinator.
PLACE_FDS = (
    "import fcntl, os, sys\n"
    "ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:4]]\n"
    "for fd in sys.argv[1:4]: os.close(int(fd))\n"
    "for target, fd in zip((3, 4, 5), ends): os.dup2(fd, target); os.close(fd)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[4:], '-m', 'hyperopt_runner.forkserver'])\n"
)


class Server:
    def __init__(self, tmp_path, python_args=(), env=None):
        self.control, theirs = socket.socketpair()
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        self.stdin_r, self.stdin_w = os.pipe()
        self.stderr_path = tmp_path / "server.stderr"
        self.env = dict(env if env is not None else os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([RUNTIME, HERE])
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", PLACE_FDS, str(theirs.fileno()), str(out_w), str(err_w), *python_args],
                pass_fds=(theirs.fileno(), out_w, err_w),
                stdin=self.stdin_r, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True, env=self.env, cwd=str(tmp_path),
            )
        theirs.close()
        os.close(out_w)
        os.close(err_w)
        os.close(self.stdin_r)
        self.buffer = b""
        self.messages = []
        self.ids = iter(range(1, 1000))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.children = []

    def send(self, message):
        self.control.sendall(P.encode(message, P.COORDINATOR_TO_FORK_SERVER))

    def next_message(self, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.control], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no message from the fork server in time; stderr: {self.stderr()!r}"
            chunk = self.control.recv(65536)
            assert chunk, f"the fork server closed its control channel; stderr: {self.stderr()!r}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return P.decode(line, P.FORK_SERVER_TO_COORDINATOR)

    def wait(self, predicate, timeout=60):
        """The first message (received earlier or now) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    self.messages.remove(message)
                    return message
            self.messages.append(self.next_message(max(0.1, deadline - time.monotonic())))

    def ready(self):
        return self.wait(lambda m: m["type"] == "ready")

    def fork(self, role, env=None, cwd=None, **extra):
        ident = next(self.ids)
        self.send({"type": "fork", "id": ident, "role": role, "env": dict(env or self.env), "cwd": str(cwd or HERE), **extra})
        reply = self.wait(lambda m: m.get("id") == ident)
        if reply["type"] == "forked":
            self.children.append(reply["pid"])
        return reply

    def exited(self, pid, timeout=60):
        return self.wait(lambda m: m["type"] == "exited" and m["pid"] == pid, timeout)

    def fork_worker(self, env=None, cwd=None):
        token = os.urandom(16).hex()
        reply = self.fork("worker", env, cwd, connect={"host": "127.0.0.1", "port": self.listener.getsockname()[1], "token": token})
        assert reply["type"] == "forked", reply
        return WorkerConnection(self.listener, token, reply["pid"])

    def stderr(self):
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def close(self):
        self.control.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in self.children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.listener.close()
        for fd in (self.out_r, self.err_r, self.stdin_w):
            try:
                os.close(fd)
            except OSError:
                pass


def read_until_eof(fd, timeout=30):
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"no EOF in time; read {data!r}")


class WorkerConnection:
    """The two connections one forked worker opens, checked as the coordinator checks them."""

    def __init__(self, listener, token, pid):
        self.pid = pid
        sockets = {}
        listener.settimeout(30)
        while len(sockets) < 2:
            conn, _ = listener.accept()
            first = b""
            while not first.endswith(b"\n"):
                chunk = conn.recv(1)
                assert chunk, "a worker connection closed before its first line"
                first += chunk
            opening = json.loads(first)
            assert opening["token"] == token
            sockets[opening["channel"]] = conn
        assert set(sockets) == {"protocol", "output"}
        self.protocol, self.output = sockets["protocol"], sockets["output"]
        self.protocol.settimeout(60)
        self.reader = self.protocol.makefile("rb")
        self.hello = self.recv()

    def send(self, message):
        self.protocol.sendall(P.encode(message, P.COORDINATOR_TO_WORKER))

    def recv(self):
        line = self.reader.readline()
        assert line, "the worker closed its protocol socket"
        return P.decode(line, P.WORKER_TO_COORDINATOR)

    def run(self, study, fn, point, tid=1):
        """Loads ``fn`` as a study's domain and evaluates one point; returns the result dict."""
        self.send({"type": "load", "study": study, "domain": P.dumps_blob(base.Domain(fn, SPACE))})
        assert self.recv() == {"type": "loaded", "study": study}
        self.send({"type": "evaluate", "study": study, "tid": tid, "spec": P.dumps_blob(point)})
        reply = self.recv()
        assert reply["type"] == "result" and reply["outcome"] == "ok", reply
        return P.loads_blob(reply["result"])

    def output_until_eof(self):
        self.output.settimeout(30)
        data = b""
        while True:
            chunk = self.output.recv(65536)
            if not chunk:
                return data.decode("utf-8", "replace")
            data += chunk

    def shutdown(self):
        self.send({"type": "shutdown"})
        self.protocol.shutdown(socket.SHUT_WR)

    def close(self):
        for thing in (self.reader, self.protocol, self.output):
            thing.close()


@pytest.fixture
def server(tmp_path):
    made = []

    def start(**options):
        s = Server(tmp_path, **options)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


# -- objectives (pickled by reference: this module is on the workers' path) -----------------------


def squared(point):
    print("evaluating", point["x"])
    return {"loss": point["x"] ** 2, "status": "ok"}


def describe_process(point):
    return {
        "loss": 0.0,
        "status": "ok",
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "pgid": os.getpgrp(),
        "sid": os.getsid(0),
        "draw": float(np.random.rand()),
        "sigint": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "sigchld": signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL,
        "wakeup_fd": signal.set_wakeup_fd(-1),
        "descriptors": _descriptors(),
        "stdout_write_through": sys.stdout.write_through,
        "name": open("/proc/self/comm").read().strip(),
        "cmdline": open("/proc/self/cmdline", "rb").read().rstrip(b"\0").split(b"\0")[1:],
    }


def _descriptors():
    """What each open fd is: the server's control channel is a Unix socket, the wakeup fd and
    the driver's output are pipes; a worker should hold only TCP sockets and /dev/null."""
    import stat

    kinds = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue  # the listing's own descriptor
        if stat.S_ISFIFO(mode):
            kinds[fd] = "pipe"
        elif stat.S_ISSOCK(mode):
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as dup:
                kinds[fd] = "tcp" if dup.family in (socket.AF_INET, socket.AF_INET6) else "unix"
        else:
            kinds[fd] = "file"
    return kinds


def starts_sleeper(point):
    child = subprocess.Popen(["sleep", "60"])
    print(f"sleeper {child.pid}", flush=True)
    time.sleep(60)
    return {"loss": 0.0, "status": "ok"}


# -- tests ------------------------------------------------------------------------------------------


def test_ready_carries_the_versions_of_the_warm_imports(server):
    s = server()
    ready = s.ready()
    import cloudpickle
    import hyperopt

    assert ready["pid"] == s.proc.pid
    assert ready["executable"] == sys.executable
    assert ready["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert ready["versions"]["hyperopt"] == hyperopt.__version__
    assert ready["versions"]["cloudpickle"] == cloudpickle.__version__
    assert ready["versions"]["numpy"] == np.__version__
    assert "error" not in ready


def test_a_forked_worker_says_hello_over_its_socket_and_evaluates_a_domain(server):
    s = server()
    s.ready()
    w = s.fork_worker()
    assert w.hello["type"] == "hello" and w.hello["pid"] == w.pid
    assert w.run("s1", squared, {"x": 0.5}) == {"loss": 0.25, "status": "ok"}
    w.shutdown()
    assert s.exited(w.pid) == {"type": "exited", "pid": w.pid, "code": 0, "signal": None}
    output = w.output_until_eof()
    begin, end = output.index("\x1ehr:begin:1\x1e"), output.index("\x1ehr:end:1\x1e")
    assert "evaluating 0.5" in output[begin:end]
    w.close()


def test_each_child_has_its_own_environment_directory_group_and_random_state(server, tmp_path):
    s = server()
    s.ready()
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    workers = [
        s.fork_worker(env={**s.env, "CUDA_VISIBLE_DEVICES": "0"}, cwd=first_dir),
        s.fork_worker(env={**s.env, "CUDA_VISIBLE_DEVICES": "1"}, cwd=second_dir),
    ]
    seen = [w.run("s", describe_process, {"x": 0.0}) for w in workers]
    assert [r["cuda"] for r in seen] == ["0", "1"]
    assert [r["cwd"] for r in seen] == [str(first_dir), str(second_dir)]
    for w, r in zip(workers, seen):
        assert r["pid"] == w.pid and r["pgid"] == w.pid and r["sid"] == w.pid
        assert os.getpgid(w.pid) == w.pid
        # What a fresh interpreter has: the default handlers, no wakeup fd, none of the
        # server's descriptors, write-through stdout.
        assert r["sigint"] and r["sigchld"] and r["wakeup_fd"] == -1
        assert set(r["descriptors"].values()) <= {"tcp", "file"}, r["descriptors"]
        assert r["descriptors"][1] == r["descriptors"][2] == "tcp"
        assert r["stdout_write_through"]
        # Named as a spawned worker is: tools that look for workers by command line find it.
        assert r["name"] == "hyperopt-worker"
        assert r["cmdline"] == [b"-m", b"hyperopt_runner.worker"]
    assert seen[0]["draw"] != seen[1]["draw"], "numpy's global random state was copied from the server"
    for w in workers:
        w.shutdown()
        assert s.exited(w.pid)["code"] == 0
        w.close()


def test_exit_reports_carry_the_code_or_the_signal(server, tmp_path):
    s = server()
    s.ready()
    w = s.fork_worker()
    os.kill(w.pid, signal.SIGKILL)
    assert s.exited(w.pid) == {"type": "exited", "pid": w.pid, "code": None, "signal": signal.SIGKILL}
    w.close()
    script = tmp_path / "three.py"
    script.write_text("import sys\nsys.exit(3)\n")
    driver = s.fork("driver", argv=[str(script)], cwd=tmp_path)
    assert s.exited(driver["pid"])["code"] == 3


def test_a_worker_whose_protocol_socket_closes_mid_trial_takes_its_group_down(server):
    s = server()
    s.ready()
    w = s.fork_worker()
    w.send({"type": "load", "study": "s", "domain": P.dumps_blob(base.Domain(starts_sleeper, SPACE))})
    assert w.recv()["type"] == "loaded"
    w.send({"type": "evaluate", "study": "s", "tid": 1, "spec": P.dumps_blob({"x": 0.0})})
    w.output.settimeout(30)
    seen = b""
    while b"sleeper " not in seen or not seen.rstrip(b"\x1e").endswith(b"\n"):
        seen += w.output.recv(4096)
    sleeper = int(seen.split(b"sleeper ")[1].split()[0])
    w.reader.close()
    w.protocol.close()  # the coordinator is gone
    assert s.exited(w.pid)["signal"] == signal.SIGKILL
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(sleeper):
        time.sleep(0.05)
    assert not _alive(sleeper), "the trial's grandchild outlived its worker"
    w.close()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_driver_gets_stdin_and_the_output_pipes_which_end_with_it(server, tmp_path):
    s = server()
    s.ready()
    script = tmp_path / "driver.py"
    script.write_text(
        "import os, sys\n"
        "line = input()\n"
        "print('read', line, 'in', os.getcwd(), sys.argv[1:], os.environ['HR_TEST_VALUE'])\n"
        "print('named', open('/proc/self/comm').read().strip(), open('/proc/self/cmdline', 'rb').read().split(b'\\0')[2].decode())\n"
        "print('to stderr', file=sys.stderr)\n"
        "print('unflushed')\n"
        "os._exit(4)  # no flush at exit: the streams are write-through\n"
    )
    os.write(s.stdin_w, b"typed\n")
    driver = s.fork("driver", env={**s.env, "HR_TEST_VALUE": "v"}, cwd=tmp_path, argv=[str(script), "a", "b"])
    assert driver["type"] == "forked"
    # A worker forked after the driver holds neither of its pipes.
    w = s.fork_worker()
    assert s.exited(driver["pid"])["code"] == 4
    assert read_until_eof(s.out_r).decode() == f"read typed in {tmp_path} ['a', 'b'] v\nnamed hyperopt-driver hyperopt_runner.launch\nunflushed\n"
    assert read_until_eof(s.err_r).decode() == "to stderr\n"
    assert s.fork("driver", argv=[str(script)])["type"] == "fork_failed"
    w.shutdown()
    s.exited(w.pid)
    w.close()


def test_bad_requests_fail_without_forking(server, tmp_path):
    s = server()
    s.ready()
    reply = s.fork("worker", cwd=tmp_path / "missing", connect={"host": "127.0.0.1", "port": 9, "token": "t"})
    assert reply["type"] == "fork_failed" and "does not exist" in reply["message"]
    assert s.fork("worker")["type"] == "fork_failed"


def test_the_server_exits_on_eof_of_its_control_channel(server):
    s = server()
    s.ready()
    w = s.fork_worker()
    s.control.shutdown(socket.SHUT_WR)
    assert s.proc.wait(timeout=10) == 0
    # Its children are on their own: the worker still answers, and ends on EOF of its socket.
    w.run("s", squared, {"x": 1.0})
    w.protocol.shutdown(socket.SHUT_WR)
    w.output_until_eof()
    w.close()


def test_an_interpreter_without_hyperopt_gets_one_line_that_says_how_to_fix_it(server):
    # -S leaves site-packages (hyperopt, cloudpickle, numpy) off sys.path.
    s = server(python_args=("-S",))
    ready = s.ready()
    assert ready["error"]["code"] == "hyperopt_missing"
    message = ready["error"]["message"]
    assert "\n" not in message
    assert "hyperopt is not installed" in message and "pip install" in message and sys.executable in message
    assert s.proc.wait(timeout=10) != 0
