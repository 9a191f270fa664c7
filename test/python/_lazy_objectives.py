"""Objectives that import mlflow only while they run, or never (see _tracked_objectives.py)."""
import os
import sys


def lazy(point):
    import mlflow  # noqa: F401 - first imported here, during the trial

    return {"loss": point["x"], "status": "ok", "env_run": os.environ.get("MLFLOW_RUN_ID")}


def plain(point):
    return {"loss": point["x"], "status": "ok", "mlflow_loaded": "mlflow" in sys.modules, "uri": os.environ.get("MLFLOW_TRACKING_URI")}
