"""Two fmin calls in one script: a coarse search, then a finer one around its result."""
from hyperopt import fmin, hp, rand, tpe


def objective(x):
    return (x - 3.3) ** 2


coarse = fmin(objective, hp.uniform("x", -10, 10), algo=rand.suggest, max_evals=15)
centre = coarse["x"]
fine = fmin(objective, hp.uniform("x", centre - 1, centre + 1), algo=tpe.suggest, max_evals=15)
print("coarse:", round(float(centre), 3), "fine:", round(float(fine["x"]), 3))
