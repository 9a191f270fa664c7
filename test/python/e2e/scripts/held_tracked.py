"""Four trials at once; each objective marks a file in the folder given as argument when it runs
(its child run exists by then), then sleeps, so a test can act while all four are running."""
import sys
import time
from pathlib import Path

from hyperopt import fmin, hp, rand

MARKS = Path(sys.argv[1])


def objective(x):
    (MARKS / f"{x:.6f}").touch()
    time.sleep(3)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=4)
print("FMIN_RETURNED")
