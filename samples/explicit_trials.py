"""A Trials object passed in and inspected afterwards, as many notebooks do."""
from hyperopt import STATUS_OK, Trials, fmin, hp, tpe


def objective(params):
    loss = (params["depth"] - 6) ** 2 / 10 + abs(params["alpha"] - 0.3)
    return {"loss": loss, "status": STATUS_OK, "depth_used": int(params["depth"])}


trials = Trials()
best = fmin(
    objective,
    {"depth": hp.quniform("depth", 1, 12, 1), "alpha": hp.uniform("alpha", 0, 1)},
    algo=tpe.suggest,
    max_evals=25,
    trials=trials,
)
print("trials:", len(trials.trials), "best loss:", round(min(trials.losses()), 4))
print("best trial depth:", trials.best_trial["result"]["depth_used"])
print("argmin:", best)
