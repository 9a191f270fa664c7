"""Space descriptors, per-trial params and algorithm names, as views receive them."""

import functools
import json

import numpy as np
from hyperopt import anneal, hp, partial, rand, tpe

from hyperopt_runner import _protocol as P
from hyperopt_runner._space import algo_name, describe_space, json_vals

SPACE = {
    "lr": hp.loguniform("lr", -9, 0),
    "depth": hp.choice("depth", [2, 4, 8]),
    "model": hp.choice("model", ["svm", {"type": "forest", "trees": hp.randint("trees", 10, 500)}]),
    "units": hp.uniformint("units", 16, 256),
    "act": hp.pchoice("act", [(0.3, "relu"), (0.7, "tanh")]),
    "noise": hp.qnormal("noise", 0, 1, 0.5),
    "seed": hp.randint("seed", 5),
    "flag": hp.choice("flag", [True, False, None, np.float32(0.5)]),
    "drop": hp.quniform("drop", 0, 0.5, 0.1),
}


def by_label():
    return {d["label"]: d for d in describe_space(SPACE).params}


def test_descriptors_are_valid_protocol():
    params = describe_space(SPACE).params
    P.validate({"type": "open", "ref": "1", "callSite": {"file": "f", "line": 1}, "ordinal": 0, "maxEvals": 1,
                "parallelism": None, "timeout": None, "lossThreshold": None, "algo": "tpe.suggest", "maxQueueLen": 1,
                "domain": "", "space": params, "priorTrials": 0}, P.DRIVER_TO_COORDINATOR)
    json.dumps(params, allow_nan=False)
    assert sorted(d["label"] for d in params) == sorted(["lr", "depth", "model", "trees", "units", "act", "noise", "seed", "flag", "drop"])


def test_distributions_and_arguments():
    d = by_label()
    assert d["lr"] == {"label": "lr", "dist": "loguniform", "args": {"low": -9, "high": 0}}
    assert d["depth"] == {"label": "depth", "dist": "choice", "options": [2, 4, 8]}
    assert d["units"] == {"label": "units", "dist": "uniformint", "args": {"low": 16, "high": 256, "q": 1.0}}
    assert d["act"] == {"label": "act", "dist": "pchoice", "options": ["relu", "tanh"]}
    assert d["noise"] == {"label": "noise", "dist": "qnormal", "args": {"mu": 0, "sigma": 1, "q": 0.5}}
    assert d["seed"] == {"label": "seed", "dist": "randint", "args": {"low": 0, "high": 5}}
    assert d["trees"] == {"label": "trees", "dist": "randint", "args": {"low": 10, "high": 500}}
    assert d["drop"] == {"label": "drop", "dist": "quniform", "args": {"low": 0, "high": 0.5, "q": 0.1}}
    assert d["flag"]["options"] == [True, False, None, 0.5]


def test_nested_options_are_short_text():
    options = by_label()["model"]["options"]
    assert options[0] == "svm"
    assert options[1] == "{'trees': trees, 'type': 'forest'}"
    long_space = {"m": hp.choice("m", [{f"key{i}": i for i in range(40)}])}
    text = describe_space(long_space).params[0]["options"][0]
    assert len(text) <= 60 and text.endswith("...}")


def test_trial_params():
    description = describe_space(SPACE)
    vals = {
        "lr": [np.float64(0.01)], "depth": [np.int64(2)], "model": [np.int64(1)], "trees": [np.int64(42)],
        "units": [np.float64(32.0)], "act": [np.int64(0)], "noise": [0.5], "seed": [np.int64(3)],
        "flag": [np.int64(3)], "drop": [0.2],
    }
    params = description.trial_params(vals)
    assert params == {"lr": 0.01, "depth": 8, "model": 1, "trees": 42, "units": 32, "act": "relu", "noise": 0.5,
                      "seed": 3, "flag": 0.5, "drop": 0.2}
    assert all(type(v) in (int, float, str, bool) for v in params.values())
    vals["model"] = [0]
    vals["trees"] = []
    params = description.trial_params(vals)
    assert params["model"] == "svm" and "trees" not in params
    assert json_vals(vals)["lr"] == [0.01] and type(json_vals(vals)["depth"][0]) is int


def test_algo_names():
    assert algo_name(tpe.suggest) == "tpe.suggest"
    assert algo_name(rand.suggest) == "rand.suggest"
    assert algo_name(anneal.suggest) == "anneal.suggest"
    assert algo_name(functools.partial(tpe.suggest, n_startup_jobs=5)) == "tpe.suggest(n_startup_jobs=5)"
    assert algo_name(partial(tpe.suggest, gamma=0.2)) == "tpe.suggest(gamma=0.2)"

    def custom(new_ids, domain, trials, seed):
        return []

    assert algo_name(custom) == "test_space.test_algo_names.<locals>.custom"
