"""A first study: minimise a noisy quadratic bowl over two parameters.

Runs unmodified with plain `python quickstart.py` (serially) or with
`npx hyperopt-runner run samples/quickstart.py --executor local:4` (in parallel).
"""
import math
import time

import hyperopt as hpo
from hyperopt import hp


def objective(params):
    # Stand-in for a training run: a little work, then a loss.
    time.sleep(0.2)
    x, y = params["x"], params["y"]
    return (x - 1.5) ** 2 + (y + 0.5) ** 2 + 0.1 * math.sin(5 * x)


space = {
    "x": hp.uniform("x", -5, 5),
    "y": hp.uniform("y", -5, 5),
}

best = hpo.fmin(objective, space, algo=hpo.tpe.suggest, max_evals=40)
print("best point:", {k: round(float(v), 4) for k, v in best.items()})
