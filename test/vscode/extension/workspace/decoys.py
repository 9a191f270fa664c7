"""Not a tuning script: `fmin(` appears only where a parser must ignore it.

fmin(objective, space, max_evals=10)   <- in a docstring
"""
from scipy.optimize import fmin  # another module's fmin: not hyperopt's

message = "call fmin(objective, space) to tune"
# fmin(objective, space, max_evals=100)


def local_fmin(f, x0):
    return fmin(f, x0)  # scipy's, imported above


class Tuner:
    def fmin(self):
        return None


Tuner().fmin()
