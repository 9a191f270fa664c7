"""Writes one study into an MLflow SQL store, laid out as the runtime logs it: a parent run and
N finished child runs, each with the trial's hyperparameters as params, metric ``loss`` and the
runner's tags. The children go in as bulk inserts through MLflow's own table models (creating
them one request at a time would take many minutes); the parent goes through the store's API.

Usage: populate.py STORE_URI ARTIFACT_ROOT EXPERIMENT_NAME N SEED
Prints: {"experimentId": ..., "parentRunId": ..., "studyId": ..., "seconds": ...}
"""
import json
import random
import sys
import time
import uuid

from mlflow.entities import Metric, Param, RunTag
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import insert

store_uri, artifact_root, experiment_name, n, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
started = time.perf_counter()
rng = random.Random(seed)
store = SqlAlchemyStore(store_uri, artifact_root)
experiment_id = store.create_experiment(experiment_name)
experiment = store.get_experiment(experiment_id)
study = f"bench-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
t0 = int(time.time() * 1000) - n * 1000
parent = store.create_run(experiment_id, "bench", t0, [RunTag("mlflow.source.name", "bench.py")], "bench:12")
parent_id = parent.info.run_id
store.log_batch(
    parent_id,
    metrics=[],
    params=[Param("max_evals", str(n)), Param("parallelism", "4"), Param("timeout", "None"), Param("algo", "tpe")],
    tags=[
        RunTag("runSource", "hyperoptAutoTracking"),
        RunTag("fmin_uuid", study),
        RunTag("hyperopt_runner.study_id", study),
        RunTag("hyperopt_runner.call_site", "bench.py:12"),
    ],
)

runs, tags, params, metrics, latest = [], [], [], [], []
for tid in range(n):
    run_id = uuid.UUID(int=rng.getrandbits(128)).hex
    start = t0 + tid * 250
    end = start + rng.randint(50, 900)
    failed = rng.random() < 0.02
    runs.append(dict(
        run_uuid=run_id, name=f"trial {tid}", source_type="UNKNOWN", source_name="", entry_point_name="",
        user_id="bench", status="FAILED" if failed else "FINISHED", start_time=start, end_time=end,
        deleted_time=None, source_version="", lifecycle_stage="active",
        artifact_uri=f"{experiment.artifact_location}/{run_id}/artifacts", experiment_id=int(experiment_id),
    ))
    slot = tid % 4
    for key, value in (
        ("mlflow.parentRunId", parent_id), ("runSource", "hyperoptAutoTracking"), ("mlflow.runName", f"trial {tid}"),
        ("fmin_uuid", study), ("hyperopt_runner.tid", str(tid)), ("hyperopt_runner.slot", f"local-{slot}"),
        ("hyperopt_runner.host", "localhost"), ("trial_status", "error" if failed else "ok"),
    ):
        tags.append(dict(key=key, value=value, run_uuid=run_id))
    for key, value in (("lr", rng.uniform(1e-4, 1e-1)), ("depth", rng.randint(2, 12)), ("optimizer", rng.choice(["adam", "sgd", "rmsprop"]))):
        params.append(dict(key=key, value=str(value), run_uuid=run_id))
    if not failed:
        loss = rng.uniform(0, 1)
        row = dict(key="loss", value=loss, timestamp=end, step=0, is_nan=False, run_uuid=run_id)
        metrics.append(row)
        latest.append(dict(row))

with store.ManagedSessionMaker() as session:
    for model, rows in ((SqlRun, runs), (SqlTag, tags), (SqlParam, params), (SqlMetric, metrics), (SqlLatestMetric, latest)):
        for i in range(0, len(rows), 5000):
            session.execute(insert(model), rows[i : i + 5000])
store.log_batch(
    parent_id,
    metrics=[Metric("total_trials_count", n, t0 + n * 250, 0), Metric("best_trial_loss", min(m["value"] for m in metrics), t0 + n * 250, 0)],
    params=[],
    tags=[],
)
store.update_run_info(parent_id, run_status=3, end_time=t0 + n * 250 + 1000, run_name="bench:12")  # 3 = FINISHED
print(json.dumps({"experimentId": experiment_id, "parentRunId": parent_id, "studyId": study, "seconds": time.perf_counter() - started}))
