"""Benchmark workload: as bench/scripts/sleep.py, but the script waits W seconds before calling
fmin, so the hosts' workers have finished starting (importing hyperopt) when the study begins."""
import sys
import time

from hyperopt import fmin, hp, rand

n, seconds, wait = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])


def objective(x):
    time.sleep(seconds)
    return x


time.sleep(wait)
started = time.perf_counter()
fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=n, show_progressbar=False)
print(f"FMIN_SECONDS {time.perf_counter() - started:.4f}")
