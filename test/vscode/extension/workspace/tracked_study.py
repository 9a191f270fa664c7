"""A short study for the Runs tree's MLflow branch (tracked in the embedded server)."""
from hyperopt import fmin, hp, tpe


def objective(x):
    return (x - 1) ** 2


best = fmin(objective, hp.uniform("x", -3, 3), algo=tpe.suggest, max_evals=5)
print("best:", best)
