import sys
import time

from hyperopt import fmin, hp, rand


def objective(x):
    time.sleep(0.4)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=int(sys.argv[1]) if len(sys.argv) > 1 else 24)
print("FMIN_RETURNED")
