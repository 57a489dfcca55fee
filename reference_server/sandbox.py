"""Run the agent's generated pandas code, and nothing else, in a narrow namespace.

The reference agent shows the code it runs, so the code must really run; but
the server takes text from the network, so the run must not be able to reach
anything beyond pandas and the data frames. Two fences: the code is checked
(no imports, no dunder or private names, no dangerous names, and only the
attributes the planner's templates use: pandas itself reaches the file system
and ``os``, e.g. ``pd.read_pickle`` or ``pd.io.common.os``), then executed with
only ``pd``, the frames and a tiny whitelist of builtins in reach. The planner
never puts request text into code except as ``repr()`` literals of
identifier-shaped words, so these fences are a second line of defence, not the
first.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Mapping
from typing import Any

import pandas as pd

SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "abs", "bool", "dict", "enumerate", "float", "int", "len", "list", "max",
        "min", "range", "round", "sorted", "str", "sum", "tuple", "zip",
    )
}
FORBIDDEN_NAMES = frozenset(
    {"open", "eval", "exec", "compile", "getattr", "setattr", "delattr", "globals",
     "locals", "vars", "input", "breakpoint", "help", "exit", "quit", "memoryview",
     "type", "object", "super", "classmethod", "staticmethod", "property"}
)
ALLOWED_ATTRIBUTES = frozenset(
    {"astype", "concat", "dt", "fillna", "groupby", "head", "max", "mean", "median", "min", "mul",
     "rename", "rename_axis", "reset_index", "round", "size", "sort_values", "start_time",
     "strftime", "sum", "to_datetime", "to_period"}
)
"""Every attribute the planner's code templates use, and nothing else."""
RESULT_NAME = "result"


class UnsafeCode(ValueError):
    """The code uses a construct the sandbox does not allow."""


def check_code(code: str) -> ast.Module:
    """Parse ``code`` and refuse anything outside the planner's pandas expressions."""
    tree = ast.parse(code, mode="exec")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
            raise UnsafeCode("imports and global statements are not allowed")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise UnsafeCode(f"private attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Attribute) and node.attr not in ALLOWED_ATTRIBUTES:
            raise UnsafeCode(f"attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id in FORBIDDEN_NAMES):
            raise UnsafeCode(f"name {node.id!r} is not allowed")
    return tree


def run_code(code: str, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Execute ``code`` with ``pd`` and copies of ``frames``; return its ``result``.

    Errors raised by the code itself (KeyError for a missing column...) propagate
    unchanged: the agent reflects on them.
    """
    tree = check_code(code)
    namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, "pd": pd}
    for name, frame in frames.items():
        namespace[name] = frame.copy()
    exec(compile(tree, "<agent>", "exec"), namespace)  # noqa: S102 - fenced above
    result = namespace.get(RESULT_NAME)
    if isinstance(result, pd.Series):
        result = result.reset_index()
    if not isinstance(result, pd.DataFrame):
        raise TypeError(f"the code must leave a DataFrame in {RESULT_NAME!r}, not {type(result).__name__}")
    return result
