"""The one worker-side function every executor calls to run a command.

:func:`execute` resolves the command's key in a registry, calls the callable
(driving a coroutine to completion), and returns an *outcome*: ``(True, value)``
or ``(False, exception)``. Executors differ only in how commands and outcomes
travel; this function is where a command actually runs, on every executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine, Iterable
from contextvars import ContextVar
from types import CoroutineType
from typing import Any

from .command import Command
from .registry import Registry

__all__ = ["EventSink", "Outcome", "current_command", "current_registry", "emit", "execute"]

Outcome = tuple[bool, Any]
"""``(True, result)`` or ``(False, exception)``."""

EventSink = Callable[[Command, str, dict[str, Any]], None]
"""Where a running command's :func:`emit` calls go: ``sink(command, name, payload)``."""

_current: ContextVar[tuple[Command, Registry, EventSink | None] | None] = ContextVar(
    "commandexec_current", default=None
)


def execute(command: Command, registry: Registry, sink: EventSink | None = None) -> Outcome:
    """Run *command* here and now; never raises (an error is returned as the outcome).

    The callable is ``command.fn`` if the command wraps one, else the registry's
    entry for ``command.key``. A coroutine result is run to completion with
    :func:`asyncio.run` (in a helper thread if this thread already runs a loop).
    Events the command emits go to *sink*.
    """
    token = _current.set((command, registry, sink))
    try:
        fn = command._fn
        if fn is None:
            fn = registry._callables.get(command._key)  # type: ignore[arg-type]
            if fn is None:
                fn = registry.resolve(command._key)  # type: ignore[arg-type]
        result = fn(*command._args, **command._kwargs)
        if type(result) is CoroutineType:
            result = run_coroutine(result)
        return True, result
    except BaseException as exc:  # the stdlib executors hand BaseException to the future too
        return False, exc
    finally:
        _current.reset(token)


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive *coro* to completion on a fresh event loop and return its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # This thread already runs a loop (e.g. an inline submit from async code):
    # asyncio.run would refuse, so give the coroutine a loop of its own.
    box: list[Outcome] = []
    context = contextvars.copy_context()

    def runner() -> None:
        try:
            box.append((True, context.run(asyncio.run, coro)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=runner, name="commandexec-coroutine")
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


def emit(name: str, /, **payload: Any) -> None:
    """Emit the event *name* with *payload* from the running command.

    Observers of the executor's event bus receive it (from worker processes
    too), in emission order and before the command's future completes.

    Raises:
        RuntimeError: outside a running command.
        ValueError: if *name* is empty.
    """
    frame = _current.get()
    if frame is None:
        raise RuntimeError(f"commandexec.emit({name!r}) must be called from inside a running command")
    if not isinstance(name, str) or not name:
        raise ValueError(f"an event name must be a non-empty string, got {name!r}")
    sink = frame[2]
    if sink is not None:
        sink(frame[0], name, payload)


def current_command() -> Command | None:
    """Return the command running in this context, or ``None`` outside one."""
    frame = _current.get()
    return frame[0] if frame is not None else None


def current_registry() -> Registry | None:
    """Return the registry of the command running in this context, if any."""
    frame = _current.get()
    return frame[1] if frame is not None else None


def run_chunk(fn: str | Callable[..., Any], chunk: Iterable[tuple[Any, ...]]) -> list[Any]:
    """Apply *fn* (a callable or a registry key) to each argument tuple of *chunk*.

    Used by ``Executor.map(..., chunksize=n)``: one command carries *n* calls.
    A key is resolved in the registry of the command that runs the chunk.
    """
    if isinstance(fn, str):
        registry = current_registry()
        if registry is None:
            raise RuntimeError("run_chunk with a key must run inside a command")
        fn = registry.resolve(fn)
    results = []
    for args in chunk:
        result = fn(*args)
        if type(result) is CoroutineType:
            result = run_coroutine(result)
        results.append(result)
    return results
