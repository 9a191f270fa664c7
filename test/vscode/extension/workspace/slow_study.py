"""A study held open until a test lets it finish.

The first trials run freely; after GATE_AFTER of them, every trial waits until the file
`slow_study.release` exists next to this script (the UI check creates it once the window has
re-attached after a reload), so the study cannot end while the window reloads.
"""
import os
import time

from hyperopt import fmin, hp, tpe

HERE = os.path.dirname(os.path.abspath(__file__))
COUNT = os.path.join(HERE, "slow_study.count")
RELEASE = os.path.join(HERE, "slow_study.release")
GATE_AFTER = 6


def objective(x):
    time.sleep(0.5)
    with open(COUNT, "a") as f:
        f.write(".")
    if os.path.getsize(COUNT) > GATE_AFTER:
        while not os.path.exists(RELEASE):
            time.sleep(0.2)
    return (x - 2) ** 2


best = fmin(objective, hp.uniform("x", -5, 5), algo=tpe.suggest, max_evals=40)
print("best:", best)
