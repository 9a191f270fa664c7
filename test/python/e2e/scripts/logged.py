"""Every evaluation appends its point to a log file: resume must not evaluate a finished point again."""
import sys
import time

from hyperopt import fmin, hp, rand

log = sys.argv[1]


def objective(x):
    time.sleep(0.3)
    with open(log, "a") as handle:
        handle.write(f"{x!r}\n")
    return x


best = fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=24)
print("BEST", best)
