"""The worker: evaluates trials of pickled hyperopt domains, one at a time, in its main thread.

It speaks the worker channel (docs/protocols.md) over stdin and a private duplicate of its
original stdout. File descriptors 1 and 2 both point at stderr while it runs, so whatever an
objective prints, from Python or from C, is trial output and never protocol. A worker forked
from the fork server (``_forkserver``) runs the same loop over a loopback socket instead, with
a second socket as its fds 1 and 2.

Startup is kept light: hyperopt (and with it numpy) is imported only when the first domain is
unpickled.
"""

from __future__ import annotations

import gc
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

from . import _protocol as P
from ._tracking import RunMailbox, TrialRun

# How many studies' domains a worker keeps loaded (a slot usually serves one study at a time;
# a few more cover concurrent fmin calls in one script).
DOMAIN_CACHE_SIZE = 4

_EOF = object()


def _normalize(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _installed_versions(names: tuple) -> dict:
    """Versions of installed distributions, read from their ``*.dist-info`` / ``*.egg-info``
    folder names along ``sys.path`` (importlib.metadata takes a tenth of a second to import)."""
    wanted = {_normalize(name): name for name in names}
    found: dict = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not (item.endswith(".dist-info") or item.endswith(".egg-info")):
                continue
            stem = item.rsplit(".", 1)[0]
            dist, sep, rest = stem.partition("-")
            if not sep:
                continue
            original = wanted.get(_normalize(dist))
            if original is not None and original not in found:
                found[original] = rest.split("-", 1)[0] if item.endswith(".egg-info") else rest
        if len(found) == len(wanted):
            break
    return {name: found.get(name) for name in names}


def versions() -> dict:
    """Versions of the packages a trial depends on, read without importing them."""
    return _installed_versions(("hyperopt", "cloudpickle", "numpy", "mlflow"))


def python_version() -> str:
    return "%d.%d.%d" % sys.version_info[:3]


def type_name(exc_type: type) -> str:
    """``ValueError`` for builtins, ``package.module.Name`` for the rest."""
    module = getattr(exc_type, "__module__", None)
    qualname = getattr(exc_type, "__qualname__", exc_type.__name__)
    if module in (None, "builtins", "__builtin__"):
        return qualname
    return f"{module}.{qualname}"


def describe_exception(exc: BaseException) -> dict:
    import traceback

    try:
        message = str(exc)
    except Exception:  # an exception whose __str__ fails still has a type and a traceback
        message = repr(exc)
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        text = f"{type_name(type(exc))}: {message}\n"
    return {"type": type_name(type(exc)), "message": message, "traceback": text}


def summarize_result(result: Any) -> dict:
    """The part of a result the coordinator reads: status and loss."""
    status = result.get("status") if isinstance(result, dict) else None
    loss = result.get("loss") if isinstance(result, dict) else None
    return {"status": status if isinstance(status, str) else str(status), "loss": P.loss_to_json(loss)}


def pickle_result(result: Any) -> str:
    """The result as a blob; a clear error naming the part that cannot be pickled."""
    try:
        return P.dumps_blob(result)
    except Exception as exc:
        culprit = None
        if isinstance(result, dict):
            import cloudpickle

            for key, value in result.items():
                try:
                    cloudpickle.dumps(value)
                except Exception:
                    culprit = (key, value)
                    break
        if culprit is not None:
            key, value = culprit
            what = type_name(type(value))
            message = (
                f"the objective's result cannot be pickled: result[{key!r}] is a {what} object ({exc}); "
                "return only picklable values (numbers, strings, arrays, plain objects)"
            )
        else:
            message = f"the objective's result cannot be pickled ({type_name(type(exc))}: {exc})"
        raise UnpicklableResult(message) from exc


class UnpicklableResult(Exception):
    """The objective returned a result that cannot travel back to the driver."""


class _Env:
    """Sets environment variables for one trial and puts the previous values back afterwards."""

    def __init__(self, env: Optional[dict]):
        self.env = env or {}
        self.saved: dict = {}

    def __enter__(self) -> "_Env":
        for key, value in self.env.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    _flush_c_stdio()


_libc_fflush: Optional[Callable] = None
_libc_checked = False


def _flush_c_stdio() -> None:
    """Flushes C-level stdio buffers, so output printed by extensions lands inside the markers."""
    global _libc_fflush, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        if os.name == "posix":
            try:
                import ctypes

                _libc_fflush = ctypes.CDLL(None).fflush
            except Exception:
                _libc_fflush = None
    if _libc_fflush is not None:
        try:
            _libc_fflush(None)
        except Exception:
            pass


def _kill_everything() -> None:
    """The coordinator is gone while a trial runs: take the trial's whole process tree down."""
    if os.name == "posix":
        try:
            if os.getpgrp() == os.getpid():
                import signal

                os.killpg(os.getpgrp(), signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)


class Worker:
    def __init__(self, proto_in: Any, proto_out: Any):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.inbox: "queue.Queue[Any]" = queue.Queue()
        self.domains: "OrderedDict[str, Any]" = OrderedDict()
        self.lock = threading.Lock()
        self.in_trial = False
        self.eof = False
        # True while the imports after hello run: nothing has been evaluated or logged yet.
        self.preloading = False
        self.write_lock = threading.Lock()
        # Child runs of tracked trials, sent by the coordinator as it creates them.
        self.runs = RunMailbox()

    # -- protocol I/O -------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        data = P.encode(message, P.WORKER_TO_COORDINATOR)
        with self.write_lock:
            self.proto_out.write(data)
            self.proto_out.flush()

    def read_loop(self) -> None:
        """Reader thread: queues every message; on EOF ends the worker (and a running trial)."""
        while True:
            try:
                line = self.proto_in.readline()
            except (OSError, ValueError):
                line = b""
            if not line:
                with self.lock:
                    self.eof = True
                    running = self.in_trial
                    warming = self.preloading
                if running:
                    _kill_everything()
                if warming:
                    # Told to go before its imports finished (the script or its study ended
                    # first): it has run nothing and has nothing to write, so it does not wait.
                    os._exit(0)
                self.inbox.put(_EOF)
                return
            if not line.strip():
                continue
            try:
                message = P.decode(line, P.COORDINATOR_TO_WORKER)
            except P.ProtocolError as exc:
                sys.stderr.write(f"hyperopt-runner worker: ignoring an invalid message: {exc}\n")
                sys.stderr.flush()
                continue
            if message["type"] == "run":
                # For the trial running now, which may be waiting for it: not queued behind it.
                self.runs.post(message)
                continue
            self.inbox.put(message)

    # -- message handlers ---------------------------------------------------------------------

    def hello(self) -> None:
        self.send({
            "type": "hello",
            "protocol": P.PROTOCOL_VERSION,
            "pid": os.getpid(),
            "python": python_version(),
            "executable": sys.executable,
            "versions": versions(),
        })

    def load(self, message: dict) -> None:
        study = message["study"]
        if study in self.domains:
            self.domains.move_to_end(study)
            self.send({"type": "loaded", "study": study})
            return
        try:
            domain = P.loads_blob(message["domain"])
        except BaseException as exc:  # noqa: BLE001 - any failure is the load's result
            self.send({"type": "load_failed", "study": study, "error": describe_exception(exc)})
            return
        self.domains[study] = domain
        while len(self.domains) > DOMAIN_CACHE_SIZE:
            self.domains.popitem(last=False)
        self.send({"type": "loaded", "study": study})

    def evaluate(self, message: dict) -> None:
        study, tid = message["study"], message["tid"]
        reply: dict = {"type": "result", "study": study, "tid": tid}
        started = time.time() * 1000.0
        with self.lock:
            if self.eof:
                _kill_everything()
            self.in_trial = True
        trial_run = None
        try:
            _flush_all()
            os.write(2, P.trial_begin_marker(tid).encode())
            if message.get("tracking"):
                self.runs.begin(study, tid)
                trial_run = TrialRun(message["tracking"], study, tid, self.runs)
                trial_run.begin()
            try:
                domain = self.domains.get(study)
                if domain is None:
                    raise StudyNotLoaded(f"study {study!r} was not loaded in this worker (send load first)")
                spec = P.loads_blob(message["spec"])
                with _Env(message.get("env")):
                    result = run_trial(domain, spec, tid)
                reply["summary"] = summarize_result(result)
                reply["result"] = pickle_result(result)
                reply["outcome"] = "ok"
            except BaseException as exc:  # noqa: BLE001 - sys.exit() in an objective fails the trial only
                reply.pop("summary", None)
                reply.pop("result", None)
                reply["outcome"] = "error"
                reply["error"] = describe_exception(exc)
            finally:
                reply["endedAt"] = time.time() * 1000.0
                if trial_run is not None:
                    tracking = trial_run.finish("FINISHED" if reply.get("outcome") == "ok" else "FAILED")
                    if tracking is not None:
                        reply["tracking"] = tracking
                _flush_all()
                os.write(2, P.trial_end_marker(tid).encode())
        finally:
            with self.lock:
                self.in_trial = False
        reply["startedAt"] = started
        self.send(reply)

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> int:
        reader = threading.Thread(target=self.read_loop, name="hyperopt-runner-stdin", daemon=True)
        reader.start()
        with self.lock:
            self.preloading = True
        self.hello()
        # Warm up while the coordinator waits for the script to reach fmin: unpickling a domain
        # needs hyperopt, whose import (scipy.stats) costs seconds that would otherwise land on
        # the first trial, inside the study's timeout.
        _preload()
        with self.lock:
            self.preloading = False
        while True:
            message = self.inbox.get()
            if message is _EOF:
                return 0
            kind = message["type"]
            if kind == "shutdown":
                return 0
            if kind == "load":
                self.load(message)
            elif kind == "evaluate":
                self.evaluate(message)


def _preload() -> None:
    # A worker forked from the fork server already holds hyperopt and cloudpickle: their imports
    # here cost a lookup in sys.modules. Not mlflow: an objective that uses it imports it with its
    # module, the rest never pay for it.
    if os.environ.get("HYPEROPT_RUNNER_NO_PRELOAD"):
        return
    try:
        import cloudpickle  # noqa: F401
        import hyperopt  # noqa: F401
    except Exception:
        # The load that needs them reports the error with its traceback.
        pass


class StudyNotLoaded(Exception):
    """An evaluate arrived for a study this worker has no domain for."""


def run_trial(domain: Any, spec: dict, tid: int) -> Any:
    """Evaluates one point the way SparkTrials' executors do.

    A result hyperopt cannot read (None, a string, a dict without "loss") fails the trial with the
    exception hyperopt raises for it, its message saying what came back and what to return instead
    of hyperopt's own ("'NoneType' object is not iterable").
    """
    ctrl = None
    if getattr(domain, "pass_expr_memo_ctrl", False):
        ctrl = _local_ctrl(spec, tid)
    returned: list = []
    objective = domain.fn

    def recording(*args: Any, **kwargs: Any) -> Any:
        value = objective(*args, **kwargs)
        returned.append(value)
        return value

    domain.fn = recording
    try:
        return domain.evaluate(spec, ctrl=ctrl, attach_attachments=False)
    except Exception as error:
        if not returned:
            raise  # the objective's own exception
        raise _unreadable_result(error, returned[0]) from error
    finally:
        domain.fn = objective


def _unreadable_result(error: Exception, value: Any) -> Exception:
    if isinstance(value, dict):
        if "status" not in value:
            what = 'a dict without "status"'
        elif value.get("status") == "ok":
            what = f'a dict with status "ok" and loss {_short(value.get("loss", "missing"))}'
        else:
            what = f'a dict with status {_short(value.get("status"))}'
    else:
        what = f"{type(value).__name__} {_short(value)}" if value is not None else "None"
    message = (
        f"the objective returned {what}; hyperopt needs a number (the loss) or a dict with "
        '"status": "ok" and a numeric "loss" (or "status": "fail")'
    )
    kind = _SentenceKeyError if type(error) is KeyError else type(error)
    # hyperopt's InvalidLoss and InvalidResultStatus take the result, not a message.
    unreadable = kind.__new__(kind)
    Exception.__init__(unreadable, message)
    if hasattr(error, "result"):
        unreadable.result = error.result
    return unreadable


class _SentenceKeyError(KeyError):
    """The KeyError hyperopt raises for a dict without "status", carrying a sentence: a plain
    KeyError's str() quotes its argument, as it would a key."""

    __module__ = "builtins"
    __qualname__ = "KeyError"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _local_ctrl(spec: dict, tid: int) -> Any:
    """A Ctrl for objectives that take (expr, memo, ctrl).

    The driver's Trials object is in another process; this Ctrl works on a throwaway Trials
    that holds only the current trial, so ``ctrl.current_trial``, ``checkpoint`` and
    ``attachments`` behave, but nothing written through them reaches the driver.
    """
    from hyperopt import base
    from hyperopt.utils import coarse_utcnow

    trials = base.Trials()
    now = coarse_utcnow()
    doc = {
        "state": base.JOB_STATE_RUNNING,
        "tid": tid,
        "spec": None,
        "result": {"status": base.STATUS_RUNNING},
        "misc": {
            "tid": tid,
            "cmd": ("domain_attachment", "FMinIter_Domain"),
            "workdir": None,
            "idxs": {label: [tid] for label in spec},
            "vals": {label: [value] for label, value in spec.items()},
        },
        "exp_key": None,
        "owner": None,
        "version": 0,
        "book_time": now,
        "refresh_time": now,
    }
    trials._insert_trial_docs([doc])
    trials.refresh()
    return base.Ctrl(trials, current_trial=doc)


def main() -> int:
    # Keep private copies of the protocol's pipes, then point stdout at stderr and stdin at
    # /dev/null: prints (Python or C) become trial output and nothing can read the protocol.
    proto_out_fd = os.dup(1)
    proto_in_fd = os.dup(0)
    try:
        sys.stdout.flush()
    except Exception:
        pass
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        sys.stdin = open(os.devnull, "r")
    except OSError:
        pass
    return serve(os.fdopen(proto_in_fd, "rb"), os.fdopen(proto_out_fd, "wb"))


def serve(proto_in: Any, proto_out: Any) -> int:
    """Runs the worker loop over a protocol stream: the spawned worker's private pipes, or the
    socket a forked worker connected (``_forkserver``), whose fds 1 and 2 are its output."""
    worker = Worker(proto_in, proto_out)
    try:
        code = worker.run()
    except KeyboardInterrupt:
        code = 130
    _flush_all()
    # The objective's modules stay to the end: the exit need not collect them object by object
    # (with numpy and scipy loaded that is a quarter of a second per worker, all at once).
    gc.freeze()
    return code
