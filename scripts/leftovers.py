#!/usr/bin/env python3
"""What a test tier left behind: temporary folders (hr-* and hyperopt-runner-* in the system's
temporary folder) and processes of the kinds tests start (Python, Node, mlflow, sshd, Chromium, code-server,
Ray), against a snapshot taken before the tier.

    leftovers.py snapshot FILE [IGNORED-PID...]   records what is there now
    leftovers.py check FILE [IGNORED-PID...]      prints what is new, one line each, then
                                                  "N left behind"; exits 1 when N > 0

Processes below an IGNORED-PID (the test command's own background installs) and the ancestors of
this script (what runs the tiers) do not count. `check` kills the processes it finds, so the next
tier does not inherit them, and keeps the folders to look at.
"""
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

KINDS = re.compile(r"python|node|mlflow|sshd|chrom|code-server|raylet|gcs_server")


def stat_of(pid: int) -> tuple[str, int] | None:
    """State and parent pid; the command name in between may hold spaces and parentheses."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def ancestry(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        found = stat_of(pid)
        if found is None:
            break
        pid = found[1]
    return chain


def current(ignored: set[int]) -> dict[str, str]:
    found = {}
    temp = Path(tempfile.gettempdir())
    # hr-*: the tests' own; hyperopt-runner-*: the product's (sockets whose usual path is too long).
    for folder in sorted([*temp.glob("hr-*"), *temp.glob("hyperopt-runner-*")]):
        found[f"folder {folder}"] = f"folder {folder}"
    own = set(ancestry(os.getpid()))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        pid = int(entry.name)
        state = stat_of(pid)
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state is None or state[0] == "Z" or not cmd or not KINDS.search(cmd):
            continue
        if ignored & set(ancestry(pid)):
            continue
        found[f"process {pid}"] = f"process {pid} {cmd[:200]}"
    return found


def main() -> int:
    action, file, *rest = sys.argv[1:]
    ignored = {int(p) for p in rest}
    now = current(ignored)
    if action == "snapshot":
        Path(file).write_text(json.dumps(sorted(now)))
        return 0
    before = set(json.loads(Path(file).read_text()))
    # Processes already on their way out (a daemon's last writes, say) get a few seconds.
    deadline = time.monotonic() + 10
    while any(key.startswith("process ") and key not in before for key in now) and time.monotonic() < deadline:
        time.sleep(0.25)
        now = current(ignored)
    left = [line for key, line in now.items() if key not in before]
    for line in left:
        print(line)
        if line.startswith("process "):
            try:
                os.kill(int(line.split()[1]), signal.SIGKILL)
            except ProcessLookupError:
                pass
    print(f"{len(left)} left behind")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
