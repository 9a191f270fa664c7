"""Fixed seed, TPE: with parallelism 1 the runner reproduces the serial sequence exactly."""
import json
import sys

import numpy as np
from hyperopt import Trials, fmin, hp, tpe

trials = Trials()
fmin(
    lambda p: (p["x"] - 0.3) ** 2 + abs(p["y"]),
    {"x": hp.uniform("x", -1, 1), "y": hp.normal("y", 0, 1)},
    algo=tpe.suggest,
    max_evals=int(sys.argv[1]) if len(sys.argv) > 1 else 20,
    trials=trials,
    rstate=np.random.default_rng(1234),
)
points = [{k: float(v[0]) for k, v in t["misc"]["vals"].items()} for t in trials.trials]
print("SEQUENCE " + json.dumps({"points": points, "losses": [float(l) for l in trials.losses()]}))
