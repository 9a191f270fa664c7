"""A study long enough to be stopped from the trials panel."""
import time

from hyperopt import fmin, hp, tpe


def objective(x):
    time.sleep(0.3)
    return (x - 2) ** 2


best = fmin(objective, hp.uniform("x", -5, 5), algo=tpe.suggest, max_evals=2000)
print("best:", best)
