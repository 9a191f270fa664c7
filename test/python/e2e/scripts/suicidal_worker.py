"""The first trial to run kills its own worker with SIGKILL; the study must still finish."""
import os
import signal
import sys

from hyperopt import fmin, hp, rand

marker = sys.argv[1]


def objective(x):
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return x
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=12)
print("DONE")
