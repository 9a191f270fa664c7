"""Finds out why an objective cannot be cloudpickled, in words a user can act on."""

from __future__ import annotations

import functools
import os
import types
from typing import Any, Iterator, Optional, Tuple

_MAX_DEPTH = 6


def object_text(obj: Any) -> str:
    """``<_thread.lock object>``, ``<mypkg.Model object>``."""
    kind = type(obj)
    module = getattr(kind, "__module__", None)
    name = getattr(kind, "__qualname__", kind.__name__)
    if module in (None, "builtins"):
        return f"<{name} object>"
    return f"<{module}.{name} object>"


def _picklable(obj: Any) -> bool:
    import cloudpickle

    try:
        cloudpickle.dumps(obj)
    except RecursionError:
        return True  # not what we are looking for
    except Exception:
        return False
    return True


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _short_file(path: str) -> str:
    return os.path.basename(path) if path else "?"


class _Search:
    def __init__(self) -> None:
        self.seen: set = set()

    def find(self, obj: Any, where: str, depth: int = 0) -> Optional[Tuple[Any, str]]:
        """The innermost unpicklable object reachable from ``obj`` and where it is referenced.

        ``obj`` itself is known (or assumed) to be unpicklable; returns (``obj``, ``where``)
        when none of its parts is the culprit.
        """
        if depth > _MAX_DEPTH or id(obj) in self.seen:
            return (obj, where)
        self.seen.add(id(obj))
        for part, part_where in self._parts(obj, where):
            if _picklable(part):
                continue
            return self.find(part, part_where, depth + 1)
        return (obj, where)

    def _parts(self, obj: Any, where: str) -> Iterator[Tuple[Any, str]]:
        if isinstance(obj, types.ModuleType):
            return
        if isinstance(obj, types.FunctionType):
            code = obj.__code__
            where_file = _short_file(code.co_filename)
            names = dict.fromkeys(_code_names(code))
            for name in names:
                if name in obj.__globals__:
                    value = obj.__globals__[name]
                    if isinstance(value, types.ModuleType):
                        continue
                    yield value, f"global '{name}' in {where_file}"
            if obj.__closure__:
                for name, cell in zip(code.co_freevars, obj.__closure__):
                    try:
                        value = cell.cell_contents
                    except ValueError:
                        continue
                    yield value, f"closure variable '{name}' of {obj.__qualname__}() in {where_file}"
            for value in obj.__defaults__ or ():
                yield value, f"a default argument of {obj.__qualname__}() in {where_file}"
            for name, value in (obj.__kwdefaults__ or {}).items():
                yield value, f"default of argument '{name}' of {obj.__qualname__}() in {where_file}"
            return
        if isinstance(obj, functools.partial):
            yield obj.func, where
            for value in obj.args:
                yield value, f"an argument bound by functools.partial ({where})"
            for name, value in obj.keywords.items():
                yield value, f"argument '{name}' bound by functools.partial ({where})"
            return
        if isinstance(obj, types.MethodType):
            yield obj.__func__, where
            yield obj.__self__, f"the object the method {obj.__func__.__qualname__}() is bound to ({where})"
            return
        if isinstance(obj, dict):
            for key, value in obj.items():
                yield value, f"item {key!r} of {where}"
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for value in obj:
                yield value, f"an item of {where}"
            return
        if isinstance(obj, type):
            for name, value in vars(obj).items():
                if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                    func = getattr(value, "__func__", value)
                    yield func, f"{obj.__qualname__}.{name}"
            return
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict):
            for name, value in attributes.items():
                yield value, f"attribute '{name}' of {where}"
            call = getattr(type(obj), "__call__", None)
            if isinstance(call, types.FunctionType):
                yield call, f"{type(obj).__qualname__}.__call__"


def explain_unpicklable(fn: Any, space: Any, error: BaseException) -> str:
    """One line naming what makes the objective unpicklable and how to fix it."""
    search = _Search()
    found = None
    if not _picklable(fn):
        culprit, where = search.find(fn, "the objective")
        if culprit is not fn:
            found = (culprit, where, "create it inside the objective instead")
        else:
            found = (fn, "the objective", "define the objective at the top level of the script or a module")
    else:
        found = _find_in_space(space)
    if found is None:
        return f"the objective cannot be pickled: {type(error).__name__}: {error}"
    culprit, where, fix = found
    return f"the objective cannot be pickled: it refers to {object_text(culprit)} ({where}); {fix}"


def _find_in_space(space: Any) -> Optional[Tuple[Any, str, str]]:
    try:
        from hyperopt import pyll
        from hyperopt.pyll.base import Literal

        nodes = pyll.dfs(pyll.as_apply(space))
    except Exception:
        return None
    for node in nodes:
        if isinstance(node, Literal) and not _picklable(node.obj):
            culprit, where = _Search().find(node.obj, "a value in the search space")
            return (culprit, where, "use only picklable values in the search space")
    return None
