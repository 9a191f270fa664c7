"""Objectives of the tracking tests, pickled by reference: the worker imports this module when it
loads their domain. `eager` needs mlflow at import (as a script with `import mlflow` at its top);
`lazy` and `plain` do not."""
import os
import sys

import mlflow


def eager(point):
    active = mlflow.active_run()
    return {
        "loss": point["x"],
        "status": "ok",
        "active": active.info.run_id if active else None,
        "tags": dict(active.data.tags) if active else None,
        "uri": os.environ.get("MLFLOW_TRACKING_URI"),
        "env_run": os.environ.get("MLFLOW_RUN_ID"),
    }
