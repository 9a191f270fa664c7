#!/usr/bin/env bash
# Sets up a fresh checkout: Node dependencies, the bundles, and .venv with the Python runtime,
# hyperopt, cloudpickle and mlflow. Safe to run again; it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; install Python 3.10 or newer (apt-get install python3 python3-venv)" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "building bundles"
npm run --silent build

stamp=.venv/.hyperopt-runner-setup
want="$(cat runtime/pyproject.toml runtime/requirements-dev.txt 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the Python runtime, hyperopt, cloudpickle and mlflow into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e runtime -r runtime/requirements-dev.txt
  echo "$want" > "$stamp"
fi
log "ready: $(.venv/bin/python -c 'import hyperopt, cloudpickle; print("hyperopt", hyperopt.__version__, "cloudpickle", cloudpickle.__version__)')"
