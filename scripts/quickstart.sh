#!/usr/bin/env bash
# Sets everything up, then runs the sample study on a local pool of 4 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx --no-install hyperopt-runner run samples/quickstart.py --executor local:4 "$@"
