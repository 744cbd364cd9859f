"""Executor kinds, each in a module named after it."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Executor

__all__ = ["KINDS", "Executor", "executor_class"]

KINDS: dict[str, str] = {
    "inline": "commandexec.executors.inline:InlineExecutor",
    "threads": "commandexec.executors.threads:ThreadExecutor",
    "processes": "commandexec.executors.processes:ProcessExecutor",
}
"""Built-in kind names and the import reference of each one's class."""


def executor_class(kind: str) -> type[Executor]:
    """Return the executor class of the built-in *kind*.

    Raises:
        ValueError: naming the known kinds, for an unknown *kind*.
    """
    try:
        reference = KINDS[kind]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(KINDS)}"
        raise ValueError(f"unknown executor kind {kind!r}; {hint}") from None
    module, _, name = reference.partition(":")
    cls: Any = getattr(importlib.import_module(module), name)
    return cls  # type: ignore[no-any-return]
