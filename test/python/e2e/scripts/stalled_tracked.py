"""Three trials finish at once, every later one sleeps for ten minutes (far longer than any test
waits, so none of them ends by itself however slow the machine): a test can kill the CLI or the
driver while two trials are in flight. Arguments: a folder where each evaluation leaves a
mark, then max_evals (default 8)."""
import os
import sys
import time
from pathlib import Path

from hyperopt import fmin, hp, rand

MARKS = Path(sys.argv[1])
MAX_EVALS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
STALL = os.environ.get("STALL", "1") == "1"


def objective(x):
    (MARKS / f"{x:.9f}").touch()
    if STALL and len(list(MARKS.iterdir())) > 3:
        time.sleep(600)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=MAX_EVALS)
print("FMIN_RETURNED")
