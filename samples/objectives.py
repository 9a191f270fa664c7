"""Objectives kept in their own module, imported by sibling_objective.py."""
import math


def rosenbrock(params):
    x, y = params["x"], params["y"]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def scaled(params, scale=math.e):
    return rosenbrock(params) / scale
