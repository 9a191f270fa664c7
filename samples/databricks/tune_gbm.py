"""Tuning as it is written on Databricks: SparkTrials inside an active MLflow run.

Runs unmodified under hyperopt-runner, with or without pyspark installed:

    npx hyperopt-runner run samples/databricks/tune_gbm.py --executor local:4

The `with mlflow.start_run()` run becomes the study's parent run and each trial a child run;
the objective's own mlflow.log_metric calls land in its trial's run.
"""
import mlflow
import numpy as np
from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import cross_val_score

X, y = load_breast_cancer(return_X_y=True)

search_space = {
    "n_estimators": hp.quniform("n_estimators", 10, 60, 10),
    "learning_rate": hp.loguniform("learning_rate", np.log(0.01), np.log(0.5)),
    "max_depth": hp.choice("max_depth", [2, 3, 4]),
}


def train(params):
    model = GradientBoostingClassifier(
        n_estimators=int(params["n_estimators"]),
        learning_rate=params["learning_rate"],
        max_depth=params["max_depth"],
        random_state=0,
    )
    accuracy = cross_val_score(model, X, y, cv=3).mean()
    mlflow.log_metric("cv_accuracy", accuracy)
    return {"loss": -accuracy, "status": STATUS_OK}


spark_trials = SparkTrials(parallelism=4, timeout=600)

with mlflow.start_run(run_name="gbm_tuning"):
    best = fmin(fn=train, space=search_space, algo=tpe.suggest, max_evals=16, trials=spark_trials)

print("best:", best)
print(
    f"trials: {spark_trials.count_total_trials()} total, {spark_trials.count_successful_trials()} succeeded, "
    f"{spark_trials.count_failed_trials()} failed, {spark_trials.count_cancelled_trials()} cancelled"
)
