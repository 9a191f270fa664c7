"""`fmin` imported under another name, with a random-search algorithm and a log-uniform space."""
import math

from hyperopt import fmin as minimize
from hyperopt import hp, rand


def objective(lr):
    # Best around lr = 1e-3.
    return (math.log10(lr) + 3) ** 2


best = minimize(objective, hp.loguniform("lr", math.log(1e-6), math.log(1)), algo=rand.suggest, max_evals=30)
print("best learning rate:", float(best["lr"]))
