"""Benchmark workload: N trials of an objective that returns at once; prints fmin's own wall time."""
import sys
import time

from hyperopt import Trials, fmin, hp, rand, tpe

n, algo = int(sys.argv[1]), {"rand": rand.suggest, "tpe": tpe.suggest}[sys.argv[2]]
started = time.perf_counter()
fmin(lambda x: x, hp.uniform("x", 0, 1), algo=algo, max_evals=n, trials=Trials(), show_progressbar=False)
print(f"FMIN_SECONDS {time.perf_counter() - started:.4f}")
