"""Trial n returns RESULTS[n]: the values hyperopt accepts and those it cannot read, in one study."""
import json

from hyperopt import Trials, fmin, hp
from hyperopt.fmin import generate_trial

BIG = "z" * (10 * 1024 * 1024)
RESULTS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    None,
    "0.5",
    {"loss": 1.0},
    {"status": "ok"},
    {"status": "ok", "loss": 0.3, "attachments": {"blob": BIG}},
    {"status": "ok", "loss": 0.2, "report": BIG},
    0.7,
]


def in_order(new_ids, domain, trials, seed):
    # A deterministic algo: trial n evaluates x = n, whatever order the trials finish in.
    return [generate_trial(tid, {"n": tid}) for tid in new_ids]


def objective(n):
    return RESULTS[int(n)]


def loss_text(result):
    loss = result.get("loss")
    return None if loss is None else repr(float(loss))


trials = Trials()
best = fmin(objective, hp.uniform("n", 0, len(RESULTS)), algo=in_order, max_evals=len(RESULTS), trials=trials, catch_eval_exceptions=True)
outcome = {
    "best": best,
    "trials": [
        {
            "tid": doc["tid"],
            "state": doc["state"],
            "status": doc["result"].get("status"),
            "loss": loss_text(doc["result"]),
            "keys": sorted(doc["result"]),
            "attachments": {k: len(v) for k, v in trials.attachments.items() if k.startswith(f"ATTACH::{doc['tid']}::")},
            "sizes": {k: len(v) for k, v in doc["result"].items() if isinstance(v, str) and len(v) > 1024},
        }
        for doc in sorted(trials._dynamic_trials, key=lambda d: d["tid"])
    ],
}
print("OUTCOME " + json.dumps(outcome))
