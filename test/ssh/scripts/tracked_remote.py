"""N trials whose objective logs its own metrics, and what the tracking server says to a request without its token."""
import sys
import urllib.error
import urllib.request

import mlflow
from hyperopt import fmin, hp, rand


def objective(x):
    # The address this worker got: on an SSH host, a port forwarded to the workspace's server.
    search = f"{mlflow.get_tracking_uri()}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(search, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    mlflow.log_metric("anonymous_status", status)
    mlflow.log_metric("custom", x)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=int(sys.argv[1]))
