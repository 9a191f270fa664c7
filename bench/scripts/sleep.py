"""Benchmark workload: N trials that each sleep S seconds; prints fmin's own wall time.

With HR_FIRST_CALL_FILE set, the first objective call of the whole run writes the time to that
file (created exclusively, so only the first call, in whichever process, wins).
"""
import os
import sys
import time

from hyperopt import fmin, hp, rand

n, seconds = int(sys.argv[1]), float(sys.argv[2])
first_call_file = os.environ.get("HR_FIRST_CALL_FILE")


def mark_first_call():
    try:
        fd = os.open(first_call_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, repr(time.time()).encode())
    os.close(fd)


def objective(x):
    if first_call_file:
        mark_first_call()
    time.sleep(seconds)
    return x


started = time.perf_counter()
fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=n, show_progressbar=False)
print(f"FMIN_SECONDS {time.perf_counter() - started:.4f}")
