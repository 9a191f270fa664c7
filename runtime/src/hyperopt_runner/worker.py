"""``python -m hyperopt_runner.worker``: one worker process of a slot (see docs/protocols.md)."""

import sys

from ._worker import main

if __name__ == "__main__":
    sys.exit(main())
