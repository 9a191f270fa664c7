"""Runs one command and prints, as JSON, its wall time, the CPU time of its whole process tree
(every descendant that was waited for) and when the objective was first called.

usage: python measure.py MARK_FILE -- COMMAND [ARGS...]

The objective of bench/scripts/sleep.py writes the time of its first call to MARK_FILE (its
environment variable HR_FIRST_CALL_FILE); `first` is that moment less the command's start.
"""
import json
import os
import resource
import subprocess
import sys
import time

mark = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
try:
    os.unlink(mark)
except FileNotFoundError:
    pass
env = {**os.environ, "HR_FIRST_CALL_FILE": mark}
before = resource.getrusage(resource.RUSAGE_CHILDREN)
started = time.time()
proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
ended = time.time()
after = resource.getrusage(resource.RUSAGE_CHILDREN)
try:
    with open(mark) as handle:
        first = float(handle.read()) - started
    os.unlink(mark)
except (OSError, ValueError):
    first = None
print(json.dumps({
    "code": proc.returncode,
    "wall": ended - started,
    "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    "first": first,
    "stdout": proc.stdout[-20000:],
    "stderr": proc.stderr[-20000:],
}))
