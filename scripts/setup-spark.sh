#!/usr/bin/env bash
# The SparkTrials parity test's environment: .tools/spark-venv with pyspark (Spark 4 runs on the
# machine's Java 17), kept apart from .venv, which has no pyspark on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
venv=.tools/spark-venv
stamp="$venv/.requirements"
if [ -f "$stamp" ] && cmp -s "$stamp" test/spark/requirements.txt; then
  exit 0
fi
command -v java >/dev/null || { echo "setup-spark: java not found; install a JDK 17 (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
rm -rf "$venv"
mkdir -p .tools
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r test/spark/requirements.txt
cp test/spark/requirements.txt "$stamp"
echo "setup-spark: $venv ready ($("$venv/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'))"
