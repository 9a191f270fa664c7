"""The worker's background logger: writes in order, waits instead of dropping, drains boundedly."""
import threading
import time

from hyperopt_runner._tracking import TrialLogger


def test_writes_run_in_order_and_drain_waits_for_them():
    done = []
    logger = TrialLogger(lambda message: None)
    for n in range(5):
        logger.submit(lambda n=n: (time.sleep(0.01), done.append(n)))
    assert logger.drain(10) is True
    assert done == [0, 1, 2, 3, 4]


def test_a_full_queue_makes_the_submitter_wait_and_nothing_is_dropped():
    gate = threading.Event()
    done = []
    logger = TrialLogger(lambda message: None, capacity=1)
    logger.submit(lambda: (gate.wait(10), done.append("first")))  # taken by the thread, blocks it
    time.sleep(0.1)
    logger.submit(lambda: done.append("second"))  # fills the queue
    third = threading.Thread(target=lambda: logger.submit(lambda: done.append("third")))
    third.start()
    third.join(0.3)
    assert third.is_alive(), "a submit to a full queue waits"
    gate.set()
    third.join(10)
    assert logger.drain(10) is True
    assert done == ["first", "second", "third"]


def test_drain_gives_up_after_its_bound_and_a_failing_write_does_not_stop_the_rest():
    done = []
    logger = TrialLogger(lambda message: None)
    logger.submit(lambda: 1 / 0)
    logger.submit(lambda: done.append("after the failure"))
    logger.submit(lambda: time.sleep(5))
    started = time.monotonic()
    assert logger.drain(0.5) is False
    assert time.monotonic() - started < 3
    assert done == ["after the failure"]


def test_a_logger_that_never_ran_drains_at_once():
    assert TrialLogger(lambda message: None).drain(0) is True
