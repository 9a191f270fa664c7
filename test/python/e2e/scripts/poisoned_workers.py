"""The first trial creates a marker and kills its worker; the wrapper interpreter then refuses to
start workers, so the only slot is retired for good and the study must end instead of hanging."""
import os
import signal
import sys

from hyperopt import fmin, hp, rand

marker = sys.argv[1]


def objective(x):
    open(marker, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)


try:
    fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=5)
except Exception as exc:  # no trial finished: hyperopt has no argmin to return
    print("FMIN_RAISED", type(exc).__name__)
