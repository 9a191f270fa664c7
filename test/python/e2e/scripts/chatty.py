from hyperopt import fmin, hp, rand


def objective(x):
    print(f"CHATTY x={x:.4f}")
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=4)
print("SCRIPT OUTPUT")
