import threading

from hyperopt import fmin, hp, rand

LOCK = threading.Lock()


def objective(x):
    with LOCK:
        return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3)
