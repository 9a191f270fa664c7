"""The soak's study: many short trials of mixed kinds on whatever slots the command gives it.

Most trials take 10-100 ms, a quarter 0.1-0.5 s, one in twenty 0.5-2 s; about 3 % raise and 2 %
print a few hundred kilobytes. Each kind follows from the trial's own parameters, so an attempt
that is run again behaves as the first one did. Each worker process leaves its pid in a folder
(the chaos driver picks its victims there); after fmin the final Trials are written as JSON.

Arguments: the pid folder, the output file, max_evals, a factor for the durations (default 1).
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from hyperopt import Trials, fmin, hp, rand

PIDS = Path(sys.argv[1])
OUT = Path(sys.argv[2])
MAX_EVALS = int(sys.argv[3])
SCALE = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0


def duration(u: float) -> float:
    if u < 0.70:
        return 0.01 + 0.09 * u / 0.70
    if u < 0.95:
        return 0.1 + 0.4 * (u - 0.70) / 0.25
    return 0.5 + 1.5 * (u - 0.95) / 0.05


def objective(params):
    (PIDS / str(os.getpid())).touch()
    time.sleep(duration(params["u"]) * SCALE)
    kind = params["k"]
    if kind < 0.03:
        raise ValueError(f"soak: this trial raises (k={kind:.4f})")
    if kind < 0.05:
        for i in range(3000):
            print(f"soak output line {i:05d} " + "x" * 80)
    return (params["x"] - 1.0) ** 2


space = {"u": hp.uniform("u", 0, 1), "k": hp.uniform("k", 0, 1), "x": hp.uniform("x", -3, 3)}
trials = Trials()
fmin(objective, space, algo=rand.suggest, max_evals=MAX_EVALS, trials=trials, rstate=np.random.default_rng(7))
# hyperopt leaves failed trials out of `trials.trials`; `_dynamic_trials` has every one.
rows = [
    {"tid": t["tid"], "state": t["state"], "status": t["result"].get("status"), "loss": t["result"].get("loss")}
    for t in trials._dynamic_trials
]
OUT.write_text(json.dumps(rows))
print(f"SOAK_FMIN_RETURNED {len(rows)}")
