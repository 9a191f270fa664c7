"""Three trials; with --set the script chooses its MLflow experiment itself, as scripts do."""
import sys

from hyperopt import fmin, hp, rand

if len(sys.argv) > 1 and sys.argv[1] == "--set":
    import mlflow

    mlflow.set_experiment("chosen-by-the-script")
fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=3)
