"""Command handlers for the tests: module-level, so they can cross processes."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from typing import Any

import commandexec as ce

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


class HandlerError(Exception):
    """A user-defined exception type that must survive the trip back to the caller."""


def add(a: int, b: int = 0) -> int:
    """Add two numbers."""
    return a + b


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def noop() -> None:
    return None


def square(x: int) -> int:
    return x * x


def fail(message: str = "it failed") -> None:
    raise HandlerError(message)


def fail_value(message: str = "bad value") -> None:
    raise ValueError(message)


def sleep(seconds: float, result: Any = None) -> Any:
    time.sleep(seconds)
    return result


def wait_event(name: str, timeout: float = 10.0) -> bool:
    """Block until the named in-process gate opens (threads and inline only)."""
    return gate(name).wait(timeout)


def thread_name() -> str:
    return threading.current_thread().name


def pid() -> int:
    return os.getpid()


def context_value() -> str:
    return request_id.get()


def overlap(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


async def async_add(a: int, b: int = 0) -> int:
    await asyncio.sleep(0)
    return a + b


class Multiplier:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor

    def times(self, x: int) -> int:
        return x * self.factor


def emit_steps(count: int, name: str = "step.progress") -> int:
    """Emit *count* events numbered 0.. in order, then return *count*."""
    for i in range(count):
        ce.emit(name, index=i)
    return count


def chain(n: int) -> int:
    """Announce link *n* of a chain; an observer may answer with link n + 1."""
    ce.emit("chain.link", n=n)
    return n


def emit_unpicklable() -> None:
    ce.emit("bad.payload", lock=threading.Lock())


def flaky(counter: str, failures: int, error: str = "ValueError", result: Any = "ok") -> Any:
    """Fail the first *failures* calls (counted in the file *counter*), then return *result*.

    *error* is "ValueError", "HandlerError" or "exit" (the worker process exits).
    """
    try:
        with open(counter) as f:
            calls = int(f.read() or 0)
    except FileNotFoundError:
        calls = 0
    with open(counter, "w") as f:
        f.write(str(calls + 1))
    if calls < failures:
        if error == "exit":
            os._exit(3)
        raise (HandlerError if error == "HandlerError" else ValueError)(f"call {calls + 1} fails")
    return result


_gates: dict[str, threading.Event] = {}
_gates_lock = threading.Lock()


def gate(name: str) -> threading.Event:
    with _gates_lock:
        return _gates.setdefault(name, threading.Event())


def make_registry() -> ce.Registry:
    """A fresh registry with every handler above, some of them by lazy reference."""
    registry = ce.Registry()
    for fn in (add, echo, noop, square, fail, fail_value, sleep, wait_event, thread_name, pid,
               context_value, overlap, async_add, wait_file, emit_steps, chain, emit_unpicklable, flaky):  # fmt: skip
        registry.register(fn.__name__, fn)
    registry.register("lazy_add", "tests.handlers:add")
    registry.register("triple", Multiplier(3))
    registry.register("double", Multiplier(2).times)
    return registry


def wait_file(started: str, release: str, timeout: float = 10.0, result: Any = None) -> Any:
    """Signal *started* by creating that file, then block until *release* exists.

    A gate that works across threads, processes and machines sharing a disk.
    """
    with open(started, "w"):
        pass
    deadline = time.monotonic() + timeout
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {release} was not opened within {timeout} s")
        time.sleep(0.005)
    return result


REGISTRY = make_registry()
"""A module-level registry, for executors given the reference "tests.handlers:REGISTRY"."""
