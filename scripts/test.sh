#!/usr/bin/env bash
# Runs every test tier: types and lint, the TypeScript core (node's test runner), the Python
# runtime and end-to-end studies (pytest), and the editor suites in a real VS Code.
# Ends with one line "N passed, N failed" over all tiers.
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp -d)

# OpenSSH's server (SSH tier), Chromium and code-server (webview and editor tiers) and pyspark (the
# SparkTrials parity tier) install in the background from the start: mostly downloads, which
# overlap with the project's own setup and the first tiers below.
( bash scripts/setup-sshd.sh && bash scripts/setup-vscode.sh && bash scripts/setup-spark.sh ) >"$results/tools.log" 2>&1 &
tools_pid=$!

bash scripts/setup.sh || { wait "$tools_pid"; echo "0 passed, 1 failed"; exit 1; }
echo "=== setup took $SECONDS s"

passed=0
failed=0
status=0

leftovers=0

# A tier also fails when it leaves a process or a temporary folder behind (scripts/leftovers.py);
# the test command's own background installs do not count.
tier() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*"
  python3 scripts/leftovers.py snapshot "$results/$name.before" "$tools_pid"
  "$@" 2>&1 | tee "$results/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
  if ! python3 scripts/leftovers.py check "$results/$name.before" "$tools_pid"; then
    echo "FAILED: the $name tier left the processes or folders above behind"
    leftovers=$((leftovers + 1))
    status=1
  fi
  echo "=== $name took $((SECONDS - start)) s"
  return 0
}

count_node() {
  local p f
  p=$(grep -E '^# pass [0-9]+' "$results/$1.log" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$results/$1.log" | tail -1 | awk '{print $3}')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  [ -n "$p" ] || { failed=$((failed + 1)); echo "$1: no test ran"; }
}

count_pytest() {
  local line p f e
  line=$(grep -E '[0-9]+ (passed|failed|error)' "$results/$1.log" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}')
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | awk '{print $1}')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
  [ -n "$p$f$e" ] || { failed=$((failed + 1)); echo "$1: no test ran"; }
}

count_plain() {
  local line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/$1.log" | tail -1)
  p=$(awk '{print $1}' <<<"$line"); f=$(awk '{print $3}' <<<"$line")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  [ -n "$p" ] || { failed=$((failed + 1)); echo "$1: no test ran"; }
}

static_checks() {
  local ok=0 bad=0
  for check in "npx tsc -p tsconfig.json" "npx eslint ."; do
    if $check; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "FAILED: $check"; fi
  done
  echo "$ok passed, $bad failed"
  [ "$bad" -eq 0 ]
}

tier static static_checks; count_plain static
tier core npm run --silent test:core; count_node core
# Two pytest processes, each test file in one of them (a file's module-wide MLflow server starts once).
# Their temporary folders are made under $results, which is removed at the end.
tier python .venv/bin/python -m pytest test/python -q -p no:cacheprovider --basetemp "$results/pytest-python" -n 2 --dist loadfile; count_pytest python
# The installs of the later tiers finish meanwhile.
wait "$tools_pid"; tools_rc=$?
cat "$results/tools.log"
[ "$tools_rc" -eq 0 ] || { echo "installing sshd, chromium, code-server or pyspark failed (log above)"; failed=$((failed + 1)); status=1; }
# Real SparkTrials (pyspark, local[2]) against the same script under the runner.
tier spark .venv/bin/python -m pytest test/spark -q -p no:cacheprovider --basetemp "$results/pytest-spark"; count_pytest spark
# The SSH executor against several OpenSSH servers on loopback (see test/ssh/fixture.ts).
tier ssh node --import tsx --test --test-concurrency=1 test/ssh/*.test.ts; count_node ssh
if ls test/webview/*.test.ts >/dev/null 2>&1; then
  tier webview node --import tsx --test --test-concurrency=1 test/webview/*.test.ts; count_node webview
fi
if [ -f test/vscode/run-suites.ts ]; then
  tier vscode node --import tsx test/vscode/run-suites.ts; count_plain vscode
fi

failed=$((failed + leftovers))
rm -rf "$results"
echo "=== all tiers took $SECONDS s"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
