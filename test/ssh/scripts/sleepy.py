"""Trials that sleep and report where they ran; arguments: max_evals, seconds per trial."""
import os
import sys
import time

from hyperopt import fmin, hp, rand

max_evals, seconds = int(sys.argv[1]), float(sys.argv[2])


def objective(x):
    print(f"sleeping {seconds}s for x={x:.3f} on {os.environ.get('HYPEROPT_RUNNER_SLOT', 'local')}", flush=True)
    time.sleep(seconds)
    return x


best = fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=max_evals)
print("FMIN_RETURNED", best, flush=True)
