"""The launcher: runs a user's script so that every ``hyperopt.fmin`` call becomes a study.

``python -m hyperopt_runner.launch SCRIPT [ARGS...]`` behaves like ``python SCRIPT ARGS...``
(``sys.argv``, ``sys.path[0]``, ``__main__``), with ``hyperopt.fmin`` replaced by a wrapper
that hands each call to the coordinator.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, List, Optional

from ._connection import ENV_ENDPOINT, ENV_TOKEN
from ._errors import UsageError

MIN_HYPEROPT = (0, 2, 7)
EXIT_FATAL = 2


def _say(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _version_tuple(text: str) -> tuple:
    parts = []
    for piece in text.split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        parts.append(int(digits) if digits else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def check_requirements() -> Optional[str]:
    """None when hyperopt and cloudpickle are usable; else a one-line message saying how to fix it."""
    exe = sys.executable or "python"
    try:
        import hyperopt  # noqa: F401
    except ImportError as exc:
        return (
            f"hyperopt is not installed for {exe} ({exc}); install it with: "
            f"{exe} -m pip install 'hyperopt>=0.2.7'"
        )
    from importlib import metadata

    try:
        version = metadata.version("hyperopt")
    except metadata.PackageNotFoundError:
        version = getattr(sys.modules["hyperopt"], "__version__", "0")
    if _version_tuple(version) < MIN_HYPEROPT:
        return (
            f"hyperopt {version} in {exe} is too old for hyperopt-runner (it needs 0.2.7 or newer); "
            f"upgrade it with: {exe} -m pip install --upgrade 'hyperopt>=0.2.7'"
        )
    try:
        import cloudpickle  # noqa: F401
    except ImportError as exc:
        return f"cloudpickle is not installed for {exe} ({exc}); install it with: {exe} -m pip install cloudpickle"
    return None


def report_fatal(code: str, message: str) -> None:
    """Tells the coordinator (which prints it) or, without one, stderr."""
    from . import _connection

    if not _connection.send_if_launched({"type": "fatal", "code": code, "message": message}):
        _say(f"hyperopt-runner: {message}")


# -- the fmin wrapper ----------------------------------------------------------------------------


class _KeywordObjective:
    """fmin's space="annotated": the objective takes the point's labels as keyword arguments."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, kwargs: dict) -> Any:
        return self.fn(**kwargs)


def _annotated_space(fn: Callable) -> tuple:
    import inspect

    from hyperopt import exceptions, pyll

    space = inspect.getfullargspec(fn).annotations
    for hp_func in space.values():
        if not isinstance(hp_func, pyll.base.Apply):
            raise exceptions.InvalidAnnotatedParameter(
                'When using `space="annotated"`, please annotate the objective function '
                "arguments with a `pyll.base.Apply` subclass. See example in `fmin` docstring"
            )
    return _KeywordObjective(fn), space


def delegates_to_hyperopt(trials: Any, allow_trials_fmin: bool) -> bool:
    """True for Trials objects that run their own trials (SparkTrials, MongoTrials, ...)."""
    from hyperopt import base

    from ._trials import RunnerTrials

    if trials is None or isinstance(trials, RunnerTrials):
        return False
    if not isinstance(trials, base.Trials):
        return True
    own_fmin = getattr(type(trials), "fmin", None)
    if allow_trials_fmin and own_fmin is not None and own_fmin is not base.Trials.fmin:
        return True
    return bool(getattr(trials, "asynchronous", False))


def make_fmin(original: Callable) -> Callable:
    """A replacement for ``hyperopt.fmin`` with its signature, running studies on the coordinator."""

    @functools.wraps(original)
    def fmin(
        fn: Callable,
        space: Any,
        algo: Optional[Callable] = None,
        max_evals: Optional[int] = None,
        timeout: Optional[float] = None,
        loss_threshold: Optional[float] = None,
        trials: Any = None,
        rstate: Any = None,
        allow_trials_fmin: bool = True,
        pass_expr_memo_ctrl: Optional[bool] = None,
        catch_eval_exceptions: bool = False,
        verbose: bool = True,
        return_argmin: bool = True,
        points_to_evaluate: Optional[list] = None,
        max_queue_len: int = 1,
        show_progressbar: Any = True,
        early_stop_fn: Optional[Callable] = None,
        trials_save_file: str = "",
    ) -> Any:
        if delegates_to_hyperopt(trials, allow_trials_fmin):
            return original(
                fn, space, algo=algo, max_evals=max_evals, timeout=timeout, loss_threshold=loss_threshold,
                trials=trials, rstate=rstate, allow_trials_fmin=allow_trials_fmin,
                pass_expr_memo_ctrl=pass_expr_memo_ctrl, catch_eval_exceptions=catch_eval_exceptions,
                verbose=verbose, return_argmin=return_argmin, points_to_evaluate=points_to_evaluate,
                max_queue_len=max_queue_len, show_progressbar=show_progressbar, early_stop_fn=early_stop_fn,
                trials_save_file=trials_save_file,
            )
        from . import _driver
        from ._trials import RunnerTrials

        call_site = _driver.find_call_site()
        if isinstance(space, str) and space == "annotated":
            fn, space = _annotated_space(fn)
        options = dict(
            algo=algo, max_evals=max_evals, max_queue_len=max_queue_len, rstate=rstate,
            pass_expr_memo_ctrl=pass_expr_memo_ctrl, return_argmin=return_argmin,
            early_stop_fn=early_stop_fn, trials_save_file=trials_save_file,
        )
        if isinstance(trials, RunnerTrials):
            return trials.run_fmin(fn, space, timeout=timeout, loss_threshold=loss_threshold, call_site=call_site, **options)
        if trials is None:
            trials = initial_trials(trials_save_file, points_to_evaluate)
        return _driver.run_study(
            trials, fn, space, timeout=timeout, loss_threshold=loss_threshold, parallelism=None,
            call_site=call_site, **options,
        )

    fmin.__hyperopt_runner__ = True  # type: ignore[attr-defined]
    fmin.__wrapped_fmin__ = original  # type: ignore[attr-defined]
    return fmin


def initial_trials(trials_save_file: str, points_to_evaluate: Optional[list]) -> Any:
    """The store of an fmin call without ``trials``, chosen as hyperopt chooses it."""
    from hyperopt import base
    from hyperopt.fmin import generate_trials_to_calculate

    from . import _driver

    if trials_save_file and os.path.exists(trials_save_file):
        return _driver.load_trials(trials_save_file)
    if points_to_evaluate is None:
        return base.Trials()
    assert isinstance(points_to_evaluate, list)
    return generate_trials_to_calculate(points_to_evaluate)


def install_fmin() -> Callable:
    """Replaces ``hyperopt.fmin`` (the function) and ``hyperopt.fmin.fmin`` with the wrapper."""
    import hyperopt

    module = sys.modules["hyperopt.fmin"]
    current = module.fmin
    if getattr(current, "__hyperopt_runner__", False):
        return current
    wrapper = make_fmin(current)
    module.fmin = wrapper
    hyperopt.fmin = wrapper
    from . import _spark

    _spark.install()
    return wrapper


# -- running the script --------------------------------------------------------------------------


def _read_source(path: str) -> Optional[str]:
    """The script's text, or None when it is not Python source."""
    from importlib.util import decode_source

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def _trimmed_traceback(exc: BaseException, path: str) -> None:
    """Prints the traceback from the script's first frame on (the launcher's are noise)."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != path:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
    sys.stderr.flush()


def _script_location(exc: BaseException, path: str, shown: str) -> str:
    """``script:line`` of the script's innermost frame in the traceback (the line to fix)."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{shown}:{line}" if line else shown


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _say("usage: python -m hyperopt_runner.launch SCRIPT [ARGS...]")
        return EXIT_FATAL if not argv else 0
    script, args = argv[0], argv[1:]

    from . import _connection

    token = os.environ.pop(ENV_TOKEN, None)
    _connection.configure(os.environ.get(ENV_ENDPOINT), token)

    path = os.path.abspath(script)
    if not os.path.exists(path):
        _say(f"hyperopt-runner: {script}: no such file")
        return EXIT_FATAL
    source = _read_source(path) if os.path.isfile(path) else None
    if source is None:
        _say(f"hyperopt-runner: {script} is not a Python source file")
        return EXIT_FATAL
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        _say(f"{script}:{exc.lineno or 0}: {type(exc).__name__}: {exc.msg}")
        return EXIT_FATAL
    except ValueError:
        _say(f"hyperopt-runner: {script} is not a Python source file")
        return EXIT_FATAL

    problem = check_requirements()
    if problem is not None:
        report_fatal("hyperopt_missing", problem)
        return EXIT_FATAL
    install_fmin()

    import runpy

    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(path)
    try:
        runpy.run_path(path, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except UsageError as exc:
        _say(f"{_script_location(exc, path, script)}: {exc}")
        return 1
    except BaseException as exc:  # noqa: BLE001 - reported like Python reports it
        _trimmed_traceback(exc, path)
        return 1
    finally:
        # The connection stays open: threads the script started may still be in fmin, and
        # Python waits for them before it exits.
        try:
            sys.stdout.flush()
        except Exception:
            pass
    return 0
