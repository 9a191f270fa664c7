"""The driver's connection to the coordinator: one per process, shared by every fmin call.

A reader thread owns the socket's input and hands each message to the queue of the study (or
the pending ``open``) it belongs to, so fmin calls in several threads each block on their own
queue and wake only for their own messages.
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
import sys
import threading
from typing import Any, Dict, Optional, Tuple

from . import _protocol as P
from ._errors import CoordinatorLost, CoordinatorNotFound

ENV_ENDPOINT = "HYPEROPT_RUNNER_ENDPOINT"
ENV_TOKEN = "HYPEROPT_RUNNER_TOKEN"
ENV_RUN = "HYPEROPT_RUNNER_RUN"

NOT_LAUNCHED_MESSAGE = (
    "this script was not started by hyperopt-runner, so there is no coordinator to run its "
    "trials; run it with `hyperopt-runner run {script}` (or from the editor's \"Run Tuning "
    "Script\") to evaluate trials in parallel"
)


class Lost:
    """Put on every waiting queue when the connection ends."""

    def __init__(self, error: BaseException):
        self.error = error


def _parse_endpoint(endpoint: str) -> Tuple[str, int]:
    host, sep, port = endpoint.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise CoordinatorNotFound(f"{ENV_ENDPOINT}={endpoint!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


def _versions() -> Dict[str, Optional[str]]:
    from ._worker import versions

    return versions()


class Connection:
    def __init__(self, endpoint: str, token: str):
        self.endpoint = endpoint
        host, port = _parse_endpoint(endpoint)
        try:
            self.sock = socket.create_connection((host, port))
        except OSError as exc:
            raise CoordinatorLost(f"cannot reach the hyperopt-runner coordinator at {endpoint}: {exc}") from None
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.rfile = self.sock.makefile("rb")
        self.write_lock = threading.Lock()
        self.lock = threading.Lock()
        self.pending: Dict[str, "queue.Queue[Any]"] = {}
        self.studies: Dict[str, "queue.Queue[Any]"] = {}
        self.refs = itertools.count(1)
        self.lost: Optional[BaseException] = None
        self.closing = False
        self._handshake(token)
        self.reader = threading.Thread(target=self._read_loop, name="hyperopt-runner-driver", daemon=True)
        self.reader.start()

    def _handshake(self, token: str) -> None:
        self.send({
            "type": "hello",
            "protocol": P.PROTOCOL_VERSION,
            "token": token,
            "pid": os.getpid(),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "versions": _versions(),
        })
        try:
            line = self.rfile.readline()
        except OSError:
            line = b""
        if not line:
            self._close_socket()
            raise CoordinatorLost(
                f"the hyperopt-runner coordinator at {self.endpoint} closed the connection without "
                "answering hello: it refused this driver's token"
            )
        reply = P.decode(line, P.COORDINATOR_TO_DRIVER)
        if reply["type"] != "welcome":
            self._close_socket()
            raise P.ProtocolError(f"expected welcome from the coordinator, got {reply['type']}")
        if reply["protocol"] != P.PROTOCOL_VERSION:
            self._close_socket()
            raise P.ProtocolError(
                f"the coordinator speaks protocol {reply['protocol']}, this runtime speaks "
                f"{P.PROTOCOL_VERSION}: update the hyperopt-runner package in {sys.executable}"
            )

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        data = P.encode(message, P.DRIVER_TO_COORDINATOR)
        with self.write_lock:
            if self.lost is not None:
                raise CoordinatorLost(str(self.lost))
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise CoordinatorLost(f"lost the connection to the hyperopt-runner coordinator: {exc}") from None

    def open_study(self, message: dict) -> Tuple["queue.Queue[Any]", dict]:
        """Sends ``open`` and waits for its answer; returns the study's queue and the answer."""
        inbox: "queue.Queue[Any]" = queue.Queue()
        ref = str(next(self.refs))
        with self.lock:
            if self.lost is not None:
                raise CoordinatorLost(str(self.lost))
            self.pending[ref] = inbox
        try:
            self.send(dict(message, ref=ref))
        except BaseException:
            with self.lock:
                self.pending.pop(ref, None)
            raise
        reply = inbox.get()
        if isinstance(reply, Lost):
            raise CoordinatorLost(str(reply.error))
        return inbox, reply

    def release(self, study: str) -> None:
        with self.lock:
            self.studies.pop(study, None)

    # -- receiving ----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        error: BaseException = CoordinatorLost(
            "the hyperopt-runner coordinator closed the connection before the study ended"
        )
        try:
            for line in self.rfile:
                if not line.strip():
                    continue
                try:
                    message = P.decode(line, P.COORDINATOR_TO_DRIVER)
                except P.ProtocolError as exc:
                    sys.stderr.write(f"hyperopt-runner: ignoring an invalid message from the coordinator: {exc}\n")
                    continue
                self._dispatch(message)
        except (OSError, ValueError) as exc:
            if not self.closing:
                error = CoordinatorLost(f"lost the connection to the hyperopt-runner coordinator: {exc}")
        with self.lock:
            self.lost = error
            waiting = list(self.pending.values()) + list(self.studies.values())
            self.pending.clear()
        for inbox in waiting:
            inbox.put(Lost(error))

    def _dispatch(self, message: dict) -> None:
        kind = message["type"]
        with self.lock:
            if kind in ("opened", "open_failed"):
                inbox = self.pending.pop(message["ref"], None)
                if inbox is not None and kind == "opened":
                    # Registered here, before the opener wakes, so the study's first suggest
                    # (which may follow at once) already has somewhere to go.
                    self.studies[message["study"]] = inbox
            elif kind == "welcome":
                return
            else:
                inbox = self.studies.get(message["study"])
        if inbox is None:
            sys.stderr.write(f"hyperopt-runner: ignoring {kind} for an unknown study or request\n")
            return
        inbox.put(message)

    # -- closing ------------------------------------------------------------------------------

    def _close_socket(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._close_socket()


# -- the process's connection --------------------------------------------------------------------

_lock = threading.Lock()
_settings: Optional[Tuple[str, str]] = None
_connection: Optional[Connection] = None


def configure(endpoint: Optional[str], token: Optional[str]) -> None:
    """Where the coordinator is (the launcher calls this after taking the token from the
    environment). Closes any connection made with earlier settings."""
    global _settings, _connection
    with _lock:
        if _connection is not None:
            _connection.close()
            _connection = None
        _settings = (endpoint, token) if endpoint and token else None


def reset() -> None:
    """Forgets the settings and closes the connection (at the end of a run, and in tests)."""
    configure(None, None)


def settings() -> Optional[Tuple[str, str]]:
    if _settings is not None:
        return _settings
    endpoint, token = os.environ.get(ENV_ENDPOINT), os.environ.get(ENV_TOKEN)
    if endpoint and token:
        return endpoint, token
    return None


def not_launched_message() -> str:
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "script.py"
    return NOT_LAUNCHED_MESSAGE.format(script=script)


def send_if_launched(message: dict) -> bool:
    """Sends one message to the coordinator when the script was launched by one; False when it
    was not, or the message could not go (the caller then tells the user itself)."""
    if settings() is None:
        return False
    try:
        get_connection().send(message)
        return True
    except Exception:  # noqa: BLE001 - the caller's fallback covers every way this fails
        return False


def get_connection() -> Connection:
    global _connection
    with _lock:
        if _connection is not None:
            if _connection.lost is not None:
                raise CoordinatorLost(str(_connection.lost))
            return _connection
        found = settings()
        if found is None:
            raise CoordinatorNotFound(not_launched_message())
        _connection = Connection(*found)
        return _connection
