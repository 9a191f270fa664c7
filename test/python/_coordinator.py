"""A small coordinator in Python for the driver tests.

It stands in for the TypeScript coordinator (which has its own end-to-end tests against this
runtime): it speaks the driver channel over a real loopback socket, checks the token, and
evaluates each trial in this process, in the order a test chooses (first in first out, or a
whole batch in reverse), so the driver's study engine can be tested on its own.

Every message it receives is validated with ``_protocol`` (driver to coordinator) and every
message it sends is validated before sending (coordinator to driver).
"""

from __future__ import annotations

import collections
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional

from hyperopt_runner import _protocol as P


@dataclass
class StudyState:
    study: str
    ordinal: int
    open: dict
    domain: Any
    parallelism: int
    max_queue_len: int
    queue: Deque[dict] = field(default_factory=collections.deque)
    running: List[dict] = field(default_factory=list)
    outstanding: bool = False
    exhausted: Optional[str] = None
    ended: bool = False
    finished: int = 0
    evaluated: List[dict] = field(default_factory=list)
    suggested: List[dict] = field(default_factory=list)
    close: Optional[dict] = None


class FakeCoordinator:
    def __init__(
        self,
        token: str = "ab" * 32,
        parallelism: int = 1,
        order: str = "fifo",
        resume: Optional[Dict[int, List[dict]]] = None,
        end_after: Optional[tuple] = None,
        drop_after: Optional[int] = None,
    ):
        self.token = token
        self.default_parallelism = parallelism
        self.order = order
        self.resume = resume or {}
        self.end_after = end_after
        self.drop_after = drop_after
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.hellos: List[dict] = []
        self.refused: List[dict] = []
        self.received: List[dict] = []
        self.fatals: List[dict] = []
        self.studies: Dict[str, StudyState] = {}
        self.by_ordinal: Dict[int, StudyState] = {}
        self.errors: List[str] = []
        self.total_finished = 0
        self.lock = threading.Lock()
        self.arrived = threading.Condition()
        self.conn: Optional[socket.socket] = None
        self.stopped = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict:
        return {"HYPEROPT_RUNNER_ENDPOINT": self.endpoint, "HYPEROPT_RUNNER_TOKEN": self.token, "HYPEROPT_RUNNER_RUN": "test-run"}

    def close(self) -> None:
        self.stopped = True
        for sock in (self.conn, self.listener):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # close() alone waits for makefile() readers
                except OSError:
                    pass
                try:
                    sock.close()
                except OSError:
                    pass

    # -- connection ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, message: dict) -> None:
        conn.sendall(P.encode(message, P.COORDINATOR_TO_DRIVER))

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            hello = P.decode(rfile.readline(), P.DRIVER_TO_COORDINATOR)
        except P.ProtocolError as exc:
            self.refused.append({"error": str(exc)})
            conn.close()
            return
        if hello["type"] != "hello" or hello["token"] != self.token:
            self.refused.append(hello)
            conn.close()
            return
        self.hellos.append(hello)
        self.conn = conn
        self._send(conn, {"type": "welcome", "protocol": P.PROTOCOL_VERSION})
        try:
            for line in rfile:
                message = P.decode(line, P.DRIVER_TO_COORDINATOR)
                with self.arrived:
                    self.received.append(message)
                    self.arrived.notify_all()
                self._handle(conn, message)
        except (OSError, ValueError):
            pass
        except Exception:  # a test's failure must be visible, not a hang
            self.errors.append(traceback.format_exc())
            conn.close()

    # -- study logic --------------------------------------------------------------------------

    def _handle(self, conn: socket.socket, message: dict) -> None:
        kind = message["type"]
        if kind == "open":
            self._open(conn, message)
            return
        if kind in ("fatal", "notice"):
            if kind == "fatal":
                self.fatals.append(message)
            return
        st = self.studies[message["study"]]
        if kind == "trials":
            st.queue.extend(message["trials"])
            st.suggested.extend(message["trials"])
            st.outstanding = False
        elif kind == "exhausted":
            st.exhausted = message["reason"]
            st.outstanding = False
        elif kind == "close":
            st.close = message
            return
        self._pump(conn, st)

    def _open(self, conn: socket.socket, message: dict) -> None:
        ordinal = message["ordinal"]
        with self.lock:
            study = f"study-{len(self.studies)}"
        st = StudyState(
            study=study,
            ordinal=ordinal,
            open=message,
            domain=P.loads_blob(message["domain"]),
            parallelism=message["parallelism"] or self.default_parallelism,
            max_queue_len=message["maxQueueLen"],
        )
        self.studies[study] = st
        self.by_ordinal[ordinal] = st
        opened = {
            "type": "opened", "ref": message["ref"], "study": study,
            "parallelism": st.parallelism, "journal": f"/tmp/journal/{study}.jsonl",
        }
        if ordinal in self.resume:
            opened["resume"] = self.resume[ordinal]
        self._send(conn, opened)
        self._pump(conn, st)

    def _pump(self, conn: socket.socket, st: StudyState) -> None:
        while not st.ended:
            while st.queue and len(st.running) < st.parallelism:
                trial = st.queue.popleft()
                self._send(conn, {"type": "started", "study": st.study, "tid": trial["tid"], "slot": f"test/{len(st.running)}"})
                st.running.append(trial)
            room = st.parallelism + st.max_queue_len - 1 - len(st.queue) - len(st.running)
            if st.exhausted is None and not st.outstanding and room > 0:
                st.outstanding = True
                self._send(conn, {"type": "suggest", "study": st.study, "count": room})
                return
            if st.outstanding:
                return
            if st.running:
                victims = [st.running[0]] if self.order == "fifo" else list(reversed(st.running))
                for trial in victims:
                    st.running.remove(trial)
                    self._finish(conn, st, trial)
                    if st.ended or self.stopped:
                        return
                continue
            if st.exhausted is not None and not st.queue:
                st.ended = True
                self._send(conn, {"type": "ended", "study": st.study, "reason": st.exhausted})
            return

    def _finish(self, conn: socket.socket, st: StudyState, trial: dict) -> None:
        spec = P.loads_blob(trial["spec"])
        started = time.time() * 1000
        message: Dict[str, Any] = {"type": "finished", "study": st.study, "tid": trial["tid"]}
        try:
            result = st.domain.evaluate(spec, ctrl=None, attach_attachments=False)
        except Exception as exc:
            message.update(state="error", error={
                "type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc(),
            })
        else:
            message.update(
                state="done",
                summary={"status": result.get("status"), "loss": P.loss_to_json(result.get("loss"))},
                result=P.dumps_blob(result),
            )
        message.update(startedAt=started, endedAt=time.time() * 1000)
        st.evaluated.append({"tid": trial["tid"], "vals": trial["vals"], "state": message["state"]})
        self._send(conn, message)
        st.finished += 1
        self.total_finished += 1
        if self.drop_after is not None and self.total_finished >= self.drop_after:
            self.close()
            return
        if self.end_after is not None and st.finished >= self.end_after[0]:
            self._end_early(conn, st, self.end_after[1], self.end_after[2])

    def _end_early(self, conn: socket.socket, st: StudyState, reason: str, text: str) -> None:
        for trial in list(st.running) + list(st.queue):
            self._send(conn, {
                "type": "finished", "study": st.study, "tid": trial["tid"], "state": "cancel",
                "error": {"type": "Cancelled", "message": text},
            })
        st.running.clear()
        st.queue.clear()
        st.ended = True
        self._send(conn, {"type": "ended", "study": st.study, "reason": reason, "message": text})

    def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> List[dict]:
        """The messages of type ``kind`` received so far, once there are ``count`` of them
        (the driver may return from fmin before its last message has been read here)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len([m for m in self.received if m["type"] == kind]) >= count, timeout)
            return [m for m in self.received if m["type"] == kind]

    def only_study(self) -> StudyState:
        assert len(self.studies) == 1, self.studies
        return next(iter(self.studies.values()))
