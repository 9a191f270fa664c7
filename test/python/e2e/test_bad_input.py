"""Bad input: one clear line naming the cause and the fix, a non-zero exit, no half-written journal."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, HERE, PYTHON, ROOT

SCRIPTS = HERE / "scripts"


def error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if "hyperopt-runner" in l and "error" in l]
    assert lines, stderr
    return lines[-1]


def no_journal(runner) -> bool:
    return not runner.journal_dir.exists() or not any(runner.journal_dir.glob("*.jsonl"))


def test_script_not_found(runner):
    result = runner.run("does/not/exist.py")
    assert result.returncode != 0
    assert "script not found: does/not/exist.py" in error_line(result.stderr)
    assert no_journal(runner)


def test_not_a_python_script(runner, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    result = runner.run(notes)
    assert result.returncode != 0
    assert "is not a Python script" in error_line(result.stderr)


def test_syntax_error_names_file_and_line(runner):
    result = runner.run(SCRIPTS / "syntax_error.py")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"{SCRIPTS / 'syntax_error.py'}:3" in result.stderr
    assert "SyntaxError" in result.stderr
    assert no_journal(runner)


def test_script_that_never_calls_fmin(runner):
    result = runner.run(SCRIPTS / "no_fmin.py")
    assert result.returncode != 0
    assert "never tunes anything" in result.stdout
    assert "without calling hyperopt's fmin" in error_line(result.stderr)


def test_unpicklable_objective_names_the_object(runner):
    result = runner.run(SCRIPTS / "unpicklable.py")
    assert result.returncode != 0
    line = error_line(result.stderr)
    assert "LOCK" in line and "lock" in line.lower()
    assert "Traceback" not in result.stderr
    assert no_journal(runner)


@pytest.mark.parametrize(
    "value, reason",
    [
        ("local:zero", "the number of workers must be a whole number from 1 to 1024"),
        ("local:abc", "the number of workers must be a whole number from 1 to 1024"),
        ("local:0", "the number of workers must be a whole number from 1 to 1024"),
        ("ssh:", "name at least one host"),
    ],
)
def test_invalid_executor(runner, value, reason):
    result = runner.run(SCRIPTS / "chatty.py", executor=value)
    assert result.returncode == 2
    assert (result.stdout, result.stderr.splitlines()) == ("", [
        f"hyperopt-runner: error: invalid --executor value '{value}': {reason}; use local[:N] (N workers) or ssh:HOST[,HOST...]"
    ])
    assert no_journal(runner)


def test_interpreter_without_hyperopt(runner, tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    result = runner.run(SCRIPTS / "chatty.py", extra=("--python", str(python)))
    assert result.returncode != 0
    line = [l for l in result.stderr.splitlines() if "hyperopt" in l and "install" in l]
    assert line, result.stderr
    assert str(python) in line[0] and "pip install" in line[0]
    assert "Traceback" not in result.stderr
    assert no_journal(runner)


@pytest.mark.parametrize("fork", ["1", "0"])
def test_an_executable_that_is_not_python(runner, fork):
    # The fork server's start and the interpreter probe (no fork server) give the same line.
    runner.env["HYPEROPT_RUNNER_FORK"] = fork
    result = runner.run(SCRIPTS / "chatty.py", extra=("--python", "/bin/true"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "hyperopt-runner: error: /bin/true printed nothing and exited with exit code 0, so it is not a Python interpreter;"
        " pass --python PATH to a Python 3.10+ with hyperopt installed"
    ]
    assert no_journal(runner)


def test_worker_that_dies_before_its_first_message_shows_its_stderr(runner, tmp_path):
    # Spawned workers (no fork server): the wrapper sees each worker's own command line.
    runner.env["HYPEROPT_RUNNER_FORK"] = "0"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *hyperopt_runner.worker*) echo "worker: cannot allocate GPU context" >&2; exit 3;; esac\n'
        f'exec "{PYTHON}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    result = runner.run(SCRIPTS / "chatty.py", executor="local:2", extra=("--python", str(wrapper)))
    assert result.returncode != 0
    line = error_line(result.stderr)
    assert "exited before it was ready" in line and "cannot allocate GPU context" in line
    assert no_journal(runner)


def test_a_journal_directory_that_is_a_file(runner, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder\n")
    fix = "; pass --journal-dir a folder"
    runner.journal_dir = taken
    result = runner.run(SCRIPTS / "chatty.py")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"hyperopt-runner: error: the journal directory {taken} is a file{fix}"]
    for folder, line in ((taken, f"{taken} is a file"), (taken / "sub", f"{taken / 'sub'} is inside the file {taken}")):
        listing = runner.cli("studies", "--journal-dir", str(folder))
        assert (listing.returncode, listing.stdout) == (2, "")
        assert listing.stderr.splitlines() == [f"hyperopt-runner: error: the journal directory {line}{fix}"]
    assert taken.read_text() == "not a folder\n"


@pytest.mark.parametrize("line", ["y" * 1023 + "\n", "y" * 1024], ids=["lines", "no-newline"])
def test_an_objective_printing_without_end_is_capped_with_one_notice(runner, tmp_path, line):
    # The first trial prints 100 MB (a write in a tight loop), the second a line.
    script = tmp_path / "loud.py"
    script.write_text(
        "import os, sys\n"
        "from hyperopt import fmin, hp, rand\n"
        f"MARK = {str(tmp_path / 'loud-once')!r}\n"
        f"LINE = {line!r}\n"
        "def objective(x):\n"
        "    if not os.path.exists(MARK):\n"
        "        open(MARK, 'w').close()\n"
        "        for _ in range(100 * 1024):\n"
        "            sys.stdout.write(LINE)\n"
        "    print('trial done')\n"
        "    return x\n"
        "print('BEST', fmin(objective, hp.uniform('x', 0, 1), algo=rand.suggest, max_evals=2))\n"
    )
    result = runner.run(script, executor="local:1", timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BEST" in result.stdout and result.summary[0]["trials"]["ok"] == 2
    notices = [l for l in result.stderr.splitlines() if "printed more than 8 MB" in l]
    assert notices == ["hyperopt-runner: trial 0 printed more than 8 MB; the rest of its output is dropped (the trial goes on)"], notices
    # The terminal got the capped output, not 100 MB; the trial's log holds as much, then the marker.
    assert len(result.stdout) + len(result.stderr) < 9 * 1024 * 1024, len(result.stdout) + len(result.stderr)
    logs = runner.journal_dir / f"{result.summary[0]['study']}.logs"
    loud = (logs / "trial-0.log").read_text()
    marker = "[hyperopt-runner: the rest of this trial's output, past 8 MB, is dropped]\n"
    assert loud.startswith("y" * 1023) and loud.endswith(f"y\n{marker}"), loud[-200:]
    assert len(loud) == 8 * 1024 * 1024 + (0 if line.endswith("\n") else 1) + len(marker)
    assert loud.count(marker) == 1
    assert (logs / "trial-1.log").read_text() == "trial done\n"


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def outcome(stdout: str) -> dict:
    line = next(l for l in stdout.splitlines() if l.startswith("OUTCOME "))
    return json.loads(line[len("OUTCOME "):])


def test_results_hyperopt_accepts_or_cannot_read(runner):
    # NaN and the infinities are losses hyperopt accepts; None, a string and dicts without
    # "status" or "loss" are errors in hyperopt: failed trials here, with the study going on.
    script = SCRIPTS / "bad_results.py"
    serial = subprocess.run([str(PYTHON), str(script)], capture_output=True, text=True, timeout=120)
    assert serial.returncode == 0, serial.stderr[-2000:]
    result = runner.run(script, executor="local:2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert outcome(result.stdout) == outcome(serial.stdout)
    assert outcome(result.stdout)["best"] == {"n": 2}  # -inf, the NaN trial never counts as best

    assert "Traceback" not in result.stdout + result.stderr
    fix = 'hyperopt needs a number (the loss) or a dict with "status": "ok" and a numeric "loss" (or "status": "fail")'
    assert [l for l in result.stderr.splitlines() if " failed: " in l] == [
        f"hyperopt-runner: trial 3 failed: TypeError: the objective returned None; {fix}",
        f"hyperopt-runner: trial 4 failed: ValueError: the objective returned str '0.5'; {fix}",
        f'hyperopt-runner: trial 5 failed: KeyError: the objective returned a dict without "status"; {fix}',
        f"hyperopt-runner: trial 6 failed: hyperopt.exceptions.InvalidLoss: the objective returned a dict with status \"ok\" and loss 'missing'; {fix}",
    ]
    study = result.summary[0]
    assert (study["state"], study["trials"], study["bestLoss"]) == ("max_evals", {"total": 10, "ok": 6, "failed": 4, "cancelled": 0}, "-Infinity")

    # The journal is whole, strict JSON (no NaN literal), and nothing beside it is half-written.
    journal = Path(study["journal"])
    text = journal.read_text()
    assert text.endswith("\n")
    records = [strict_json(line) for line in text.splitlines()]
    ends = {r["tid"]: r for r in records if r["k"] == "end"}
    assert [ends[t]["summary"]["loss"] for t in (0, 1, 2)] == ["NaN", "Infinity", "-Infinity"]
    assert sorted(t for t, r in ends.items() if r["state"] == "error") == [3, 4, 5, 6]
    assert sorted(p.name for p in runner.journal_dir.iterdir() if p.name.startswith(".") or p.suffix == ".tmp") == []
    listing = runner.cli("studies", "--journal-dir", str(runner.journal_dir))
    assert listing.returncode == 0 and "best -Infinity" in listing.stdout, listing.stdout + listing.stderr


ODD_NAMES = ["my study.py", "it's.py", 'say "hi".py', "étude_数.py", "-study.py", "$(touch pwned).py", "a;touch pwned.py", "`touch pwned`.py"]
PATH_SCRIPT = (
    "import sys\n"
    "from hyperopt import fmin, hp, rand\n"
    "print('FILE', __file__)\n"
    "print('ARGS', sys.argv[1:])\n"
    "print('BEST', fmin(lambda x: x, hp.uniform('x', 0, 1), algo=rand.suggest, max_evals=2))\n"
)


def odd_folder(tmp_path: Path) -> Path:
    # The folder's name is as hostile as the scripts' names.
    folder = tmp_path / "dir $(touch pwned) `touch pwned`; 'q\" é"
    folder.mkdir()
    return folder


def run_in(runner, folder: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", str(CLI), "run", *argv],
        cwd=folder, env=runner.env, capture_output=True, text=True, timeout=180,
    )


def assert_nothing_ran_as_a_shell(tmp_path: Path) -> None:
    assert sorted(str(p) for p in tmp_path.rglob("pwned*")) == []
    assert not (ROOT / "pwned").exists()


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_script_path_is_never_a_shell_command(runner, tmp_path, name):
    folder = odd_folder(tmp_path)
    (folder / name).write_text(PATH_SCRIPT)
    journal = tmp_path / "journal"
    result = run_in(runner, folder, name, "--executor", "local:1", "--no-tracking", "--journal-dir", str(journal), "--", "--lr", "$(touch pwned)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"FILE {folder / name}\n" in result.stdout
    assert "ARGS ['--lr', '$(touch pwned)']\n" in result.stdout and "BEST" in result.stdout
    assert f"started ({folder / name}:5," in result.stderr
    assert_nothing_ran_as_a_shell(tmp_path)


def test_a_script_named_like_an_option(runner, tmp_path):
    folder = odd_folder(tmp_path)
    (folder / "--study.py").write_text(PATH_SCRIPT)
    common = ("--executor", "local:1", "--no-tracking", "--journal-dir", str(tmp_path / "journal"))
    refused = run_in(runner, folder, "--study.py", *common)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.splitlines() == [
        "hyperopt-runner: error: invalid --study.py '': unknown option; a script whose name starts with dashes runs as ./--study.py or after --"
    ]
    for argv in (("./--study.py", *common, "--", "x"), (*common, "--", "--study.py", "x")):
        result = run_in(runner, folder, *argv)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"FILE {folder / '--study.py'}\n" in result.stdout and "ARGS ['x']\n" in result.stdout
    assert_nothing_ran_as_a_shell(tmp_path)
