"""Benchmark workload: N trials that each sleep S seconds; prints fmin's own wall time."""
import sys
import time

from hyperopt import fmin, hp, rand

n, seconds = int(sys.argv[1]), float(sys.argv[2])


def objective(x):
    time.sleep(seconds)
    return x


started = time.perf_counter()
fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=n, show_progressbar=False)
print(f"FMIN_SECONDS {time.perf_counter() - started:.4f}")
