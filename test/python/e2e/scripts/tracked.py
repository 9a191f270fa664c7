"""20 trials, a quarter of the space raises; the objective logs its own metric into its child run."""
import sys

import mlflow
from hyperopt import fmin, hp, rand


def objective(params):
    if params["x"] > 0.75:
        raise ValueError(f"x={params['x']:.3f} is out of range")
    mlflow.log_metric("custom", params["x"] * 2)
    return (params["x"] - 0.3) ** 2


space = {"x": hp.uniform("x", 0, 1), "kind": hp.choice("kind", ["small", "large"])}
if len(sys.argv) > 1 and sys.argv[1] == "--outer":
    with mlflow.start_run(run_name="outer") as outer:
        print("OUTER", outer.info.run_id)
        fmin(objective, space, algo=rand.suggest, max_evals=20)
else:
    fmin(objective, space, algo=rand.suggest, max_evals=20)
