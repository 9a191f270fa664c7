"""The fork server: one interpreter that imports hyperopt, cloudpickle and numpy once, then forks
a run's local workers and its driver from that warm state (docs/protocols.md, fork server channel).

File descriptors, as the coordinator opens them:

- 0: the driver's stdin (the terminal for the CLI, /dev/null for the editor's service);
- 1: unused (/dev/null); 2: diagnostics, read by the coordinator;
- 3: the control channel, newline-delimited JSON both ways (a socketpair);
- 4 and 5: the driver's stdout and stderr, pipes the coordinator reads.

The server runs no thread of its own, so a fork never copies a lock some other thread held. It
learns that a child ended from SIGCHLD, through the wakeup fd its select loop watches, and
reports every exit it reaps. A child leaves the loop by returning what it is to run; it then
runs as a fresh ``python -m hyperopt_runner.worker`` or ``.launch`` would, in its own session.
"""

from __future__ import annotations

import io
import json
import gc
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any, Callable, List, Optional

from . import _launch
from . import _protocol as P
from . import _worker

CONTROL_FD = 3
DRIVER_STDOUT_FD = 4
DRIVER_STDERR_FD = 5

ChildTask = Callable[[], int]


def _say(message: str) -> None:
    """A diagnostic line on the server's stderr (the coordinator shows it)."""
    try:
        sys.stderr.write(f"hyperopt-runner fork server: {message}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _import_warm_modules() -> Optional[str]:
    """Imports what every child needs; a one-line problem when hyperopt is unusable."""
    problem = _launch.check_requirements()
    if problem is not None:
        return problem
    try:
        import numpy  # noqa: F401 - hyperopt needs it; imported here so no child pays for it
    except ImportError:
        pass
    return None


def _on_sigchld(signum: int, frame: Any) -> None:
    # The C-level handler has written to the wakeup fd; the select loop reaps.
    pass


class ForkServer:
    def __init__(self) -> None:
        self.pending = b""
        self.driver_forked = False
        self.startup_cwd = os.getcwd()
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)

    # -- control channel ----------------------------------------------------------------------

    def send(self, message: dict) -> None:
        data = memoryview(P.encode(message, P.FORK_SERVER_TO_COORDINATOR))
        while data:
            written = os.write(CONTROL_FD, data)
            data = data[written:]

    def serve(self) -> Optional[ChildTask]:
        """The select loop. Returns None in the server on EOF of the control channel, and what
        to run in a child that was just forked."""
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _on_sigchld)
        while True:
            readable, _, _ = select.select([CONTROL_FD, self.wakeup_r], [], [])
            if self.wakeup_r in readable:
                self._drain_wakeup()
                self.reap()
            if CONTROL_FD not in readable:
                continue
            try:
                data = os.read(CONTROL_FD, 65536)
            except OSError:
                data = b""
            if not data:
                # The coordinator is gone or done: children carry on and end on their own
                # (workers on EOF of their sockets, the driver on its coordinator connection).
                return None
            self.pending += data
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                if not line.strip():
                    continue
                task = self.handle(line)
                if task is not None:
                    return task

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup_r, 512):
                pass
        except BlockingIOError:
            pass

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            self.send({"type": "exited", "pid": pid, "code": code, "signal": signum})

    # -- forking ------------------------------------------------------------------------------

    def handle(self, line: bytes) -> Optional[ChildTask]:
        try:
            request = P.decode(line, P.COORDINATOR_TO_FORK_SERVER)
        except P.ProtocolError as exc:
            _say(f"ignoring an invalid request: {exc}")
            return None
        ident, role = request["id"], request["role"]
        problem = None
        if role == "driver" and self.driver_forked:
            problem = "this fork server has already started its driver"
        elif role == "driver" and not request.get("argv"):
            problem = "a driver needs argv (the script and its arguments)"
        elif role == "worker" and "connect" not in request:
            problem = "a worker needs connect (where its sockets go)"
        elif not os.path.isdir(request["cwd"]):
            problem = f"the working directory {request['cwd']} does not exist"
        if problem is not None:
            self.send({"type": "fork_failed", "id": ident, "message": problem})
            return None
        # Nothing of the server's own may sit in a buffer the child would write out again.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"type": "fork_failed", "id": ident, "message": f"fork failed: {exc}"})
            return None
        if pid == 0:
            try:
                return self._become_child(request)
            except BaseException:  # noqa: BLE001 - a child must never return to the server loop
                traceback.print_exc()
                try:
                    sys.stderr.flush()
                except Exception:
                    pass
                os._exit(1)
        if role == "driver":
            # Only the driver (and what it starts) may hold its output pipes, so the coordinator
            # sees their EOF when it is gone, as with a spawned driver.
            self.driver_forked = True
            _close(DRIVER_STDOUT_FD, DRIVER_STDERR_FD)
        self.send({"type": "forked", "id": ident, "pid": pid})
        return None

    def _become_child(self, request: dict) -> ChildTask:
        # Its own session and process group, as a `detached` spawn has: a cancel kills the
        # group, the trial's grandchildren with it.
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _close(CONTROL_FD, self.wakeup_r, self.wakeup_w)
        if request["role"] == "driver":
            _name_process("driver", "hyperopt_runner.launch", request["argv"])
            return self._become_driver(request)
        _name_process("worker", "hyperopt_runner.worker", [])
        return self._become_worker(request)

    def _become_driver(self, request: dict) -> ChildTask:
        os.dup2(DRIVER_STDOUT_FD, 1)
        os.dup2(DRIVER_STDERR_FD, 2)
        _close(DRIVER_STDOUT_FD, DRIVER_STDERR_FD)
        self._enter(request)
        argv = list(request["argv"])
        return lambda: _launch.main(argv)

    def _become_worker(self, request: dict) -> ChildTask:
        _close(DRIVER_STDOUT_FD, DRIVER_STDERR_FD)
        connect = request["connect"]
        protocol = _connect(connect, "protocol")
        output = _connect(connect, "output")
        # Whatever the objective prints, from Python or from C, goes down the output socket.
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        output.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self._enter(request)
        sys.stdin = open(os.devnull, "r")
        return lambda: _worker.serve(protocol.makefile("rb"), protocol.makefile("wb"))

    def _enter(self, request: dict) -> None:
        """What a fresh interpreter started with this request would have: its environment,
        working directory, write-through stdout and stderr, and a random state of its own."""
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        # `python -m` puts its working directory first on sys.path.
        if sys.path and sys.path[0] == self.startup_cwd:
            sys.path[0] = os.getcwd()
        _fresh_stdio()
        # Python's random reseeds itself after a fork; numpy's legacy global state does not.
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            try:
                numpy.random.seed()
            except Exception:
                pass


def _name_process(role: str, module: str, args: List[str]) -> None:
    """Names a child after what it runs, as the spawned one would be named: its name (``ps -o
    comm``, top) and, in the room the server's own command line leaves, its command line
    (``ps``, tools that look for ``hyperopt_runner.worker``). The coordinator passes the
    server the script and its arguments, which it ignores, so the driver's fit."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, f"hyperopt-{role}".encode()[:15], 0, 0, 0)  # PR_SET_NAME
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        # proc(5) numbers the fields from 1, and the text after ")" starts at field 3.
        start, end = int(fields[48 - 3]), int(fields[49 - 3])
        with open("/proc/self/cmdline", "rb") as handle:
            executable = handle.read().split(b"\0", 1)[0]
        words = [executable, b"-m", module.encode()]
        for arg in args:  # whole arguments only, while they fit
            if sum(len(w) + 1 for w in words) + len(arg.encode()) + 1 > end - start:
                break
            words.append(arg.encode())
        title = b"\0".join(words) + b"\0"
        if len(title) <= end - start:
            ctypes.memmove(start, title.ljust(end - start, b"\0"), end - start)
    except Exception:
        pass


def _connect(connect: dict, channel: str) -> socket.socket:
    sock = socket.create_connection((connect["host"], connect["port"]))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall((json.dumps({"token": connect["token"], "channel": channel}) + "\n").encode())
    return sock


def _fresh_stdio() -> None:
    """New sys.stdout and sys.stderr over fds 1 and 2, as `python -u` makes them (write-through,
    no buffer of their own); the server's were flushed before the fork."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, f"__{name}__") or getattr(sys, name)
        raw = io.FileIO(fd, "w", closefd=False)
        raw.name = f"<{name}>"  # type: ignore[misc]
        stream = io.TextIOWrapper(
            raw,  # type: ignore[arg-type]
            encoding=getattr(old, "encoding", None) or "utf-8",
            errors=getattr(old, "errors", None) or ("backslashreplace" if fd == 2 else "strict"),
            newline="\n",
            line_buffering=False,
            write_through=True,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def main() -> int:
    server = ForkServer()
    problem = _import_warm_modules()
    ready: dict = {
        "type": "ready",
        "pid": os.getpid(),
        "python": _worker.python_version(),
        "executable": sys.executable,
        "versions": _worker.versions(),
    }
    if problem is not None:
        ready["error"] = {"code": "hyperopt_missing", "message": problem}
    server.send(ready)
    if problem is not None:
        return 1
    # What the imports made lives as long as the process: out of the collector's sight, its pages
    # stay shared with the children (no collection writes to them), and neither the server nor a
    # child spends a collection on it when it exits (a quarter of a second each with hyperopt).
    gc.freeze()
    task = server.serve()
    return 0 if task is None else task()
