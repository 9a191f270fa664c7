"""A script with a main guard and command-line arguments."""
import argparse

import numpy as np
from hyperopt import fmin, hp, tpe


def objective(params):
    return (params["a"] - 2) ** 2 + (params["b"] - 3) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description="tune a and b")
    parser.add_argument("--max-evals", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    best = fmin(
        objective,
        {"a": hp.uniform("a", 0, 5), "b": hp.uniform("b", 0, 5)},
        algo=tpe.suggest,
        max_evals=args.max_evals,
        rstate=np.random.default_rng(args.seed),
    )
    print("best:", {k: round(float(v), 3) for k, v in best.items()})


if __name__ == "__main__":
    main()
