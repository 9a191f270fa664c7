"""The driver, worker and fork server channels' messages, defined once for Python.

Each channel carries newline-delimited JSON: one UTF-8 object per line, never a NaN literal.
The rules here mirror the zod schemas of ``core/src/protocol/*.ts``: a message is accepted
when its ``type`` is one of its direction's types and every field has the right type; fields
the schema does not name are dropped (as zod's objects do), so a decoded message holds only
what the schema defines.

This module imports only the standard library at load time: the worker imports it before
anything else and must start fast.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Callable, Dict, Mapping

from ._errors import RunnerError

PROTOCOL_VERSION = 2

# Directions of travel. A message type may exist in several directions with different fields
# (``hello`` from a driver carries a token, from a worker an executable).
DRIVER_TO_COORDINATOR = "driver_to_coordinator"
COORDINATOR_TO_DRIVER = "coordinator_to_driver"
WORKER_TO_COORDINATOR = "worker_to_coordinator"
COORDINATOR_TO_WORKER = "coordinator_to_worker"
FORK_SERVER_TO_COORDINATOR = "fork_server_to_coordinator"
COORDINATOR_TO_FORK_SERVER = "coordinator_to_fork_server"

# The highest integer JSON numbers carry exactly (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1

# Markers the worker writes to stderr around the output of one trial.
RECORD_SEPARATOR = "\x1e"


def trial_begin_marker(tid: int) -> str:
    return f"{RECORD_SEPARATOR}hr:begin:{tid}{RECORD_SEPARATOR}"


def trial_end_marker(tid: int) -> str:
    return f"{RECORD_SEPARATOR}hr:end:{tid}{RECORD_SEPARATOR}"


class ProtocolError(RunnerError, ValueError):
    """A message that is not valid JSON or does not match its schema."""


# ---------------------------------------------------------------------------------------------
# Field validators. Each takes a value and the path of that value (for the error message) and
# returns the value as the message should hold it, or raises ProtocolError.

Validator = Callable[[Any, str], Any]


def _fail(path: str, expected: str, value: Any) -> ProtocolError:
    shown = json.dumps(value) if _jsonable(value) else repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProtocolError(f"invalid message at {path or '(message)'}: expected {expected}, got {shown}")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    return value


def _number(value: Any, path: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, "a number", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, "a finite number", value)
    return value


def _integer(value: Any, path: str) -> int:
    value = _number(value, path)
    if isinstance(value, float):
        # JSON does not tell 1 from 1.0; JavaScript reads both as the integer 1.
        if not value.is_integer():
            raise _fail(path, "an integer", value)
        value = int(value)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise _fail(path, "a safe integer", value)
    return value


def _positive_integer(value: Any, path: str) -> int:
    value = _integer(value, path)
    if value <= 0:
        raise _fail(path, "a positive integer", value)
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "a boolean", value)
    return value


def _null(value: Any, path: str) -> None:
    if value is not None:
        raise _fail(path, "null", value)
    return None


def _literal(expected: str) -> Validator:
    def check(value: Any, path: str) -> str:
        if value != expected or not isinstance(value, str):
            raise _fail(path, json.dumps(expected), value)
        return value

    return check


def _enum(*options: str) -> Validator:
    allowed = frozenset(options)

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _fail(path, "one of " + ", ".join(options), value)
        return value

    return check


def _nullable(inner: Validator) -> Validator:
    def check(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return check


def _union(*options: Validator, expected: str) -> Validator:
    def check(value: Any, path: str) -> Any:
        for option in options:
            try:
                return option(value, path)
            except ProtocolError:
                continue
        raise _fail(path, expected, value)

    return check


def _array(item: Validator) -> Validator:
    def check(value: Any, path: str) -> list:
        if not isinstance(value, list):
            raise _fail(path, "an array", value)
        return [item(element, f"{path}.{index}") for index, element in enumerate(value)]

    return check


def _record(item: Validator) -> Validator:
    def check(value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        out = {}
        for key, element in value.items():
            if not isinstance(key, str):
                raise _fail(path, "an object with string keys", value)
            out[key] = item(element, f"{path}.{key}" if path else key)
        return out

    return check


class _Optional:
    """Marks a field that may be absent. Absent is not null: null is refused unless nullable."""

    def __init__(self, inner: Validator):
        self.inner = inner


def _object(fields: Mapping[str, Validator | _Optional]) -> Validator:
    def check(value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        out = {}
        for name, spec in fields.items():
            where = f"{path}.{name}" if path else name
            if isinstance(spec, _Optional):
                if name in value:
                    out[name] = spec.inner(value[name], where)
            elif name not in value:
                raise ProtocolError(f"invalid message at {where}: required field missing")
            else:
                out[name] = spec(value[name], where)
        return out

    return check


# ---------------------------------------------------------------------------------------------
# Shared shapes (core/src/protocol/common.ts).

_blob = _string
_loss = _union(_number, _enum("NaN", "Infinity", "-Infinity"), _null, expected='a number, "NaN", "Infinity", "-Infinity" or null')
_summary = _object({"status": _string, "loss": _loss})
_trial_error = _object({"type": _string, "message": _string, "traceback": _Optional(_string)})
_versions = _record(_nullable(_string))
_param_value = _union(_number, _string, _boolean, _null, expected="a number, string, boolean or null")
_val = _union(_number, _string, _boolean, expected="a number, string or boolean")
_vals = _record(_array(_val))
_state = _enum("done", "error", "cancel")

# ---------------------------------------------------------------------------------------------
# Driver channel (core/src/protocol/driver.ts).

_param_descriptor = _object({
    "label": _string,
    "dist": _string,
    "args": _Optional(_record(_number)),
    "options": _Optional(_array(_param_value)),
})

_finished_trial = _object({
    "tid": _integer,
    "state": _state,
    "vals": _vals,
    "summary": _Optional(_summary),
    "result": _Optional(_blob),
    "error": _Optional(_trial_error),
    "startedAt": _Optional(_number),
    "endedAt": _Optional(_number),
})

_new_trial = _object({
    "tid": _integer,
    "spec": _blob,
    "vals": _vals,
    "params": _record(_param_value),
})

EXHAUST_REASONS = ("max_evals", "early_stop_fn", "algo_stopped")
END_REASONS = (
    "completed", "max_evals", "early_stop_fn", "algo_stopped", "loss_threshold",
    "no_progress", "stopped", "cancelled", "timeout", "failed",
)

_DRIVER_TO_COORDINATOR: Dict[str, Validator] = {
    "hello": _object({
        "type": _literal("hello"),
        "protocol": _integer,
        "token": _string,
        "pid": _integer,
        "python": _string,
        "versions": _versions,
    }),
    "open": _object({
        "type": _literal("open"),
        "ref": _string,
        "callSite": _object({"file": _string, "line": _integer}),
        "ordinal": _integer,
        "maxEvals": _nullable(_integer),
        "parallelism": _nullable(_integer),
        "timeout": _nullable(_number),
        "lossThreshold": _nullable(_number),
        "algo": _string,
        "maxQueueLen": _integer,
        "domain": _blob,
        "space": _array(_param_descriptor),
        "priorTrials": _integer,
        "tracking": _Optional(_object({
            "params": _record(_string),
            "activeRunId": _Optional(_string),
            "experimentId": _Optional(_string),
        })),
    }),
    "trials": _object({"type": _literal("trials"), "study": _string, "trials": _array(_new_trial)}),
    "exhausted": _object({"type": _literal("exhausted"), "study": _string, "reason": _enum(*EXHAUST_REASONS)}),
    "close": _object({
        "type": _literal("close"),
        "study": _string,
        "bestLoss": _Optional(_loss),
        "error": _Optional(_string),
        "counts": _Optional(_object({"ok": _integer, "failed": _integer, "cancelled": _integer, "total": _integer})),
    }),
    "fatal": _object({"type": _literal("fatal"), "code": _string, "message": _string}),
    "notice": _object({"type": _literal("notice"), "message": _string}),
}

_COORDINATOR_TO_DRIVER: Dict[str, Validator] = {
    "welcome": _object({"type": _literal("welcome"), "protocol": _integer}),
    "opened": _object({
        "type": _literal("opened"),
        "ref": _string,
        "study": _string,
        "parallelism": _integer,
        "journal": _string,
        "resume": _Optional(_array(_finished_trial)),
        "reservedTids": _Optional(_array(_integer)),
    }),
    "open_failed": _object({"type": _literal("open_failed"), "ref": _string, "code": _string, "message": _string}),
    "suggest": _object({"type": _literal("suggest"), "study": _string, "count": _positive_integer}),
    "started": _object({"type": _literal("started"), "study": _string, "tid": _integer, "slot": _string}),
    "finished": _object({
        "type": _literal("finished"),
        "study": _string,
        "tid": _integer,
        "state": _state,
        "summary": _Optional(_summary),
        "result": _Optional(_blob),
        "error": _Optional(_trial_error),
        "startedAt": _Optional(_number),
        "endedAt": _Optional(_number),
    }),
    "ended": _object({
        "type": _literal("ended"),
        "study": _string,
        "reason": _enum(*END_REASONS),
        "message": _Optional(_string),
    }),
}

# ---------------------------------------------------------------------------------------------
# Worker channel (core/src/protocol/worker.ts).

_WORKER_TO_COORDINATOR: Dict[str, Validator] = {
    "hello": _object({
        "type": _literal("hello"),
        "protocol": _integer,
        "pid": _integer,
        "python": _string,
        "executable": _string,
        "versions": _versions,
    }),
    "loaded": _object({"type": _literal("loaded"), "study": _string}),
    "load_failed": _object({"type": _literal("load_failed"), "study": _string, "error": _trial_error}),
    "result": _object({
        "type": _literal("result"),
        "study": _string,
        "tid": _integer,
        "outcome": _enum("ok", "error"),
        "summary": _Optional(_summary),
        "result": _Optional(_blob),
        "error": _Optional(_trial_error),
        "startedAt": _number,
        "endedAt": _number,
        "tracking": _Optional(_object({"runId": _nullable(_string), "error": _Optional(_string)})),
    }),
}

_trial_run = _object({
    "runId": _string,
    "experimentId": _string,
    "runName": _string,
    "userId": _string,
    "startTime": _number,
    "artifactUri": _string,
    "lifecycleStage": _string,
    "status": _string,
    "tags": _record(_string),
})

_COORDINATOR_TO_WORKER: Dict[str, Validator] = {
    "load": _object({"type": _literal("load"), "study": _string, "domain": _blob}),
    "evaluate": _object({
        "type": _literal("evaluate"),
        "study": _string,
        "tid": _integer,
        "spec": _blob,
        "env": _Optional(_record(_string)),
        "tracking": _Optional(_object({"uri": _string, "token": _Optional(_string)})),
    }),
    "run": _object({
        "type": _literal("run"),
        "study": _string,
        "tid": _integer,
        "run": _nullable(_trial_run),
        "error": _Optional(_string),
    }),
    "shutdown": _object({"type": _literal("shutdown")}),
}

# ---------------------------------------------------------------------------------------------
# Fork server channel (core/src/protocol/forkServer.ts).

_FORK_SERVER_TO_COORDINATOR: Dict[str, Validator] = {
    "ready": _object({
        "type": _literal("ready"),
        "pid": _integer,
        "python": _string,
        "executable": _string,
        "versions": _versions,
        "error": _Optional(_object({"code": _string, "message": _string})),
    }),
    "forked": _object({"type": _literal("forked"), "id": _integer, "pid": _integer}),
    "fork_failed": _object({"type": _literal("fork_failed"), "id": _integer, "message": _string}),
    "exited": _object({
        "type": _literal("exited"),
        "pid": _integer,
        "code": _nullable(_integer),
        "signal": _nullable(_integer),
    }),
}

_COORDINATOR_TO_FORK_SERVER: Dict[str, Validator] = {
    "fork": _object({
        "type": _literal("fork"),
        "id": _integer,
        "role": _enum("worker", "driver"),
        "env": _record(_string),
        "cwd": _string,
        "argv": _Optional(_array(_string)),
        "connect": _Optional(_object({"host": _string, "port": _integer, "token": _string})),
    }),
}

_CHANNELS: Dict[str, Dict[str, Validator]] = {
    DRIVER_TO_COORDINATOR: _DRIVER_TO_COORDINATOR,
    COORDINATOR_TO_DRIVER: _COORDINATOR_TO_DRIVER,
    WORKER_TO_COORDINATOR: _WORKER_TO_COORDINATOR,
    COORDINATOR_TO_WORKER: _COORDINATOR_TO_WORKER,
    FORK_SERVER_TO_COORDINATOR: _FORK_SERVER_TO_COORDINATOR,
    COORDINATOR_TO_FORK_SERVER: _COORDINATOR_TO_FORK_SERVER,
}

DIRECTIONS = tuple(_CHANNELS)


def message_types(direction: str) -> tuple:
    """The message types that may travel in ``direction``."""
    return tuple(_channel(direction))


def _channel(direction: str) -> Dict[str, Validator]:
    try:
        return _CHANNELS[direction]
    except KeyError:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(_CHANNELS)}") from None


def validate(message: Any, direction: str) -> dict:
    """Checks a decoded JSON value against ``direction``'s messages; returns the clean message."""
    schemas = _channel(direction)
    if not isinstance(message, dict):
        raise _fail("", "an object", message)
    kind = message.get("type")
    schema = schemas.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ProtocolError(
            f"invalid message at type: expected one of {', '.join(schemas)}, got {json.dumps(kind) if _jsonable(kind) else repr(kind)}"
        )
    return schema(message, "")


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"not JSON: {name} is not a JSON value")


def decode(line: str | bytes, direction: str) -> dict:
    """Parses one line of JSON and validates it as a message travelling in ``direction``."""
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"not UTF-8: {exc}") from None
    try:
        raw = json.loads(line, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r} ({exc})") from None
    return validate(raw, direction)


def encode(message: Mapping[str, Any], direction: str | None = None) -> bytes:
    """One message as one line of JSON (UTF-8, newline-terminated).

    With ``direction`` the message is validated first, so a message the peer would refuse is
    never sent.
    """
    if direction is not None:
        message = validate(dict(message), direction)
    try:
        text = json.dumps(message, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"cannot encode message: {exc}") from None
    return (text + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Losses and blobs.

def loss_to_json(value: Any) -> float | int | str | None:
    """A loss as the protocol carries it: a finite number, "NaN", "Infinity", "-Infinity" or null.

    Values that are not numbers (or cannot be read as one) have no loss: null.
    """
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else number
    return number


def loss_from_json(value: Any) -> float | None:
    if value is None:
        return None
    if value == "NaN":
        return math.nan
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return float(value)


def dumps_blob(obj: Any) -> str:
    """base64 of the cloudpickle of ``obj``."""
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(obj)).decode("ascii")


def loads_blob(blob: str) -> Any:
    import pickle

    return pickle.loads(base64.b64decode(blob.encode("ascii"), validate=True))


__all__ = [
    "COORDINATOR_TO_DRIVER",
    "COORDINATOR_TO_WORKER",
    "DIRECTIONS",
    "DRIVER_TO_COORDINATOR",
    "END_REASONS",
    "EXHAUST_REASONS",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "WORKER_TO_COORDINATOR",
    "decode",
    "dumps_blob",
    "encode",
    "loads_blob",
    "loss_from_json",
    "loss_to_json",
    "message_types",
    "trial_begin_marker",
    "trial_end_marker",
    "validate",
]
