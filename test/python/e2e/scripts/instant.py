"""Trials that return at once, stopped by fmin's timeout; arguments: timeout in seconds."""
import sys
import time

from hyperopt import fmin, hp, rand

started = time.monotonic()
fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=10_000_000, timeout=float(sys.argv[1]), show_progressbar=False)
print(f"FMIN_RETURNED after {time.monotonic() - started:.3f}s", flush=True)
