"""Trials that sleep; arguments: max_evals, seconds per trial, fmin timeout (0 = none), and
optionally seconds the script takes before fmin (a slow import)."""
import sys
import time

from hyperopt import fmin, hp, rand

max_evals, seconds, timeout = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
if len(sys.argv) > 4:
    print("SCRIPT_STARTED", flush=True)
    time.sleep(float(sys.argv[4]))


def objective(x):
    print(f"sleeping {seconds}s for x={x:.3f}", flush=True)
    time.sleep(seconds)
    return x


started = time.monotonic()
fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=max_evals, timeout=timeout or None)
print(f"FMIN_RETURNED after {time.monotonic() - started:.3f}s", flush=True)
