"""The objective lives in a sibling module (objectives.py): workers import it by name."""
from hyperopt import fmin, hp, tpe

from objectives import rosenbrock

best = fmin(
    rosenbrock,
    {"x": hp.uniform("x", -2, 2), "y": hp.uniform("y", -1, 3)},
    algo=tpe.suggest,
    max_evals=30,
)
print("best:", best)
