"""N trials whose objective prints a few KB each; writes a marker when it starts and, at the end, fmin's finished tids."""
import json
import sys
import time
from pathlib import Path

from hyperopt import STATUS_OK, Trials, fmin, hp, rand

Path(sys.argv[2]).write_text("started\n")


def objective(x):
    print(f"x={x:.6f} " + "." * 4000)
    time.sleep(0.05)
    return {"loss": x, "status": STATUS_OK}


trials = Trials()
fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=int(sys.argv[1]), trials=trials)
ok = sorted(t["tid"] for t in trials.trials if t["result"].get("status") == STATUS_OK)
print("FINISHED " + json.dumps(ok))
