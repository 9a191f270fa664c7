"""Half the space is slow: a per-trial timeout kills those trials, the rest succeed."""
import time

from hyperopt import fmin, hp, rand


def objective(x):
    if x > 0.5:
        time.sleep(60)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8)
print("FMIN_RETURNED")
