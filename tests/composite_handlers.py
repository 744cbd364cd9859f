"""Handlers for the composite tests: module-level, so worker processes can import them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import commandexec as ce
from commandexec.runtime import current_command


class Boom(Exception):
    """A failing leaf's error."""


def touch(path: str, result: Any = None) -> Any:
    """Create the file *path* (proof that this child ran) and return *result*."""
    Path(path).touch()
    return result


def concat(*parts: str) -> str:
    return "".join(parts)


def whoami(*args: Any) -> dict[str, Any]:
    """The causation fields of the command running this, as the worker sees them."""
    command = current_command()
    assert command is not None
    return {"id": command.id, "parent_id": command.parent_id, "root_id": command.root_id, "depth": command.depth}


def fail_when_started(directory: str, count: int, message: str = "boom") -> None:
    """Wait until *count* gated commands (``started-*`` files) are running, then fail."""
    deadline = time.monotonic() + 10
    while len(list(Path(directory).glob("started-*"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only some of {count} gated commands started")
        time.sleep(0.005)
    time.sleep(0.2)  # let the submitter finish submitting the siblings
    raise Boom(message)


def ok(*args: Any, **kwargs: Any) -> int:
    """Succeed whatever the input (a random composite may feed it anything)."""
    return 1


def nap(*args: Any, seconds: float = 0.01) -> int:
    time.sleep(seconds)
    return 1


def boom(*args: Any, message: str = "boom") -> None:
    raise Boom(message)


def die(*args: Any) -> None:
    """Kill the worker process running this (a process executor's worker only)."""
    if multiprocessing.parent_process() is None:
        raise RuntimeError("die() refuses to kill the main process; use it on a process executor only")
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


def interrupt(*args: Any) -> None:
    raise KeyboardInterrupt


HANDLERS = (touch, concat, whoami, fail_when_started, ok, nap, boom, die, interrupt)


def register(registry: ce.Registry) -> ce.Registry:
    """Add every handler above to *registry* under its own name."""
    for fn in HANDLERS:
        registry.register(fn.__name__, fn)
    return registry
