"""An objective that raises in part of the space: those trials fail, the study goes on."""
from hyperopt import STATUS_OK, Trials, fmin, hp, rand


def objective(params):
    x = params["x"]
    if x > 0.7:
        raise ValueError(f"x={x:.3f} is outside the stable region")
    return {"loss": (x - 0.2) ** 2, "status": STATUS_OK}


trials = Trials()
best = fmin(objective, {"x": hp.uniform("x", 0, 1)}, algo=rand.suggest, max_evals=30, trials=trials)
print("best:", best, "ok trials:", len(trials.trials))
