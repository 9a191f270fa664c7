"""A study slow enough to reload the window in the middle of it."""
import time

from hyperopt import fmin, hp, tpe


def objective(x):
    time.sleep(1.0)
    return (x - 2) ** 2


best = fmin(objective, hp.uniform("x", -5, 5), algo=tpe.suggest, max_evals=40)
print("best:", best)
