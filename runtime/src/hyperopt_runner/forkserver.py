"""``python -m hyperopt_runner.forkserver``: the warm process a run forks its workers and driver from (see docs/protocols.md)."""

import sys

from ._forkserver import main

if __name__ == "__main__":
    sys.exit(main())
