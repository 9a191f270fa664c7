"""A conditional space (nested hp.choice); return_argmin=False gives the chosen configuration itself."""
from hyperopt import fmin, hp, tpe

space = hp.choice(
    "model",
    [
        {"type": "svm", "C": hp.loguniform("svm_C", -3, 3), "kernel": hp.choice("svm_kernel", ["linear", "rbf"])},
        {"type": "forest", "trees": hp.quniform("forest_trees", 10, 200, 10), "depth": hp.choice("forest_depth", [None, 4, 8])},
    ],
)


def objective(config):
    if config["type"] == "svm":
        return abs(config["C"] - 1.0) + (0.0 if config["kernel"] == "rbf" else 0.5)
    depth_penalty = 0.3 if config["depth"] is None else abs(config["depth"] - 8) / 10
    return abs(config["trees"] - 120) / 100 + depth_penalty


best = fmin(objective, space, algo=tpe.suggest, max_evals=30, return_argmin=False)
print("best configuration:", best)
