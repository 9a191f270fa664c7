"""The launcher runs unmodified scripts; their fmin calls reach the (in-test) coordinator."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from _coordinator import FakeCoordinator

from hyperopt_runner import _connection

HEADER = """\
import json, os, sys
from hyperopt import hp, tpe, rand, Trials
import numpy as np
SPACE = {"x": hp.uniform("x", -3, 3), "k": hp.choice("k", ["a", "b"])}
def objective(p):
    print("evaluating", p["x"])
    return (p["x"] - 1) ** 2
"""


@pytest.fixture
def fake():
    made = FakeCoordinator(parallelism=2)
    yield made
    made.close()
    _connection.reset()
    assert not made.errors, "\n".join(made.errors)


def launch(tmp_path, source, fake=None, args=(), name="train.py", env_extra=None):
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPEROPT_RUNNER_")}
    if fake is not None:
        env.update(fake.env())
    env.update(env_extra or {})
    done = subprocess.run(
        [sys.executable, "-m", "hyperopt_runner.launch", str(script), *args],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=180,
    )
    return script, done


def line_of(script, text):
    for number, line in enumerate(script.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(text)


def test_fmin_imported_under_another_name(tmp_path, fake):
    script, done = launch(tmp_path, HEADER + """
from hyperopt import fmin as f
trials = Trials()
best = f(objective, SPACE, algo=tpe.suggest, max_evals=6, trials=trials, rstate=np.random.default_rng(0))
print("RESULT", json.dumps({
    "best": {k: float(v) for k, v in best.items()},
    "n": len(trials.trials),
    "token": os.environ.get("HYPEROPT_RUNNER_TOKEN"),
    "argv": sys.argv,
    "path0": sys.path[0],
    "name": __name__,
}))
""", fake, args=("--flag", "value"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result["n"] == 6
    assert result["token"] is None  # taken out of the environment before the script ran
    assert result["argv"] == [str(script), "--flag", "value"]
    assert result["path0"] == str(tmp_path)
    assert result["name"] == "__main__"
    study = fake.only_study()
    assert study.open["callSite"] == {"file": str(script), "line": line_of(script, "best = f(")}
    assert study.open["ordinal"] == 0 and len(study.evaluated) == 6
    assert fake.hellos[0]["token"] == fake.token


def test_module_alias_and_several_calls(tmp_path, fake):
    script, done = launch(tmp_path, HEADER + """
import hyperopt as hpo
first = hpo.fmin(objective, SPACE, algo=rand.suggest, max_evals=3)
second = hpo.fmin.__call__(objective, SPACE, algo=rand.suggest, max_evals=2, return_argmin=False)
print("RESULT", json.dumps([sorted(first), sorted(second)]))
""", fake)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.split("RESULT", 1)[1]) == [["k", "x"], ["k", "x"]]
    assert sorted(st.ordinal for st in fake.studies.values()) == [0, 1]
    assert fake.by_ordinal[0].open["callSite"]["line"] == line_of(script, "first = hpo.fmin")
    assert fake.by_ordinal[1].open["callSite"]["line"] == line_of(script, "second = hpo.fmin")


def test_submodule_fmin_and_trials_fmin_are_routed_too(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt.fmin import fmin as module_fmin
module_fmin(objective, SPACE, algo=rand.suggest, max_evals=2)
t = Trials()
t.fmin(objective, SPACE, algo=rand.suggest, max_evals=2)
print("RESULT", len(t.trials))
""", fake)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("RESULT", 1)[1].strip() == "2"
    assert len(fake.studies) == 2


def test_foreign_trials_with_their_own_fmin_are_left_alone(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import fmin
class OwnLoop(Trials):
    def fmin(self, fn, space, **kwargs):
        return {"own": True}
print("RESULT", json.dumps(fmin(objective, SPACE, algo=rand.suggest, max_evals=2, trials=OwnLoop())))
""", fake)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.split("RESULT", 1)[1]) == {"own": True}
    assert fake.studies == {}


def test_runner_trials_in_the_script(tmp_path, fake):
    _, done = launch(tmp_path, HEADER + """
from hyperopt import fmin
from hyperopt_runner import RunnerTrials
trials = RunnerTrials(parallelism=3, timeout=100)
fmin(objective, SPACE, algo=rand.suggest, max_evals=5, trials=trials)
print("RESULT", trials.count_successful_trials(), trials.actual_parallelism)
""", fake)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("RESULT", 1)[1].split() == ["5", "3"]
    opened = fake.only_study().open
    assert opened["parallelism"] == 3 and opened["timeout"] == 100


def test_unpicklable_objective_exits_2_with_a_fatal(tmp_path, fake):
    _, done = launch(tmp_path, """
import threading
from hyperopt import fmin, hp, rand
LOCK = threading.Lock()
def objective(p):
    with LOCK:
        return p["x"]
fmin(objective, {"x": hp.uniform("x", 0, 1)}, algo=rand.suggest, max_evals=2)
""", fake)
    assert done.returncode == 2, done.stderr
    fatal = fake.wait_for("fatal")[0]
    assert fatal["code"] == "objective_not_picklable"
    assert "global 'LOCK' in train.py" in fatal["message"] and "<_thread.lock object>" in fatal["message"]
    assert "Traceback" not in done.stderr


def test_syntax_error_is_one_line(tmp_path):
    script, done = launch(tmp_path, "x = 1\nif x\n    print(x)\n")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"{script}:2: SyntaxError: expected ':'"]


def test_missing_and_non_python_scripts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "hyperopt_runner.launch", str(tmp_path / "nope.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such file" in done.stderr
    binary = tmp_path / "data.py"
    binary.write_bytes(b"\x00\x01\x02binary")
    done = subprocess.run([sys.executable, "-m", "hyperopt_runner.launch", str(binary)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a Python source file" in done.stderr


def test_script_exception_has_a_short_traceback(tmp_path):
    _, done = launch(tmp_path, """
def main():
    raise RuntimeError("boom")
main()
""")
    assert done.returncode == 1
    assert "RuntimeError: boom" in done.stderr
    assert "runpy" not in done.stderr and "_launch.py" not in done.stderr
    assert 'train.py", line 4' in done.stderr


def test_script_exit_code_is_kept(tmp_path):
    _, done = launch(tmp_path, "import sys\nsys.exit(5)\n")
    assert done.returncode == 5


def test_runner_trials_without_the_launcher_says_how_to_run(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(HEADER + """
from hyperopt import fmin
from hyperopt_runner import RunnerTrials
fmin(objective, SPACE, algo=rand.suggest, max_evals=2, trials=RunnerTrials())
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPEROPT_RUNNER_")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "CoordinatorNotFound" in done.stderr and "hyperopt-runner run plain.py" in done.stderr


def test_old_hyperopt_is_reported_with_the_install_command(tmp_path, fake):
    shim = tmp_path / "shim"
    (shim / "hyperopt").mkdir(parents=True)
    (shim / "hyperopt" / "__init__.py").write_text("__version__ = '0.2.5'\n")
    (shim / "hyperopt-0.2.5.dist-info").mkdir()
    (shim / "hyperopt-0.2.5.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: hyperopt\nVersion: 0.2.5\n")
    _, done = launch(tmp_path, "print('never')\n", fake, env_extra={"PYTHONPATH": str(shim)})
    assert done.returncode == 2
    fatal = fake.wait_for("fatal")[0]
    assert fatal["code"] == "hyperopt_missing"
    assert "0.2.5" in fatal["message"] and sys.executable in fatal["message"]
    assert "pip install --upgrade 'hyperopt>=0.2.7'" in fatal["message"]
    assert "never" not in done.stdout
