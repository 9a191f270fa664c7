"""Search spaces and trial points described for views: JSON-safe, short, never pickled."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List

from ._protocol import MAX_SAFE_INTEGER

# Arguments of hyperopt's distributions worth showing (rng and size are plumbing).
_SHOWN_ARGS = ("low", "high", "q", "mu", "sigma")
_SCALARS = (bool, int, float, str, type(None))
_OPTION_TEXT_LIMIT = 60


class _NotScalar:
    def __repr__(self) -> str:
        return "<not a scalar>"


NOT_SCALAR = _NotScalar()


@dataclass
class SpaceDescription:
    """The ``space`` of an ``open`` message, and what is needed to describe each trial's point."""

    params: List[dict] = field(default_factory=list)
    # For each choice label: the option values shown in ``params`` (NOT_SCALAR for nested spaces).
    choice_values: Dict[str, List[Any]] = field(default_factory=dict)
    # Labels whose float values the space turns into integers (hp.uniformint).
    integer_labels: set = field(default_factory=set)

    def trial_params(self, vals: Dict[str, list]) -> Dict[str, Any]:
        """JSON-safe value of each active hyperparameter of a trial (inactive ones omitted)."""
        out: Dict[str, Any] = {}
        for label, values in vals.items():
            if not values:
                continue
            value = values[0]
            options = self.choice_values.get(label)
            if options is not None:
                index = json_value(value)
                if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(options):
                    option = options[index]
                    out[label] = index if option is NOT_SCALAR else option
                else:
                    out[label] = index
            else:
                converted = json_value(value)
                if label in self.integer_labels and isinstance(converted, float) and converted.is_integer():
                    converted = int(converted)
                out[label] = converted
        return out


def json_value(value: Any) -> Any:
    """A plain number, string, boolean or None from a Python or numpy scalar (None for
    anything else, and for non-finite floats)."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if abs(value) <= MAX_SAFE_INTEGER else float(value)
    if kind is float:
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars (np.float64 is even a float subclass)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            converted = item()
        except (TypeError, ValueError):
            return None
        if type(converted) in (bool, int, float, str):
            return json_value(converted)
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return json_value(int(value))
    if isinstance(value, float):
        return json_value(float(value))
    if isinstance(value, str):
        return str(value)
    return None


def json_vals(vals: Dict[str, list]) -> Dict[str, list]:
    """``misc["vals"]`` as JSON: lists of numbers, strings or booleans (no nulls allowed)."""
    out: Dict[str, list] = {}
    for label, values in vals.items():
        converted = []
        for value in values:
            safe = json_value(value)
            if safe is None:
                safe = str(value)
            converted.append(safe)
        out[str(label)] = converted
    return out


def describe_space(expr: Any) -> SpaceDescription:
    """Walks a pyll graph for its hyperparameters."""
    from hyperopt import pyll
    from hyperopt.pyll.base import Literal

    expr = pyll.as_apply(expr)
    nodes = pyll.dfs(expr)
    parents: Dict[int, list] = {}
    for node in nodes:
        for child in node.inputs():
            parents.setdefault(id(child), []).append(node)

    choices: Dict[str, list] = {}
    for node in nodes:
        if node.name == "switch" and node.pos_args and node.pos_args[0].name == "hyperopt_param":
            choices[_label(node.pos_args[0])] = list(node.pos_args[1:])

    description = SpaceDescription()
    seen = set()
    for node in nodes:
        if node.name != "hyperopt_param":
            continue
        label = _label(node)
        if label in seen:
            continue
        seen.add(label)
        dist_node = node.arg["obj"]
        dist = dist_node.name
        descriptor: Dict[str, Any] = {"label": label}
        if label in choices:
            descriptor["dist"] = "pchoice" if dist == "categorical" else "choice"
            options = choices[label]
            shown = [_option_value(option, Literal) for option in options]
            description.choice_values[label] = shown
            descriptor["options"] = [
                _render(option, Literal, _OPTION_TEXT_LIMIT) if value is NOT_SCALAR else value
                for option, value in zip(options, shown)
            ]
        else:
            args = _numeric_args(dist_node, Literal)
            if dist == "randint":
                if len(dist_node.pos_args) + len(dist_node.named_args) == 1 and "low" in args:
                    args = {"low": 0, "high": args["low"]}
            elif dist == "quniform" and args.get("q") == 1 and _is_int_cast(node, parents):
                dist = "uniformint"
                description.integer_labels.add(label)
            descriptor["dist"] = dist
            if args:
                descriptor["args"] = args
        description.params.append(descriptor)
    return description


def _label(param_node: Any) -> str:
    return str(param_node.arg["label"].obj)


def _numeric_args(dist_node: Any, literal_type: type) -> Dict[str, Any]:
    args: Dict[str, Any] = {}
    try:
        bound = dist_node.arg
    except Exception:
        return args
    for name in _SHOWN_ARGS:
        node = bound.get(name)
        if isinstance(node, literal_type):
            value = json_value(node.obj)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                args[name] = value
    return args


def _is_int_cast(param_node: Any, parents: Dict[int, list]) -> bool:
    """True for hp.uniformint: int(float(hyperopt_param(quniform(low, high, q=1))))."""
    for parent in parents.get(id(param_node), []):
        if parent.name == "int":
            return True
        if parent.name == "float":
            if any(grand.name == "int" for grand in parents.get(id(parent), [])):
                return True
    return False


def _option_value(node: Any, literal_type: type) -> Any:
    if (isinstance(node, literal_type) and isinstance(node.obj, _SCALARS)) or _is_numpy_scalar(node, literal_type):
        value = json_value(node.obj)
        if value is not None or node.obj is None:
            return value
    return NOT_SCALAR


def _is_numpy_scalar(node: Any, literal_type: type) -> bool:
    if not isinstance(node, literal_type):
        return False
    return type(node.obj).__module__ == "numpy" and hasattr(node.obj, "item") and getattr(node.obj, "ndim", 1) == 0


def _render(node: Any, literal_type: type, limit: int) -> str:
    """A short text for a nested option, like ``{'type': 'forest', 'depth': depth, ...}``."""
    text = _render_node(node, literal_type, limit)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _join(opening: str, parts: List[str], closing: str, limit: int) -> str:
    out = opening
    for index, part in enumerate(parts):
        piece = (", " if index else "") + part
        if len(out) + len(piece) + len(closing) > limit:
            return out + (", ..." if index else "...") + closing
        out += piece
    return out + closing


def _render_node(node: Any, literal_type: type, limit: int) -> str:
    if isinstance(node, literal_type):
        obj = node.obj
        if isinstance(obj, _SCALARS):
            return repr(obj)
        if isinstance(obj, dict):
            return _join("{", [f"{key!r}: {value!r}" for key, value in obj.items()], "}", limit)
        if isinstance(obj, (list, tuple)):
            return _join("[", [repr(value) for value in obj], "]", limit)
        return f"<{type(obj).__name__}>"
    name = node.name
    if name == "dict":
        return _join("{", [f"{key!r}: {_render_node(value, literal_type, limit)}" for key, value in node.named_args], "}", limit)
    if name == "pos_args":
        return _join("[", [_render_node(value, literal_type, limit) for value in node.pos_args], "]", limit)
    if name in ("float", "int") and len(node.pos_args) == 1:
        return _render_node(node.pos_args[0], literal_type, limit)
    if name == "hyperopt_param":
        return _label(node)
    if name == "switch" and node.pos_args and node.pos_args[0].name == "hyperopt_param":
        return _label(node.pos_args[0])
    return f"{name}(...)"


def algo_name(algo: Any) -> str:
    """``tpe.suggest``, ``rand.suggest``, ``tpe.suggest(n_startup_jobs=5)``, ``mymodule.search``."""
    if isinstance(algo, functools.partial):
        inner = algo_name(algo.func)
        args = [repr(value) for value in algo.args] + [f"{key}={value!r}" for key, value in algo.keywords.items()]
        text = f"{inner}({', '.join(args)})" if args else inner
        return text if len(text) <= 120 else text[:117] + "..."
    module = getattr(algo, "__module__", None)
    name = getattr(algo, "__qualname__", None) or getattr(algo, "__name__", None)
    if name is None:
        name = type(algo).__qualname__
        module = type(algo).__module__
    if isinstance(module, str) and module.startswith("hyperopt."):
        module = module[len("hyperopt."):]
    if not module or module in ("__main__", "builtins"):
        return str(name)
    return f"{module}.{name}"

