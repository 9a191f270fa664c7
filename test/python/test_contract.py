"""The contract examples (test/contract/messages) through the Python side of both channels."""

import json
import math
import os

import pytest

from hyperopt_runner import _protocol as P

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MESSAGES = os.path.join(ROOT, "test", "contract", "messages")

DIRECTIONS = {
    "driverToCoordinator": P.DRIVER_TO_COORDINATOR,
    "coordinatorToDriver": P.COORDINATOR_TO_DRIVER,
    "workerToCoordinator": P.WORKER_TO_COORDINATOR,
    "coordinatorToWorker": P.COORDINATOR_TO_WORKER,
    "forkServerToCoordinator": P.FORK_SERVER_TO_COORDINATOR,
    "coordinatorToForkServer": P.COORDINATOR_TO_FORK_SERVER,
}
CHANNELS = {
    "driver.json": (P.DRIVER_TO_COORDINATOR, P.COORDINATOR_TO_DRIVER),
    "worker.json": (P.WORKER_TO_COORDINATOR, P.COORDINATOR_TO_WORKER),
    "forkserver.json": (P.FORK_SERVER_TO_COORDINATOR, P.COORDINATOR_TO_FORK_SERVER),
}


def _examples():
    valid, invalid = [], []
    # The driver, worker and fork server channels have a Python side; the editor's control
    # channel does not.
    for name in ("driver.json", "worker.json", "forkserver.json"):
        with open(os.path.join(MESSAGES, name), encoding="utf-8") as handle:
            data = json.load(handle)
        for key, examples in data.items():
            if key == "invalid":
                for index, example in enumerate(examples):
                    invalid.append(pytest.param(name, example, id=f"{name}:invalid:{index}"))
            else:
                for index, example in enumerate(examples):
                    kind = example.get("type", "?") if isinstance(example, dict) else "?"
                    valid.append(pytest.param(DIRECTIONS[key], example, id=f"{name}:{key}:{index}:{kind}"))
    return valid, invalid


VALID, INVALID = _examples()


def test_examples_are_present():
    assert len(VALID) >= 20 and len(INVALID) >= 10


@pytest.mark.parametrize("direction,example", VALID)
def test_valid_example_is_accepted_and_round_trips(direction, example):
    line = json.dumps(example)
    decoded = P.decode(line, direction)
    assert decoded == example  # the examples carry no fields the schema does not define
    encoded = P.encode(decoded, direction)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1
    assert P.decode(encoded, direction) == decoded


@pytest.mark.parametrize("channel,example", INVALID)
def test_invalid_example_is_rejected_in_both_directions(channel, example):
    for direction in CHANNELS[channel]:
        with pytest.raises(P.ProtocolError):
            P.decode(json.dumps(example), direction)


def test_messages_are_accepted_only_in_their_direction():
    suggest = {"type": "suggest", "study": "s", "count": 1}
    P.validate(suggest, P.COORDINATOR_TO_DRIVER)
    for direction in (P.DRIVER_TO_COORDINATOR, P.WORKER_TO_COORDINATOR, P.COORDINATOR_TO_WORKER):
        with pytest.raises(P.ProtocolError):
            P.validate(suggest, direction)
    # hello exists on both channels, with different fields
    worker_hello = {"type": "hello", "protocol": 1, "pid": 1, "python": "3.11.7", "executable": "/x", "versions": {}}
    P.validate(worker_hello, P.WORKER_TO_COORDINATOR)
    with pytest.raises(P.ProtocolError, match="token"):
        P.validate(worker_hello, P.DRIVER_TO_COORDINATOR)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "suggest", "study": "s", "count": 1.5},
        {"type": "suggest", "study": "s", "count": -2},
        {"type": "suggest", "study": "s", "count": True},
        {"type": "suggest", "study": "s", "count": 2**60},
        {"type": "suggest", "study": 7, "count": 1},
        {"type": "started", "study": "s", "tid": 1},
        {"type": "finished", "study": "s", "tid": 1, "state": "done", "summary": {"status": "ok", "loss": "nan"}},
        {"type": "finished", "study": "s", "tid": 1, "state": "done", "summary": {"status": "ok"}},
        {"type": "finished", "study": "s", "tid": 1, "state": "done", "result": None},
        {"type": "opened", "ref": "1", "study": "s", "parallelism": 2, "journal": "j", "resume": [{"tid": 0, "state": "done", "vals": {"x": [None]}}]},
        {"type": "ended", "study": "s", "reason": "completed", "message": None},
    ],
)
def test_schema_rules(message):
    with pytest.raises(P.ProtocolError):
        P.validate(message, P.COORDINATOR_TO_DRIVER)


def test_integral_floats_are_integers_and_unknown_fields_are_dropped():
    decoded = P.decode('{"type": "suggest", "study": "s", "count": 2.0, "extra": 1}', P.COORDINATOR_TO_DRIVER)
    assert decoded == {"type": "suggest", "study": "s", "count": 2}
    assert isinstance(decoded["count"], int)


def test_nan_literals_and_bad_json_are_refused():
    with pytest.raises(P.ProtocolError):
        P.decode('{"type": "finished", "study": "s", "tid": 1, "state": "done", "startedAt": NaN}', P.COORDINATOR_TO_DRIVER)
    with pytest.raises(P.ProtocolError):
        P.decode("{not json", P.COORDINATOR_TO_DRIVER)
    with pytest.raises(P.ProtocolError):
        P.decode(b"\xff\xfe", P.COORDINATOR_TO_DRIVER)
    with pytest.raises(P.ProtocolError):
        P.encode({"type": "close", "study": "s", "bestLoss": math.nan})


def test_losses_encode_and_decode():
    assert P.loss_to_json(0.25) == 0.25
    assert P.loss_to_json(3) == 3
    assert P.loss_to_json(math.nan) == "NaN"
    assert P.loss_to_json(math.inf) == "Infinity"
    assert P.loss_to_json(-math.inf) == "-Infinity"
    assert P.loss_to_json(None) is None
    assert P.loss_to_json("0.5") is None
    assert P.loss_to_json(True) is None
    import numpy as np

    assert P.loss_to_json(np.float32(0.5)) == 0.5
    assert P.loss_to_json(np.float64("nan")) == "NaN"
    for value in (0.25, math.inf, -math.inf, None):
        assert P.loss_from_json(P.loss_to_json(value)) == value
    assert math.isnan(P.loss_from_json("NaN"))
    message = {"type": "close", "study": "s", "bestLoss": P.loss_to_json(math.inf)}
    assert P.decode(P.encode(message, P.DRIVER_TO_COORDINATOR), P.DRIVER_TO_COORDINATOR) == message


def test_blobs_round_trip():
    import numpy as np

    value = {"loss": 0.5, "status": "ok", "array": np.arange(3), "fn": lambda x: x + 1}
    back = P.loads_blob(P.dumps_blob(value))
    assert back["loss"] == 0.5 and list(back["array"]) == [0, 1, 2] and back["fn"](1) == 2
