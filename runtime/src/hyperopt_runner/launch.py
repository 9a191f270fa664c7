"""``python -m hyperopt_runner.launch SCRIPT [ARGS...]``: run a script with fmin on the coordinator."""

import sys

from ._launch import main

if __name__ == "__main__":
    sys.exit(main())
