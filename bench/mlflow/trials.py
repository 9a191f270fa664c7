"""Benchmark workload: N seeded no-op trials (rand.suggest); prints fmin's own wall time."""
import sys
import time

import numpy as np
from hyperopt import Trials, fmin, hp, rand

n, seed = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=n, trials=Trials(), show_progressbar=False, rstate=np.random.default_rng(seed))
print(f"FMIN_SECONDS {time.perf_counter() - started:.4f}")
