from hyperopt import fmin

def objective(x)
    return x
